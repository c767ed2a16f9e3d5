"""pysessionmanager's in-memory SessionManager against a pure-Python floor.

The floor is the least a session manager can be: a dict of token -> record, an expiry
check on read, no copy on read. Speed runs interleave both in this process; memory is
measured in a fresh child process each (--memory-child floor|pysessionmanager N).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import time

from pysessionmanager import SessionManager

IMPLS = ("floor", "pysessionmanager")
LIVE = 10_000
DATA = {"role": "member", "theme": "dark"}
UPDATE = {"theme": "light"}


class FloorManager:
    """A dict, secrets.token_urlsafe(32) and a plain expiry check."""

    def __init__(self, expiration_time: float = 3600.0) -> None:
        self.expiration_time = expiration_time
        self._sessions: dict[str, tuple[float, str, dict]] = {}

    def create_session(self, user_id: str, data: dict | None = None) -> str:
        sid = secrets.token_urlsafe(32)
        expires = time.time() + self.expiration_time
        self._sessions[sid] = (expires, user_id, dict(data) if data else {})
        return sid

    def _live(self, sid: str) -> dict:
        record = self._sessions.get(sid)
        if record is None or time.time() >= record[0]:
            self._sessions.pop(sid, None)
            raise KeyError(sid)
        return record[2]

    def get_session(self, sid: str) -> dict:
        return self._live(sid)  # the stored dict itself, shared

    def update_session(self, sid: str, data: dict) -> None:
        self._live(sid).update(data)

    def end_session(self, sid: str) -> None:
        self._sessions.pop(sid, None)


def make(impl: str):
    return FloorManager(3600.0) if impl == "floor" else SessionManager(expiration_time=3600)


def populate(m, count: int) -> list[str]:
    return [m.create_session(f"user{i}", DATA) for i in range(count)]


# Each setup_* builds its state untimed and returns the timed loop, which returns its op count.
def setup_create(impl: str, n: int):
    m, users = make(impl), [f"user{i}" for i in range(n)]

    def run() -> int:
        create = m.create_session
        for user in users:
            create(user, DATA)
        return n

    return run


def setup_get(impl: str, n: int):
    m = make(impl)
    ids = populate(m, LIVE)
    seq = (ids * (n // LIVE + 1))[:n]

    def run() -> int:
        get = m.get_session
        for sid in seq:
            get(sid)
        return n

    return run


def mixed_ops(n: int, seed: int = 1234) -> list[tuple[int, int]]:
    """(op, random bits): 80% get (0), 15% update (1), 4% create (2), 1% end (3)."""
    rng = random.Random(seed)
    ops = rng.choices(range(4), weights=(80, 15, 4, 1), k=n)
    return [(op, rng.getrandbits(32)) for op in ops]


def setup_mixed(impl: str, n: int):
    m, ops = make(impl), mixed_ops(n)
    live, users = populate(m, LIVE), iter([f"new{i}" for i in range(n)])

    def run() -> int:
        get, update, create, end = m.get_session, m.update_session, m.create_session, m.end_session
        for op, bits in ops:
            i = bits % len(live)
            if op == 0:
                get(live[i])
            elif op == 1:
                update(live[i], UPDATE)
            elif op == 2:
                live.append(create(next(users), DATA))
            else:  # end it, forget its id (swap-remove), and create one in its place
                end(live[i])
                live[i] = live[-1]
                live.pop()
                live.append(create(next(users), DATA))
        return n

    return run


def ops_per_sec(run) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        count = run()
        return count / (time.perf_counter() - start)
    finally:
        gc.enable()


def vm_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def memory_child(impl: str, n: int) -> None:
    m = make(impl)
    gc.collect()
    gc.disable()
    before = vm_rss_bytes()
    ids = [
        m.create_session(f"user{i}", {"role": "member", "theme": "dark", "visits": i})
        for i in range(n)
    ]
    after = vm_rss_bytes()
    assert len(ids) == n
    per = round((after - before) / n, 1)
    print(json.dumps({"impl": impl, "sessions": n, "rss_before": before, "rss_after": after}))
    print(f"{impl}: {n:,} sessions, {per:,} bytes/session", file=sys.stderr)


def memory_of(impl: str, n: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", impl, str(n)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpu_name() -> str:
    if os.path.exists("/proc/cpuinfo"):  # platform.processor() is often empty on Linux
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small counts: a smoke test")
    p.add_argument("--sessions", type=int, help="sessions for the memory test (1,000,000)")
    p.add_argument("--memory-child", nargs=2, metavar=("IMPL", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return

    repeats = 3 if args.quick else 5
    scale = 1 if args.quick else 10
    counts = {"create": 20_000 * scale, "get": 100_000 * scale, "mixed": 50_000 * scale}
    sessions = args.sessions or (100_000 if args.quick else 1_000_000)
    setups = {"create": setup_create, "get": setup_get, "mixed": setup_mixed}

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print("# pysessionmanager vs a pure-Python floor\n")
    print(f"- Python: {platform.python_implementation()} {platform.python_version()}")
    print(f"- Machine: {cpu_name()} ({platform.machine()}), os.cpu_count() = {os.cpu_count()}")
    print(f"- Date: {now}")
    print(f"- pysessionmanager {importlib.metadata.version('pysessionmanager')}, in-memory store")
    print(f"- Speed: median of {repeats} interleaved runs, gc disabled while timing;")
    grown = LIVE + sum(op == 2 for op, _ in mixed_ops(counts["mixed"]))
    print(f"  {LIVE:,} live sessions for get; mixed is 80% get, 15% update, 4% create, 1% end")
    print(f"  (+ a create), from {LIVE:,} live sessions (ending with {grown:,})\n")

    print("| workload | ops | floor ops/s | pysessionmanager ops/s | pysessionmanager/floor |")
    print("|---|---:|---:|---:|---:|")
    for name, setup in setups.items():
        results: dict[str, list[float]] = {impl: [] for impl in IMPLS}
        for rep in range(repeats):
            for impl in IMPLS if rep % 2 == 0 else IMPLS[::-1]:
                run = setup(impl, counts[name])
                results[impl].append(ops_per_sec(run))
                del run
        floor, ours = (statistics.median(results[impl]) for impl in IMPLS)
        print(f"| {name} | {counts[name]:,} | {floor:,.0f} | {ours:,.0f} | {ours / floor:.2f} |")

    print(f"\n| {sessions:,} live sessions | floor | pysessionmanager | pysessionmanager/floor |")
    print("|---|---:|---:|---:|")
    floor, ours = (memory_of(impl, sessions) for impl in IMPLS)
    mb = [(r["rss_after"] - r["rss_before"]) / 2**20 for r in (floor, ours)]
    print(f"| RSS growth (MB) | {mb[0]:,.1f} | {mb[1]:,.1f} | {mb[1] / mb[0]:.2f} |")
    per = [(r["rss_after"] - r["rss_before"]) / r["sessions"] for r in (floor, ours)]
    print(f"| bytes/session | {per[0]:,.0f} | {per[1]:,.0f} | {per[1] / per[0]:.2f} |")
    print("\nRSS growth includes the list of returned ids; a fresh process per implementation.")


if __name__ == "__main__":
    main()

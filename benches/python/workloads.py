"""The workloads the store benchmarks share (bench_sqlite, bench_redis,
bench_postgres): the same operations, in the same order, for every
implementation, timed the same way."""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pysessionmanager import SessionManager

LIVE = 1_000  # sessions a get, update or mixed run starts from
DATA = {"role": "member", "theme": "dark"}
UPDATE = {"theme": "light"}


class Implementation(Protocol):
    def create(self, user: str) -> str: ...
    def get(self, key: str) -> Any: ...
    def update(self, key: str) -> None: ...
    def end(self, key: str) -> None: ...
    def close(self) -> None: ...


class Pysessionmanager:
    """pysessionmanager on the store ``url``."""

    def __init__(self, url: str) -> None:
        self.m = SessionManager(expiration_time=3600, store=url)
        self.get, self.end, self.close = self.m.get_session, self.m.end_session, self.m.close

    def create(self, user: str) -> str:
        return self.m.create_session(user, DATA)

    def update(self, sid: str) -> None:
        self.m.update_session(sid, UPDATE)


class DjangoSessions:
    """A Django session engine's ``SessionStore``, used as a request would."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def create(self, user: str) -> str:
        s = self.store()
        s["user_id"], s["role"], s["theme"] = user, "member", "dark"
        s.create()
        return s.session_key  # type: ignore[no-any-return]

    def get(self, key: str) -> dict:
        return self.store(session_key=key).load()  # type: ignore[no-any-return]

    def update(self, key: str) -> None:
        s = self.store(session_key=key)
        s["theme"] = "light"  # loads the session first, as in a request
        s.save()

    def end(self, key: str) -> None:
        self.store(session_key=key).delete()

    def close(self) -> None:
        """Django keeps its connections for the process."""


def workload_ops(workload: str, n: int) -> tuple[int, list[tuple[int, int]]]:
    """(live sessions to start from, [(op, random bits)]); ops: 0 get, 1 update,
    2 create, 3 end (+ a create). mixed: 80% / 15% / 4% / 1%, fixed seed."""
    if workload == "create":
        return 0, [(2, 0)] * n
    if workload == "get":
        return LIVE, [(0, k) for k in range(n)]  # cycles over the live sessions
    if workload == "update":
        return LIVE, [(1, k) for k in range(n)]
    rng = random.Random(1234)  # one op at a time: a shorter run is a prefix of a longer
    return LIVE, [(rng.choices(range(4), (80, 15, 4, 1))[0], rng.getrandbits(32)) for _ in range(n)]


def ops_per_second(s: Implementation, workload: str, n: int) -> float:
    """Fills ``s`` for ``workload``, then times its ``n`` operations (garbage
    collection off, as both sides would see it equally); closes ``s``."""
    populate, ops = workload_ops(workload, n)
    users = iter([f"user{i}" for i in range(populate + n)])
    live = [s.create(next(users)) for _ in range(populate)]
    get, update, create, end = s.get, s.update, s.create, s.end
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    for op, bits in ops:
        if op == 0:
            get(live[bits % len(live)])
        elif op == 1:
            update(live[bits % len(live)])
        elif op == 2:
            live.append(create(next(users)))
        else:  # end it, move the last key into its slot, create one in the last
            i = bits % len(live)
            end(live[i])
            live[i], live[-1] = live[-1], create(next(users))
    seconds = time.perf_counter() - start
    gc.enable()
    s.close()
    return n / seconds


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options every store benchmark takes; callers may add their own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the ops: a smoke test")
    parser.add_argument("--repeats", type=int, default=3)
    return parser


Runs = dict[tuple[str, str], list[float]]


def interleaved(
    runs: Runs,
    workload: str,
    impls: Sequence[str],
    repeats: int,
    measure: Callable[[str, str], float],
) -> list[float]:
    """Runs ``measure(workload, impl)`` for every implementation, ``repeats``
    times, rotating which goes first so drift hits each alike; adds each
    ops/s to ``runs`` and returns the medians, in the order of ``impls``."""
    impls = list(impls)
    for rep in range(repeats):
        first = rep % len(impls)
        for impl in impls[first:] + impls[:first]:
            runs.setdefault((workload, impl), []).append(measure(workload, impl))
    return [statistics.median(runs[workload, impl]) for impl in impls]


def print_runs(runs: Runs, ops: Callable[[str, str], int] | None = None) -> None:
    """Every single run, in ops/s (with its op count when ``ops`` is given)."""
    print("\nEach run in ops/s" + (" [ops per run]" if ops else "") + ":\n")
    for (workload, impl), rates in runs.items():
        count = f" [{ops(workload, impl):,}]" if ops else ""
        print(f"- {workload}, {impl}{count}: " + ", ".join(f"{r:,.0f}" for r in rates))


def in_child(python: str, script: str, *args: str) -> float:
    """Runs ``script --child *args`` with the interpreter ``python`` (a
    virtualenv with another build, say) in this folder; returns the one
    number it prints."""
    done = subprocess.run(
        [python, script, "--child", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    return float(done.stdout)

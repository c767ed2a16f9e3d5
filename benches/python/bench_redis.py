"""pysessionmanager's Redis store against raw redis-py and Django's cache sessions on Redis.

    .venv/bin/pip install -r benches/python/requirements-bench.txt
    .venv/bin/python benches/python/bench_redis.py [--quick]

Starts its own redis-server (no persistence) on a free loopback port. As the project's
design notes (section 5) say, client and server are pinned to the same CPU (a wakeup that
crosses vCPUs costs more than a Redis command), and every peer gets the same pinning.
Peers, same workloads, one process, interleaved:

- raw redis-py: SET token JSON EX / GET + json.loads / DEL, a token from secrets: the floor
  for a Python client (no user index, no versions, a non-atomic read-modify-write update);
- Django's cache session backend on django.core.cache.backends.redis.RedisCache;
- redis-benchmark (SET/GET, 1 and 8 connections): the server's ceiling, no client work.

Then 1 thread against 8 threads sharing one manager (or one redis-py client and its
connection pool), with the client pinned to the server's CPU and then to the other CPU.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import django
import redis
from bench_memory import cpu_name  # this folder: the CPU model from /proc/cpuinfo
from django.conf import settings
from threaded import ops_per_second
from workloads import (
    DATA,
    LIVE,
    UPDATE,
    DjangoSessions,
    Pysessionmanager,
    Runs,
    arguments,
    interleaved,
    print_runs,
)
from workloads import ops_per_second as workload_ops_per_second

# The tests' redis-server harness (tests/python/servers_redis.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from servers_redis import RedisServer  # noqa: E402

IMPLS = ("pysessionmanager", "redis-py", "django")
WORKLOADS = ("create", "get", "update", "mixed")
COUNTS = (20_000, 40_000, 20_000, 30_000)  # ops per measurement; --quick divides by 10
SERVER_CPU = 0


def start_server() -> RedisServer:
    """A throwaway redis-server (no persistence) pinned to SERVER_CPU."""
    folder = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    server = RedisServer(folder, launcher=["taskset", "-c", str(SERVER_CPU)])
    server.start()
    return server


def pysessionmanager(port: int) -> Pysessionmanager:
    return Pysessionmanager(f"redis://127.0.0.1:{port}/0")


class RedisPy:
    def __init__(self, port: int) -> None:
        self.r = redis.Redis(port=port)
        self.close = self.r.close

    def create(self, user: str) -> str:
        key = "s:" + secrets.token_urlsafe(32)
        self.r.set(key, json.dumps({"user_id": user, **DATA}), ex=3600)
        return key

    def get(self, key: str) -> dict:
        return json.loads(self.r.get(key))  # type: ignore[arg-type]

    def update(self, key: str) -> None:
        self.r.set(key, json.dumps({**self.get(key), **UPDATE}), ex=3600)

    def end(self, key: str) -> None:
        self.r.delete(key)


def django_cache(port: int) -> DjangoSessions:
    """Django's cache engine on RedisCache (configured once by ``setup_django``)."""
    from django.contrib.sessions.backends.cache import SessionStore

    return DjangoSessions(SessionStore)


CLASSES = {"pysessionmanager": pysessionmanager, "redis-py": RedisPy, "django": django_cache}


def setup_django(port: int) -> None:
    settings.configure(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{port}/0",
            }
        },
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        INSTALLED_APPS=["django.contrib.sessions"],
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_AGE=3600,  # the same expiry as the others (Django's default: 2 weeks)
    )
    django.setup()


def measure(server: RedisServer, impl: str, workload: str, n: int) -> float:
    """ops/s of one run on an emptied server."""
    server.client().flushall()
    return workload_ops_per_second(CLASSES[impl](server.port), workload, n)


def threaded(server: RedisServer, impl: str, op: str, threads: int, seconds: float) -> float:
    """ops/s of `threads` threads sharing one client, each doing `op` for `seconds`."""
    server.client().flushall()
    s = CLASSES[impl](server.port)
    live = [s.create(f"user{i}") for i in range(LIVE)]

    def make_op(t: int) -> Callable[[], None]:
        if op == "create":
            return lambda: s.create(f"user{t}")
        ids = itertools.cycle(live[t * 7919 % LIVE :] + live[: t * 7919 % LIVE])
        return lambda: s.get(next(ids))

    rate, _ = ops_per_second(threads, seconds, make_op)
    s.close()
    return rate


def sweep_cost(server: RedisServer, live: int, repeats: int = 5) -> tuple[float, float]:
    """What one sweep of every bucket costs with ``live`` sessions and none
    expired (what a process with an expiry-event subscriber pays each
    sweep_interval_ms): the median call time and the server time, in ms."""
    from pysessionmanager import SessionManager

    server.client().flushall()
    with SessionManager(expiration_time=3600, store=server.url()) as m:
        for i in range(live):
            m.create_session(f"user{i % 1000}")
        times, server_ms = [], []
        for _ in range(repeats):
            before = server.client().info("commandstats")["cmdstat_evalsha"]["usec"]
            began = time.perf_counter()
            assert m.purge_expired() == 0
            times.append((time.perf_counter() - began) * 1000)
            after = server.client().info("commandstats")["cmdstat_evalsha"]["usec"]
            server_ms.append((after - before) / 1000)
    return statistics.median(times), statistics.median(server_ms)


def redis_benchmark(port: int, clients: int, n: int, *extra: str) -> dict[str, float]:
    """redis-benchmark's SET and GET rates with `clients` connections, pinned like the
    server; `extra` arguments (`--cluster`) go last."""
    out = subprocess.run(
        ["taskset", "-c", str(SERVER_CPU), "redis-benchmark", "-p", str(port)]
        + ["-n", str(n), "-c", str(clients), "-t", "set,get", "-d", "40", "--csv", *extra],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rates = {}
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells[0] in ("SET", "GET"):
            rates[cells[0]] = float(cells[1])
    return rates


def pin_client(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})


def main() -> None:
    p = arguments(__doc__)
    p.add_argument("--seconds", type=float, default=2.0, help="per threaded measurement")
    args = p.parse_args()
    scale = 10 if args.quick else 1
    other_cpu = max(os.sched_getaffinity(0) - {SERVER_CPU}, default=SERVER_CPU)
    pin_client(SERVER_CPU)
    server = start_server()
    server_version = server.client().info("server")["redis_version"]
    setup_django(server.port)
    for w, workload in enumerate(WORKLOADS):  # warm-up, untimed
        for impl in IMPLS:
            measure(server, impl, workload, COUNTS[w] // 100)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    py = f"{platform.python_implementation()} {platform.python_version()}"
    cpu = f"{cpu_name()} ({platform.machine()}), os.cpu_count() = {os.cpu_count()}"
    ver = {name: version(name) for name in ("pysessionmanager", "Django", "redis")}
    parser = "hiredis parser" if redis.utils.HIREDIS_AVAILABLE else "pure-Python parser, no hiredis"
    print(f"""# pysessionmanager (Redis store) vs raw redis-py vs Django cache sessions on Redis

- Python: {py}; Redis {server_version} (no persistence), loopback TCP
- Machine: {cpu}, {platform.system()} {platform.release()}
- Date: {now}
- Pinning: redis-server on CPU {SERVER_CPU}; the client (this process, all its threads) on
  CPU {SERVER_CPU} too, except where a table says otherwise
- pysessionmanager {ver["pysessionmanager"]}: SessionManager(expiration_time=3600,
  store="redis://127.0.0.1:PORT/0"); every create/end is one Lua script (user index,
  expiry index, versions), an update one script that edits the data on the server, a get one HMGET
- redis-py {ver["redis"]} ({parser}): SET key JSON EX 3600 / GET +
  json.loads / DEL; update = GET + SET (not atomic); keys "s:" + secrets.token_urlsafe(32)
- Django {ver["Django"]}: sessions.backends.cache on core.cache.backends.redis.RedisCache
  (redis-py), Django's defaults (JSONSerializer for sessions, pickle in the cache),
  SESSION_COOKIE_AGE=3600
- Median of {args.repeats} runs after an untimed warm-up; implementations interleaved; gc off
  while timing. get and update cycle over {LIVE:,} live sessions; mixed: 80% get, 15%
  update, 4% create, 1% end (+ a create) over {LIVE:,} live sessions, seed 1234
""")
    names = "pysessionmanager | raw redis-py | Django cache (Redis)"
    ratios = "pysessionmanager / redis-py | pysessionmanager / Django"
    print(f"## One thread\n\n| workload (ops/s) | {names} | {ratios} |")
    print("|---|---:|---:|---:|---:|---:|")
    runs: Runs = {}

    def one_run(workload: str, impl: str) -> float:
        return measure(server, impl, workload, COUNTS[WORKLOADS.index(workload)] // scale)

    for workload in WORKLOADS:
        ours, raw, dj = interleaved(runs, workload, IMPLS, args.repeats, one_run)
        cells = f"{ours:,.0f} | {raw:,.0f} | {dj:,.0f} | {ours / raw:.2f} | {ours / dj:.2f}"
        print(f"| {workload} | {cells} |", flush=True)

    ceiling_n = 200_000 // scale
    one = redis_benchmark(server.port, 1, ceiling_n)
    eight = redis_benchmark(server.port, 8, ceiling_n)
    print(
        f"\nCeiling, redis-benchmark -c 1 (one connection, one request at a time, pinned to the"
        f" server's CPU): SET {one['SET']:,.0f}/s, GET {one['GET']:,.0f}/s; -c 8: SET"
        f" {eight['SET']:,.0f}/s, GET {eight['GET']:,.0f}/s.\n"
    )

    print("## 1 thread against 8 threads (one shared manager / one redis-py client)\n")
    print("| client CPU | op | pysessionmanager 1 | pysessionmanager 8 | 8 / 1 |", end="")
    print(" redis-py 1 | redis-py 8 | 8 / 1 |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for cpu_label, client_cpu in (("same as server", SERVER_CPU), ("the other one", other_cpu)):
        pin_client(client_cpu)
        for op in ("get", "create"):
            cells = []
            for impl in ("pysessionmanager", "redis-py"):
                single = threaded(server, impl, op, 1, args.seconds / scale)
                multi = threaded(server, impl, op, 8, args.seconds / scale)
                cells.append(f"{single:,.0f} | {multi:,.0f} | {multi / single:.2f}")
            print(f"| {cpu_label} ({client_cpu}) | {op} | {' | '.join(cells)} |", flush=True)
    pin_client(SERVER_CPU)

    took, server_ms = sweep_cost(server, LIVE)
    print(
        f"\nA sweep of all 1,024 buckets with {LIVE:,} live sessions, none expired:"
        f" {took:.1f} ms per call, {server_ms:.1f} ms of the server's time (median of 5)."
    )

    print_runs(runs)
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


if __name__ == "__main__":
    main()

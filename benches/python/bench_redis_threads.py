"""The Redis store from 1 and from 8 threads sharing one manager, the client
on the other CPU than redis-server; optionally against another build of
pysessionmanager in the same run.

    .venv/bin/python benches/python/bench_redis_threads.py [--quick] [--repeats N]
        [--seconds S] [--baseline OTHER_PYTHON]

Starts its own redis-server (no persistence) pinned to CPU 0; each
measurement runs in a process of its own pinned to CPU 1: ``get`` cycles
over 2,000 live sessions, ``create`` makes sessions for 8 users. With
``--baseline`` (a virtualenv with another build installed, say one with an
earlier key layout), its runs are interleaved with this build's, so both
meet the same machine, and the table shows their ratio.
"""

from __future__ import annotations

import datetime
import itertools
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from threaded import ops_per_second
from workloads import Runs, arguments, in_child, interleaved, print_runs

SERVER_CPU, CLIENT_CPU = 0, 1
LIVE = 2_000


def rate(url: str, op: str, threads: int, seconds: float) -> float:
    """ops/s of ``threads`` threads sharing one manager on ``url``, each
    doing ``op`` for ``seconds``."""
    from pysessionmanager import SessionManager

    os.sched_setaffinity(0, {CLIENT_CPU})
    with SessionManager(expiration_time=3600, store=url) as m:
        live = [m.create_session(f"user{i % 100}", {"n": i}) for i in range(LIVE)]

        def make_op(t: int) -> Callable[[], None]:
            if op == "create":
                return lambda: m.create_session(f"user{t}", {"n": t})
            ids = itertools.cycle(live[t * 251 :] + live[: t * 251])
            return lambda: m.get_session(next(ids))

        ops, _ = ops_per_second(threads, seconds, make_op)
    return ops


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--baseline", help="another Python with another build installed")
    args = parser.parse_args()
    # Here, not at the top: a child runs under the baseline's Python, which
    # may lack the test harness's imports.
    from bench_memory import cpu_name  # this folder: the CPU model from /proc/cpuinfo

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
    from servers_redis import RedisServer

    seconds = args.seconds / (10 if args.quick else 1)
    folder = Path(tempfile.mkdtemp(prefix="bench-redis-threads-"))
    server = RedisServer(folder, launcher=["taskset", "-c", str(SERVER_CPU)])
    server.start()
    builds = {"this build": sys.executable}
    if args.baseline:
        builds["baseline"] = args.baseline
    names = list(builds)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{when}, {cpu_name()}, Python {platform.python_version()}, redis-server on CPU"
        f" {SERVER_CPU}, client on CPU {CLIENT_CPU}, {seconds:g} s per run,"
        f" medians of {args.repeats}"
    )
    print("\n| op | threads | " + " | ".join(f"{b} ops/s" for b in names) + " |", end="")
    print(" this / baseline |" if args.baseline else "")
    print("|---|---:|" + "---:|" * (len(names) + bool(args.baseline)))
    runs: Runs = {}
    try:
        for op, threads in itertools.product(("get", "create"), (1, 8)):
            workload = f"{op} x{threads}"

            def one(_workload: str, build: str, op: str = op, threads: int = threads) -> float:
                server.client().flushall()
                args = (server.url(), op, str(threads), str(seconds))
                return in_child(builds[build], __file__, *args)

            rates = interleaved(runs, workload, names, args.repeats, one)
            cells = " | ".join(f"{r:,.0f}" for r in rates)
            ratio = f" {rates[0] / rates[1]:.2f} |" if args.baseline else ""
            print(f"| {op} | {threads} | {cells} |{ratio}", flush=True)
        print_runs(runs)
    finally:
        server.stop()


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _, _, url, op, threads, seconds = sys.argv
        print(rate(url, op, int(threads), float(seconds)))
    else:
        main()

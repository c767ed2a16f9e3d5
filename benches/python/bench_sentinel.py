"""What finding the master through Sentinel costs per call: pysessionmanager
on one Redis master, named by its address against found through three
sentinels, one thread.

    .venv/bin/python benches/python/bench_sentinel.py [--quick] [--repeats N]

Starts a master, a replica and three sentinels on loopback. Both ways use
one connection to the master; through Sentinel each call also lets the
store's listeners read any failover announcement first. The runs are
interleaved, medians of ``--repeats``.
"""

from __future__ import annotations

import datetime
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from bench_memory import cpu_name  # this folder: the CPU model from /proc/cpuinfo
from workloads import Pysessionmanager, Runs, arguments, interleaved, ops_per_second, print_runs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from servers_redis import SentinelTopology  # noqa: E402

WORKLOADS = ("create", "get")
COUNTS = {"create": 10_000, "get": 20_000}


def main() -> None:
    args = arguments(__doc__).parse_args()
    scale = 10 if args.quick else 1
    folder = Path(tempfile.mkdtemp(prefix="bench-sentinel-"))
    topology = SentinelTopology(folder)
    urls = {
        "address": topology.master.url(prefix="direct:"),
        "sentinel": topology.url(prefix="sentinel:"),
    }
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{when}, {cpu_name()}, Python {platform.python_version()}, one thread")
    print("\n| workload | by address ops/s | through Sentinel ops/s | Sentinel / address |")
    print("|---|---:|---:|---:|")
    runs: Runs = {}
    try:
        for workload in WORKLOADS:
            n = COUNTS[workload] // scale
            direct, sentinel = interleaved(
                runs,
                workload,
                ["address", "sentinel"],
                args.repeats,
                lambda w, impl, n=n: ops_per_second(Pysessionmanager(urls[impl]), w, n),
            )
            print(
                f"| {workload} | {direct:,.0f} | {sentinel:,.0f} | {sentinel / direct:.2f} |",
                flush=True,
            )
        print_runs(runs)
    finally:
        topology.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

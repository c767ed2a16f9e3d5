"""Group commit on the SQLite store: sessions created per second by 1 thread
and by 8 threads, with each durability setting.

    .venv/bin/python benches/python/bench_sqlite_threads.py [--seconds 3]

With durability=full every commit waits for the disk; group commit lets
concurrent creates share one commit, so 8 threads should go several times
faster than 1. The ratio is what to read: absolute rates depend on the disk.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from threaded import ops_per_second

from pysessionmanager import SessionManager


def rate(durability: str, threads: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'sessions.db'}?durability={durability}"
        with SessionManager(store=url) as m:

            def creating(n: int) -> Callable[[], None]:
                return lambda: m.create_session(f"user{n}", {"role": "member"})

            return ops_per_second(threads, seconds, creating)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"# SQLite store, creates per second ({platform.python_implementation()} "
        f"{platform.python_version()}, {now})\n"
    )
    print("| durability | 1 thread | 8 threads | 8 / 1 |")
    print("|---|---:|---:|---:|")
    for durability in ("normal", "full"):
        one = rate(durability, 1, args.seconds)
        eight = rate(durability, 8, args.seconds)
        print(f"| {durability} | {one:,.0f} | {eight:,.0f} | {eight / one:.1f} |")


if __name__ == "__main__":
    main()

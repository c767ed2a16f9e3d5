"""`pysessionmanager migrate` from SQLite to Redis: 100,000 sessions of
10,000 users, both passes, at two batch sizes. The Redis server runs on CPU
0 and the migration on CPU 1. Also reads the server's own time per
imported session from INFO commandstats: the ceiling one Redis sets.

    .venv/bin/python benches/python/bench_migrate.py [--sessions N]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from servers_redis import RedisServer  # noqa: E402

from pysessionmanager import SessionManager  # noqa: E402
from pysessionmanager.cli import main  # noqa: E402


def fill(url: str, sessions: int) -> None:
    """`sessions` sessions of a tenth as many users, made in memory and imported."""
    with SessionManager(expiration_time=86_400) as memory, SessionManager(store=url) as target:
        for i in range(sessions):
            memory.create_session(f"user{i % (sessions // 10)}", {"cart": [i], "theme": "dark"})
        cursor = None
        while True:
            _, _, cursor = memory.copy_sessions(target, cursor, 5000)
            if cursor is None:
                return


def script_usec(port: int) -> tuple[int, float]:
    stats = redis.Redis(port=port).info("commandstats")["cmdstat_evalsha"]
    return stats["calls"], stats["usec"]


def main_bench() -> None:
    options = argparse.ArgumentParser()
    options.add_argument("--sessions", type=int, default=100_000)
    n = options.parse_args().sessions
    folder = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    server = RedisServer(folder, launcher=["taskset", "-c", "0"])
    server.start()
    os.sched_setaffinity(0, {1})
    source = f"sqlite:///{folder / 'sessions.db'}"
    fill(source, n)
    try:
        for batch in (1000, 5000):
            target = server.url(prefix=f"b{batch}:")
            redis.Redis(port=server.port).config_resetstat()
            out = io.StringIO()
            started = time.perf_counter()
            code = main(
                [
                    "migrate",
                    source,
                    target,
                    "--batch",
                    str(batch),
                    "--state",
                    str(folder / f"state{batch}"),
                ],
                out,
            )
            took = time.perf_counter() - started
            calls, usec = script_usec(server.port)
            print(f"batch {batch}: exit {code}, {took:.2f}s for both passes")
            for line in out.getvalue().splitlines():
                if line.startswith("pass"):
                    print("  " + line)
            print(
                f"  Redis time in import scripts: {usec / (2 * n):.1f} us per session "
                f"({calls} calls, both passes)"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main_bench()

"""Per-user work against the user's session count, on every store.

    .venv/bin/python benches/python/bench_user_sessions.py [--quick]

For a user with 1, 1,000 and 100,000 live sessions (--quick: 1, 1,000 and
10,000), on the memory, SQLite, Redis and PostgreSQL stores:

- create at the limit: the manager has ``max_sessions_per_user`` equal to the
  user's count and evicts the oldest, so each create reads the user's
  sessions as the limit needs and ends one (the worst case of a limit);
- create without a limit (another manager on the same store);
- ``end_user_sessions`` of all of them: the whole call, and how long the
  longest single store call held the server (Redis: the slowest script run
  in ``SLOWLOG``).

Redis and PostgreSQL run as throwaway servers on loopback, started by the
tests' harnesses. Times are medians of ``ROUNDS`` creates.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from bench_memory import cpu_name  # this folder: the CPU model from /proc/cpuinfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from servers_postgres import PostgresServer, require_postgres  # noqa: E402
from servers_redis import RedisServer  # noqa: E402

from pysessionmanager import SessionManager  # noqa: E402

ROUNDS = 200
USER = "heavy-user"


def timed_creates_ms(m: SessionManager) -> float:
    """Median time of one create for USER."""
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        m.create_session(USER)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(
    name: str, url_for: Callable[[int], str], counts: tuple[int, ...], redis: Optional[RedisServer]
) -> None:
    for count in counts:
        url = url_for(count)
        limited = SessionManager(
            store=url,
            expiration_time=3600,
            max_sessions_per_user=count,
            on_limit="evict_oldest",
        )
        # Filled without a limit where the store outlives its manager.
        filler = limited if url.startswith("memory") else SessionManager(store=url)
        for _ in range(count):
            filler.create_session(USER)
        at_limit = timed_creates_ms(limited)
        unlimited = "n/a (one store per manager)"
        if not url.startswith("memory"):
            with SessionManager(store=url, expiration_time=3600) as m:
                unlimited = f"{timed_creates_ms(m):.3f}"
        if redis is not None:
            redis.client().slowlog_reset()
        start = time.perf_counter()
        ended = limited.end_user_sessions(USER)
        whole = (time.perf_counter() - start) * 1000
        limited.close()
        longest = ""
        if redis is not None:
            log = redis.client().slowlog_get(100_000)
            longest = f"{max((e['duration'] for e in log), default=0) / 1000:.2f}"
        print(
            f"| {name} | {count:,} | {at_limit:.3f} | {unlimited} "
            f"| {whole:.1f} ({ended:,}) | {longest} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    counts = (1, 1_000, 10_000) if args.quick else (1, 1_000, 100_000)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{when}, {cpu_name()}, Python {platform.python_version()}, {ROUNDS} creates each")
    print(
        "| store | user's sessions | create at the limit, ms | create, no limit, ms "
        "| end_user_sessions, ms (ended) | longest script, ms |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    folder = Path(tempfile.mkdtemp(prefix="bench-users-"))
    # The memory store walks a user's sessions at a limit, so filling it is
    # quadratic: 10,000 at most.
    measure("memory", lambda n: "memory://", tuple(n for n in counts if n <= 10_000), None)
    measure("sqlite", lambda n: f"sqlite:///{folder}/users-{n}.db", counts, None)
    (folder / "redis").mkdir()
    redis = RedisServer(folder / "redis")
    redis.start()
    try:
        redis.client().config_set("slowlog-log-slower-than", 0)
        redis.client().config_set("slowlog-max-len", 100_000)
        measure("redis", lambda n: redis.url(prefix=f"users-{n}:"), counts, redis)
    finally:
        redis.stop()
    postgres = PostgresServer(require_postgres())
    postgres.start()
    try:

        def database(n: int) -> str:
            postgres.psql(f"CREATE DATABASE users_{n}")
            return postgres.url(f"users_{n}")

        urls: dict[int, str] = {}
        measure("postgres", lambda n: urls.setdefault(n, database(n)), counts, None)
    finally:
        postgres.remove()


if __name__ == "__main__":
    main()

"""Rate-limiter hits per second on every store, one thread; optionally
against another build of pysessionmanager in the same run.

    .venv/bin/python benches/python/bench_rate_limit.py [--quick] [--repeats N]
        [--baseline OTHER_PYTHON]

Each run hits 100 keys in turn with a limit that allows every hit, so each
hit reads the key's state and writes it back (the limiter's full path).
Starts its own redis-server and PostgreSQL; SQLite is a file in a temporary
folder. With ``--baseline``, the same runs also go through that Python
interpreter (a virtualenv with another build installed, say the previous
release's), interleaved with this one's, each run in a process of its own;
the table then shows both and their ratio.
"""

from __future__ import annotations

import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench_memory import cpu_name  # this folder: the CPU model from /proc/cpuinfo
from workloads import Runs, arguments, in_child, interleaved, print_runs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from servers_postgres import PostgresServer, require_postgres  # noqa: E402
from servers_redis import RedisServer  # noqa: E402

HITS = 20_000
KEYS = [f"api:user{i}" for i in range(100)]


def hits_per_second(url: str, n: int) -> float:
    """Times ``n`` allowed hits on ``url``'s store (the keys hit once first)."""
    from pysessionmanager import RateLimiter

    limiter = RateLimiter("1000000/second", store=url)
    hit = limiter.hit
    for key in KEYS:
        hit(key)
    start = time.perf_counter()
    for i in range(n):
        assert hit(KEYS[i % len(KEYS)]).allowed
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--baseline", help="another Python with another build installed")
    args = parser.parse_args()
    n = HITS // (10 if args.quick else 1)
    folder = Path(tempfile.mkdtemp(prefix="bench-rate-"))
    (folder / "redis").mkdir()
    redis = RedisServer(folder / "redis")
    redis.start()
    postgres = PostgresServer(require_postgres())
    postgres.start()
    builds = {"this build": sys.executable}
    if args.baseline:
        builds["baseline"] = args.baseline
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{when}, {cpu_name()}, Python {platform.python_version()}, one thread")
    names = list(builds)
    print(
        "\n| store | "
        + " | ".join(f"{b} hits/s" for b in names)
        + " |"
        + (" this / baseline |" if args.baseline else "")
    )
    print("|---|" + "---:|" * (len(names) + bool(args.baseline)))
    runs: Runs = {}
    try:
        for store in ("memory", "sqlite", "redis", "postgres"):

            def url(build: str, store: str = store) -> str:
                tag = f"{build.replace(' ', '-')}-{time.monotonic_ns()}"
                if store == "memory":
                    return "memory://"
                if store == "sqlite":
                    return f"sqlite:///{folder / tag}.db"
                if store == "redis":
                    return redis.url(prefix=f"{tag}:")
                return postgres.fresh_schema_url()

            rates = interleaved(
                runs,
                store,
                names,
                args.repeats,
                lambda _w, build: in_child(builds[build], __file__, url(build), str(n)),
            )
            cells = " | ".join(f"{r:,.0f}" for r in rates)
            ratio = f" {rates[0] / rates[1]:.2f} |" if args.baseline else ""
            print(f"| {store} | {cells} |{ratio}", flush=True)
        print_runs(runs)
    finally:
        redis.stop()
        postgres.remove()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(hits_per_second(sys.argv[2], int(sys.argv[3])))
    else:
        main()

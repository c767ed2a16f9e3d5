"""pysessionmanager's PostgreSQL store against Django's database sessions, same server.

    .venv/bin/pip install -r benches/python/requirements-bench.txt
    .venv/bin/python benches/python/bench_postgres.py [--quick] [--cpu 0]

Starts a throwaway PostgreSQL server (tests/python/servers_postgres.py) with its
default settings, pins itself, the server and so every client thread to one CPU
(a wakeup that crosses vCPUs is slow on small VMs), and runs
the same workloads on pysessionmanager (store="postgresql://...") and on Django's
sessions.backends.db through psycopg 3, interleaved, each from an empty table.

Two durability settings, each for both peers over their own connections:
synchronous_commit=on (PostgreSQL's default: every commit waits for the WAL to reach
the disk, so a write costs one fsync whoever sends it) and synchronous_commit=off
(commits wait for no disk: what the libraries themselves cost).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import secrets
import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))

import django  # noqa: E402
from bench_memory import cpu_name  # noqa: E402  (this folder: the CPU model)
from django.conf import settings  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from servers_postgres import PASSWORD, PostgresServer, require_postgres  # noqa: E402
from workloads import (  # noqa: E402
    LIVE,
    DjangoSessions,
    Pysessionmanager,
    Runs,
    arguments,
    interleaved,
    ops_per_second,
    print_runs,
)

from pysessionmanager import SessionManager  # noqa: E402

IMPLS = ("pysessionmanager", "django")
WORKLOADS = ("create", "get", "mixed")
COUNTS = {  # (sync on, sync off): ops per measurement of each workload; --quick: a tenth
    "pysessionmanager": ((1_000, 50_000, 5_000), (20_000, 50_000, 20_000)),
    "django": ((500, 10_000, 1_000), (2_000, 10_000, 4_000)),
}


def django_db(url: str) -> DjangoSessions:
    """Django's db session backend; one connection kept open, as in a worker."""
    return DjangoSessions(SessionStore)


CLASSES = {"pysessionmanager": Pysessionmanager, "django": django_db}


def measure(server: PostgresServer, impl: str, workload: str, n: int, url: str) -> float:
    """ops/s of one run, from empty tables."""
    server.psql("TRUNCATE pysessionmanager_sessions, django_session", "bench")
    return ops_per_second(CLASSES[impl](url), workload, n)


def setup_django(server: PostgresServer) -> None:
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "bench",
                "USER": "postgres",
                "PASSWORD": PASSWORD,
                "HOST": "127.0.0.1",
                "PORT": str(server.port),
            }
        },
        INSTALLED_APPS=["django.contrib.sessions"],
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_AGE=3600,
    )
    django.setup()
    call_command("migrate", verbosity=0)


def main() -> None:
    p = arguments(__doc__)
    p.add_argument("--cpu", type=int, default=0, help="the CPU for server and client")
    args = p.parse_args()
    scale = 10 if args.quick else 1
    os.sched_setaffinity(0, {args.cpu})  # the server started below inherits it
    server = PostgresServer(require_postgres())
    server.start()
    try:
        server.psql("CREATE DATABASE bench")
        setup_django(server)
        SessionManager(store=server.url("bench")).close()  # creates its table
        run(server, args, scale)
    finally:
        server.remove()


def run(server: PostgresServer, args: argparse.Namespace, scale: int) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    py = f"{platform.python_implementation()} {platform.python_version()}"
    cpu = f"{cpu_name()} ({platform.machine()}), os.cpu_count() = {os.cpu_count()}"
    ver = {name: version(name) for name in ("pysessionmanager", "Django", "psycopg")}
    pg = server.psql("SHOW server_version")
    print(f"""# pysessionmanager (PostgreSQL store) vs Django db sessions on PostgreSQL

- Python: {py}; PostgreSQL {pg}, a throwaway server with its default settings
- Machine: {cpu}, {platform.system()} {platform.release()}; server and client pinned
  to CPU {args.cpu} (sched_setaffinity, inherited by the server)
- Date: {now}
- pysessionmanager {ver["pysessionmanager"]}: SessionManager(expiration_time=3600,
  store="postgresql://postgres:***@127.0.0.1:{server.port}/bench"), pool defaults
- Django {ver["Django"]} with psycopg {ver["psycopg"]}: sessions.backends.db, JSONSerializer,
  SESSION_COOKIE_AGE=3600; one connection kept open
- Median of {args.repeats} runs after an untimed warm-up; implementations interleaved; gc off
  while timing; tables truncated before each run. get cycles over {LIVE:,} live sessions;
  mixed: 80% get, 15% update, 4% create, 1% end (+ a create), seed 1234
""")
    for mode, sync in enumerate(("on", "off")):
        run_mode(server, args, scale, mode, sync)


def run_mode(
    server: PostgresServer, args: argparse.Namespace, scale: int, mode: int, sync: str
) -> None:
    """One table: every workload with ``synchronous_commit`` set to ``sync``."""
    ours_url = server.url("bench", options=f"-c%20synchronous_commit%3D{sync}")
    with connection.cursor() as c:
        c.execute(f"SET synchronous_commit TO {sync}")
    counts = {impl: COUNTS[impl][mode] for impl in IMPLS}
    for w, workload in enumerate(WORKLOADS):  # warm-up
        for impl in IMPLS:
            measure(server, impl, workload, max(counts[impl][w] // 100, 10), ours_url)
    print(f"\n## synchronous_commit={sync}\n")
    print("| workload (ops/s) | pysessionmanager | Django db (PostgreSQL) | ratio |")
    print("|---|---:|---:|---:|")
    runs: Runs = {}

    def ops(workload: str, impl: str) -> int:
        return counts[impl][WORKLOADS.index(workload)] // scale

    def one_run(workload: str, impl: str) -> float:
        return measure(server, impl, workload, ops(workload, impl), ours_url)

    for workload in WORKLOADS:
        ours, dj = interleaved(runs, workload, IMPLS, args.repeats, one_run)
        print(f"| {workload} | {ours:,.0f} | {dj:,.0f} | {ours / dj:.1f} |", flush=True)
    print_runs(runs, ops)


if __name__ == "__main__":
    main()

"""pysessionmanager's SQLite store against two persistent peers on local files.

    .venv/bin/pip install -r benches/python/requirements-bench.txt
    .venv/bin/python benches/python/bench_sqlite.py [--quick]

Peers: Django's database sessions on SQLite (Django's defaults) and cachelib's
FileSystemCache (Flask-Session's file store). Same workloads, one process, interleaved;
each measurement starts from an empty store, populated untimed. Slower peers run fewer
ops, so compare ops/s.
"""

from __future__ import annotations

import datetime
import os
import platform
import secrets
import sqlite3
import tempfile
from importlib.metadata import version

import django
from bench_memory import cpu_name  # this folder: the CPU model from /proc/cpuinfo
from cachelib import FileSystemCache
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection
from workloads import (
    DATA,
    LIVE,
    UPDATE,
    DjangoSessions,
    Pysessionmanager,
    Runs,
    arguments,
    interleaved,
    ops_per_second,
    print_runs,
)

THRESHOLD = 1_000_000  # cachelib evicts beyond this many files (default 500); never reached
IMPLS = ("pysessionmanager", "django", "cachelib")
WORKLOADS = ("create", "get", "mixed")
COUNTS = {  # ops per measurement for each workload; --quick divides them by 10
    "pysessionmanager": (50_000, 300_000, 100_000),
    "django": (2_000, 20_000, 5_000),
    "cachelib": (5_000, 50_000, 20_000),
}


def pysessionmanager(folder: str) -> Pysessionmanager:
    return Pysessionmanager(f"sqlite:///{folder}/sessions.db")


def django_db(folder: str) -> DjangoSessions:
    """One database for the whole run (settings are process-wide), emptied for each use."""
    SessionStore.get_model_class().objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")
    return DjangoSessions(SessionStore)


class Cachelib:
    def __init__(self, folder: str) -> None:
        self.cache = FileSystemCache(folder, threshold=THRESHOLD, default_timeout=3600)
        self.get, self.end = self.cache.get, self.cache.delete

    def create(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        self.cache.set(token, {"user_id": user, **DATA})
        return token

    def update(self, token: str) -> None:
        self.cache.set(token, {**self.cache.get(token), **UPDATE})

    def close(self) -> None:
        """Nothing to release."""


CLASSES = {"pysessionmanager": pysessionmanager, "django": django_db, "cachelib": Cachelib}


def setup_django(folder: str) -> dict[str, object]:
    """Configures Django standalone with a SQLite file in folder; returns its pragmas."""
    settings.configure(
        DATABASES={  # Django's defaults: no OPTIONS, no init_command
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{folder}/django.db"}
        },
        INSTALLED_APPS=["django.contrib.sessions"],
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_AGE=3600,  # the same expiry as the others (Django's default: 2 weeks)
    )
    django.setup()
    call_command("migrate", verbosity=0)
    with connection.cursor() as c:
        journal = c.execute("PRAGMA journal_mode").fetchone()[0]
        sync = ("OFF", "NORMAL", "FULL", "EXTRA")[c.execute("PRAGMA synchronous").fetchone()[0]]
    return {"journal_mode": journal, "synchronous": sync}


def measure(impl: str, workload: str, n: int) -> float:
    """ops/s of one run on a fresh store in a fresh temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        return ops_per_second(CLASSES[impl](folder), workload, n)


def main() -> None:
    args = arguments(__doc__).parse_args()
    scale = 10 if args.quick else 1
    django_dir = tempfile.TemporaryDirectory()
    pragmas = setup_django(django_dir.name)
    for w, workload in enumerate(WORKLOADS):  # warm-up, untimed: imports, caches, files
        for impl in IMPLS:
            measure(impl, workload, COUNTS[impl][w] // 100)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    py = f"{platform.python_implementation()} {platform.python_version()}"
    cpu = f"{cpu_name()} ({platform.machine()}), os.cpu_count() = {os.cpu_count()}"
    ver = {name: version(name) for name in ("pysessionmanager", "Django", "cachelib")}
    print(f"""# pysessionmanager (SQLite store) vs Django db sessions vs cachelib files

- Python: {py}, SQLite {sqlite3.sqlite_version} (Python's sqlite3, used by Django)
- Machine: {cpu}, {platform.system()} {platform.release()}
- Date: {now}; all files in {tempfile.gettempdir()}
- pysessionmanager {ver["pysessionmanager"]}: SessionManager(expiration_time=3600,
  store="sqlite:///…/sessions.db"); store defaults: durability=normal (WAL, synchronous=NORMAL)
- Django {ver["Django"]}: sessions.backends.db; DATABASES = one sqlite3 file, no OPTIONS, so
  SQLite's defaults: journal_mode={pragmas["journal_mode"]}, synchronous={pragmas["synchronous"]};
  JSONSerializer, SESSION_COOKIE_AGE=3600, DEBUG=False; one connection kept open
- cachelib {ver["cachelib"]}: FileSystemCache(threshold={THRESHOLD:,}, default_timeout=3600),
  pickle; keys from secrets.token_urlsafe(32)
- Durability differs: Django's default waits for the disk at every commit; pysessionmanager's
  default (durability=normal) does not, and cachelib never fsyncs (temp file + os.replace)
- Median of {args.repeats} runs after an untimed warm-up; implementations interleaved; gc off
  while timing. get cycles over {LIVE:,} live sessions; mixed: 80% get, 15% update, 4% create,
  1% end (+ a create) over {LIVE:,} live sessions, seed 1234
""")
    names = "pysessionmanager | Django db (SQLite) | cachelib FileSystemCache"
    ratios = "ratio pysessionmanager/Django | ratio pysessionmanager/cachelib"
    print(f"| workload (ops/s) | {names} | {ratios} |\n|---|---:|---:|---:|---:|---:|")
    runs: Runs = {}

    def ops(workload: str, impl: str) -> int:
        return COUNTS[impl][WORKLOADS.index(workload)] // scale

    for workload in WORKLOADS:
        ours, dj, cl = interleaved(
            runs,
            workload,
            IMPLS,
            args.repeats,
            lambda workload, impl: measure(impl, workload, ops(workload, impl)),
        )
        cells = f"{ours:,.0f} | {dj:,.0f} | {cl:,.0f} | {ours / dj:.1f} | {ours / cl:.1f}"
        print(f"| {workload} | {cells} |", flush=True)
    print_runs(runs, ops)
    django_dir.cleanup()


if __name__ == "__main__":
    main()

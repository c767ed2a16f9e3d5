"""Ctrl-C during a store call that waits: ``KeyboardInterrupt`` comes at once,
not when the store answers or ``timeout_ms`` runs out.

A child process makes a write while the store cannot answer it (Redis
stopped with SIGSTOP, a PostgreSQL row locked by another transaction, a
SQLite file whose write lock another process holds), each with a 30 s
timeout; the test sends it SIGINT. The child must raise ``KeyboardInterrupt``
well before the timeout, and the store must work afterwards, holding the
write either done or not done (the README's rule for interrupted writes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from children import sqlite_write_lock
from servers_postgres import PostgresServer
from servers_redis import RedisServer, ServerFactory

from pysessionmanager import SessionManager

CHILD = """
import sys
from pysessionmanager import SessionManager
m = SessionManager(store=sys.argv[1])
sid = m.create_session("alice", {"n": 0})
print(sid, flush=True)
sys.stdin.readline()  # the store is blocked now
try:
    m.update_session(sid, {"n": 1})
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""

#: Far longer than an interrupt may take, far shorter than the store's timeout.
PROMPT = 5.0


def interrupt_blocked_write(url: str, block: Callable[[], AbstractContextManager[None]]) -> str:
    """Runs CHILD on ``url``, blocks the store with ``block``, sends SIGINT
    during the write; returns the session id once the store is free again."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        sid = child.stdout.readline().strip()
        assert sid, "the child created its session"
        with block():
            child.stdin.write("go\n")
            child.stdin.flush()
            time.sleep(0.5)  # the child waits inside update_session now
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            outcome = child.stdout.readline().strip()
            waited = time.monotonic() - sent
        assert outcome == "interrupted", outcome
        assert waited < PROMPT, f"KeyboardInterrupt came {waited:.1f} s after SIGINT"
        assert child.wait(timeout=30) == 0
        return sid
    finally:
        if child.poll() is None:
            child.kill()


def check_store_after(url: str, sid: str) -> None:
    """The store works, and the interrupted write either happened or not."""
    with SessionManager(store=url) as m:
        assert m.get_session(sid) in ({"n": 0}, {"n": 1})
        m.update_session(sid, {"n": 2})
        assert m.get_session(sid) == {"n": 2}


def test_redis(own_redis: ServerFactory) -> None:
    server: RedisServer = own_redis()
    server.start()
    url = server.url(timeout_ms="30000")

    @contextmanager
    def stopped() -> Iterator[None]:
        server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            yield
        finally:
            server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]

    sid = interrupt_blocked_write(url, stopped)
    check_store_after(url, sid)


def test_postgres(postgres_server: PostgresServer, postgres_url: str) -> None:
    url = postgres_url + "?timeout_ms=30000"
    database = postgres_url.rsplit("/", 1)[1]

    @contextmanager
    def row_locked() -> Iterator[None]:
        psql = postgres_server.bin / "psql"
        holder = subprocess.Popen(
            [str(psql) if psql.is_file() else "psql", "-X", "-At", "-h", str(postgres_server.dir)]
            + ["-p", str(postgres_server.port), "-U", "postgres", "-d", database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("BEGIN; SELECT 'locked' FROM pysessionmanager_sessions FOR UPDATE;\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "BEGIN"
        assert holder.stdout.readline().strip() == "locked"
        try:
            yield
        finally:
            holder.stdin.write("COMMIT;\n")
            holder.stdin.close()
            holder.wait(timeout=30)

    sid = interrupt_blocked_write(url, row_locked)
    check_store_after(url, sid)


def test_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    url = f"sqlite:///{path}?busy_timeout_ms=30000"

    @contextmanager
    def write_locked() -> Iterator[None]:
        with sqlite_write_lock(path):
            yield

    sid = interrupt_blocked_write(url, write_locked)
    check_store_after(url, sid)


def test_a_handler_that_does_not_raise_lets_the_call_finish(tmp_path: Path) -> None:
    """Only a handler that raises ends the wait: one that notes the signal
    and returns lets the write complete once the store is free."""
    path = tmp_path / "sessions.db"
    code = """
    import signal, sys
    from pysessionmanager import SessionManager
    seen = []
    signal.signal(signal.SIGINT, lambda *_: seen.append("SIGINT"))
    m = SessionManager(store=sys.argv[1])
    sid = m.create_session("alice", {"n": 0})
    print("ready", flush=True)
    sys.stdin.readline()
    m.update_session(sid, {"n": 1})
    print(seen, m.get_session(sid)["n"], flush=True)
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), f"sqlite:///{path}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    with sqlite_write_lock(path) as release:
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        time.sleep(0.3)
        release()
        assert child.stdout.readline() == "['SIGINT'] 1\n"
    assert child.wait(timeout=30) == 0

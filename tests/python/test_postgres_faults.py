"""The PostgreSQL store when the server is not there: a clear StoreUnavailable
within the configured timeout, never a hang; the same manager works again once
the server is back; and no acknowledged create is lost across a crash-like
(immediate) shutdown with PostgreSQL's default settings."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from ports import free_port
from servers_postgres import PostgresServer, require_postgres
from waiting import wait_until

from pysessionmanager import SessionManager, StoreError, StoreUnavailable

TIMEOUT_MS = 2000


def test_a_server_that_is_not_running_is_unavailable_at_once() -> None:
    url = f"postgresql://app:pw@127.0.0.1:{free_port()}/app?timeout_ms={TIMEOUT_MS}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="Connection refused") as info:
        SessionManager(store=url)
    assert time.monotonic() - started < TIMEOUT_MS / 1000
    assert isinstance(info.value, ConnectionError)
    assert "is the server running?" in str(info.value) and ":pw@" not in str(info.value)


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def test_a_server_that_never_answers_is_unavailable_within_the_timeout(black_hole: int) -> None:
    url = f"postgresql://app:pw@127.0.0.1:{black_hole}/app?timeout_ms={TIMEOUT_MS}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        SessionManager(store=url)
    elapsed = time.monotonic() - started
    assert TIMEOUT_MS / 1000 * 0.9 < elapsed < TIMEOUT_MS / 1000 + 2


class Load:
    """Threads running creates, reads and updates until stopped, timing every call."""

    def __init__(self, m: SessionManager, threads: int = 4) -> None:
        self.m = m
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.ok = 0
        self.slowest = 0.0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, n: int) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                sid = self.m.create_session(f"user{n}", {"n": n})
                self.m.update_session(sid, {"seen": True})
                assert self.m.get_session(sid)["seen"] is True
                error = None
            except Exception as e:  # judged below
                error = e
                time.sleep(0.01)
            with self.lock:
                self.slowest = max(self.slowest, time.monotonic() - started)
                if error is None:
                    self.ok += 1
                else:
                    self.errors.append(error)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=3 * TIMEOUT_MS / 1000)
            assert not t.is_alive(), "a store call hung"


def test_a_server_killed_under_load_then_restarted(own_postgres: PostgresServer) -> None:
    m = SessionManager(store=own_postgres.url(timeout_ms=TIMEOUT_MS))
    load = Load(m)
    wait_until(lambda: load.ok > 0, timeout=10, what="calls to succeed")
    assert not load.errors
    own_postgres.stop("kill")  # SIGKILL to the postmaster and every backend
    wait_until(lambda: len(load.errors) >= 8, timeout=10, what="calls to fail")
    time.sleep(1)  # long enough for calls caught mid-flight to reach the timeout
    with load.lock:
        errors, load.errors = load.errors, []
        slowest_while_down = load.slowest
    assert errors, "calls failed while the server was down"
    for e in errors:
        assert isinstance(e, StoreUnavailable), repr(e)
        assert isinstance(e, ConnectionError)
    # Three calls per round, each within the timeout: no hang.
    assert slowest_while_down < 3 * TIMEOUT_MS / 1000 + 1
    with load.lock:
        ok_down = load.ok
    own_postgres.start()  # crash recovery, same port
    wait_until(lambda: load.ok > ok_down, timeout=60, what="the recovered server to answer")
    time.sleep(0.5)  # every thread's next call finds the server back
    with load.lock:
        load.errors.clear()
        ok_before = load.ok
    wait_until(lambda: load.ok > ok_before + 20, timeout=10, what="calls to go on succeeding")
    load.finish()
    assert load.ok > ok_before, "the same manager works again"
    assert not load.errors, load.errors[:3]
    m.close()


def test_a_restart_keeps_the_same_manager_working(own_postgres: PostgresServer) -> None:
    with SessionManager(store=own_postgres.url(timeout_ms=TIMEOUT_MS, pool_size=4)) as m:
        before = [m.create_session("alice", {"i": i}) for i in range(8)]
        own_postgres.stop("fast")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            m.get_session(before[0])
        assert time.monotonic() - started < TIMEOUT_MS / 1000 + 1
        own_postgres.start()
        # The pool replaced its dead connections: the first call works.
        assert m.get_session(before[0]) == {"i": 0}
        for i, sid in enumerate(before):
            assert m.get_session(sid) == {"i": i}
        m.create_session("alice")
        assert m.count() == 9


def test_a_hung_server_is_unavailable_within_the_timeout_then_works_again(
    own_postgres: PostgresServer,
) -> None:
    with SessionManager(store=own_postgres.url(timeout_ms=TIMEOUT_MS)) as m:
        sid = m.create_session("alice", {"n": 1})
        own_postgres.pause()
        try:
            for call in (lambda: m.get_session(sid), lambda: m.create_session("bob")):
                started = time.monotonic()
                with pytest.raises(StoreUnavailable) as info:
                    call()
                elapsed = time.monotonic() - started
                assert f"within {TIMEOUT_MS} ms" in str(info.value), info.value
                # The timeout, plus slack for a loaded 2-CPU machine: never a hang.
                assert elapsed < TIMEOUT_MS / 1000 + 2, (elapsed, info.value)
        finally:
            own_postgres.resume()
        assert m.get_session(sid) == {"n": 1}
        m.update_session(sid, {"n": 2})
        assert m.get_session(sid) == {"n": 2}


def test_no_acknowledged_create_is_lost_across_an_immediate_shutdown(
    own_postgres: PostgresServer,
) -> None:
    """PostgreSQL's defaults (fsync on, synchronous_commit on): a create is
    acknowledged only once its commit is on disk, so SIGQUIT (no checkpoint,
    shared memory discarded, crash recovery at the next start) loses none."""
    assert own_postgres.psql("SHOW synchronous_commit") == "on"
    m = SessionManager(store=own_postgres.url(timeout_ms=TIMEOUT_MS))
    acknowledged: list[tuple[str, int]] = []
    stop = threading.Event()

    def write(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                acknowledged.append((m.create_session(f"w{n}", {"i": i, "w": n}), i))
            except StoreUnavailable:
                time.sleep(0.01)
            i += 1

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in writers:
        t.start()
    time.sleep(1)
    own_postgres.stop("immediate")
    stop.set()
    for t in writers:
        t.join()
    assert len(acknowledged) > 50
    own_postgres.start()
    for sid, i in acknowledged:
        assert m.get_session(sid)["i"] == i
    # A commit whose answer the shutdown cut off may be there too, unacknowledged.
    assert m.count() >= len(acknowledged)
    m.close()


def test_an_exhausted_pool_says_so_not_that_the_server_is_silent(
    postgres_server, postgres_url: str
) -> None:
    """With one pooled connection held by a call the server keeps waiting
    (a table lock), a second call times out waiting for the pool: its
    error says the pool was exhausted and how to size it."""
    from urllib.parse import urlsplit

    url = f"{postgres_url}?pool_size=1&timeout_ms=400"
    database = urlsplit(postgres_url).path.lstrip("/")
    with SessionManager(store=url) as m:
        sid = m.create_session("u")
        locker = threading.Thread(
            target=postgres_server.psql,
            args=(
                "BEGIN; LOCK TABLE pysessionmanager_sessions IN ACCESS EXCLUSIVE MODE; "
                "SELECT pg_sleep(1.5); COMMIT;",
                database,
            ),
        )
        locker.start()
        time.sleep(0.3)  # the lock is taken
        errors: list[str] = []

        def call() -> None:
            try:
                m.get_session(sid)
            except StoreUnavailable as e:
                errors.append(str(e))

        first = threading.Thread(target=call)
        first.start()
        time.sleep(0.1)  # the first call holds the one connection, blocked on the lock
        call()
        first.join()
        locker.join()
        assert len(errors) == 2, errors
        assert any("pooled connections" in e and "pool_size" in e for e in errors), errors
        assert any("no answer from" in e for e in errors), errors
        assert m.get_session(sid).user_id == "u"  # and all is well afterwards


def test_a_server_out_of_memory_refuses_whole_and_keeps_working() -> None:
    """Every server process may map at most 300 MB: an 80 MB session cannot
    be stored. The call fails with a clear error, nothing of it is written,
    and the same manager goes on working (small writes, logout)."""
    server = PostgresServer(require_postgres())
    server.start(memory_limit_mb=300)
    try:
        with SessionManager(store=server.url(), max_data_bytes=200_000_000) as m:
            sid = m.create_session("alice", {"a": 1})
            with pytest.raises(StoreError, match="out of memory.*nothing of this call was written"):
                m.create_session("bob", {"x": "y" * 80_000_000})
            with pytest.raises(StoreError, match="out of memory"):
                m.update_session(sid, {"x": "y" * 80_000_000})
            assert m.count() == 1 and m.get_session(sid) == {"a": 1}
            m.update_session(sid, {"b": 2})
            assert m.get_session(sid) == {"a": 1, "b": 2}
            m.end_session(sid)
            assert m.count() == 0
    finally:
        server.remove()

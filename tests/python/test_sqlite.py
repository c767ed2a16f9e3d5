"""The SQLite store: persistence across restarts and processes, crash safety,
and clear refusals of files that are not ours."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from children import run_python, sqlite_write_lock
from waiting import wait_until

from pysessionmanager import SessionManager, StoreError, StoreUnavailable


def url(path: Path, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    with SessionManager(store=url(db)) as m:
        sid = m.create_session("alice", {"cart": ["book"], "n": 1})
        m.update_session(sid, {"n": 2})
    with SessionManager(store=url(db)) as m:
        s = m.get_session(sid)
        assert s == {"cart": ["book"], "n": 2}
        assert s.version == 2
        assert [x.key for x in m.list_sessions("alice")] == [s.key]


WORKER = """
import sys
from pysessionmanager import SessionManager
store, worker = sys.argv[1], sys.argv[2]
with SessionManager(store=store) as m:
    for i in range(300):
        sid = m.create_session(f"user{worker}", {"i": i})
        m.update_session(sid, {"worker": worker})
        m.increment(sid, "hits")
        if i % 3 == 0:
            m.end_session(sid)
        else:
            print(sid, i, flush=True)
"""


def test_four_processes_at_full_speed_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    SessionManager(store=url(db)).close()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url(db), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    acknowledged = {}
    for n, worker in enumerate(workers):
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        assert "locked" not in err
        for line in out.splitlines():
            sid, i = line.split()
            acknowledged[sid] = (n, int(i))
    assert len(acknowledged) == 4 * 200
    with SessionManager(store=url(db)) as m:
        for sid, (n, i) in acknowledged.items():
            assert m.get_session(sid) == {"i": i, "worker": str(n), "hits": 1}
        assert m.count() == 4 * 200
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


CRASHER = """
import sys
from pysessionmanager import SessionManager
m = SessionManager(store=sys.argv[1])
i = 0
while True:
    sid = m.create_session("alice", {"i": i, "pad": "x" * 200})
    m.update_session(sid, {"updated": True})
    print(sid, i, flush=True)
    i += 1
"""


def test_sigkill_mid_stream_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", CRASHER, url(db)], stdout=subprocess.PIPE, text=True
    )
    acknowledged = []
    assert writer.stdout is not None
    for line in writer.stdout:
        acknowledged.append(line.split())
        if len(acknowledged) == 500:
            writer.send_signal(signal.SIGKILL)
            break
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    with SessionManager(store=url(db)) as m:
        for sid, i in acknowledged:
            assert m.get_session(sid) == {"i": int(i), "pad": "x" * 200, "updated": True}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def untouched(path: Path) -> bytes:
    return path.read_bytes()


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_bytes(b"these are my notes, not a database\n" * 200)
    before = untouched(db)
    with pytest.raises(StoreError, match="is not a SQLite database"):
        SessionManager(store=url(db))
    assert untouched(db) == before


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('alice')")
    before = untouched(db)
    with pytest.raises(StoreError, match="database of something else"):
        SessionManager(store=url(db))
    assert untouched(db) == before


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    with SessionManager(store=url(db)) as m:
        sid = m.create_session("alice", {"keep": True})
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE pysessionmanager_meta SET value = 99 WHERE name = 'schema_version'")
    with pytest.raises(StoreError, match="written by a newer pysessionmanager"):
        SessionManager(store=url(db))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE pysessionmanager_meta SET value = 3 WHERE name = 'schema_version'")
    with SessionManager(store=url(db)) as m:
        assert m.get_session(sid) == {"keep": True}


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does its folder exist"):
        SessionManager(store=url(tmp_path / "no" / "such" / "sessions.db"))
    assert not (tmp_path / "no").exists()


@contextmanager
def read_only_view(folder: Path) -> Iterator[Path]:
    """The folder, seen through a path where nothing can be written.

    Permission bits do not stop root, so as root the view is a read-only bind
    mount of the folder."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    view = folder.with_name(folder.name + "-read-only")
    view.mkdir()
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(folder), str(view)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot make a read-only folder to test with: {mounted.stderr.strip()}")
    try:
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_read_only_folder_is_a_clear_error_and_the_file_is_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    with SessionManager(store=url(folder / "sessions.db")) as m:
        sid = m.create_session("alice", {"keep": True})
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with read_only_view(folder) as view:
        with pytest.raises(StoreError, match="is it or its folder read-only"):
            SessionManager(store=url(view / "sessions.db"))
        with pytest.raises(StoreError, match="cannot open the session database .*writable"):
            SessionManager(store=url(view / "new.db"))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    with SessionManager(store=url(folder / "sessions.db")) as m:
        assert m.get_session(sid) == {"keep": True}


def test_bad_sqlite_urls() -> None:
    for bad, words in [
        ("sqlite://", "needs a file path"),
        ("sqlite:///x.db?durability=fast", 'durability must be "normal" or "full"'),
        ("sqlite:///x.db?color=red", 'unknown sqlite:// option "color"'),
        ("sqlite:///x.db?sweep_interval_ms=soon", "whole number of milliseconds"),
    ]:
        with pytest.raises(ValueError, match=words):
            SessionManager(store=bad)


def test_expired_rows_are_swept_without_being_touched(tmp_path: Path) -> None:
    from pysessionmanager.testing import ManualClock

    db = tmp_path / "sessions.db"
    clock = ManualClock()
    m = SessionManager(expiration_time=1, store=url(db, sweep_interval_ms="50"), clock=clock)
    for i in range(1200):
        m.create_session(f"user{i}")
    clock.advance(2)

    def rows() -> int:
        # Counted by another process: two SQLite libraries in one process
        # would release each other's file locks.
        code = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
        code += "'SELECT count(*) FROM pysessionmanager_sessions').fetchone()[0])"
        return int(run_python(code, str(db)))

    # The sweeper wakes every 50 ms and removes 500 rows per statement.
    wait_until(lambda: rows() == 0, timeout=30, what="the sweeper to remove every expired row")
    m.close()


def test_a_file_locked_past_the_busy_timeout_is_unavailable_and_intact(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    with SessionManager(store=url(db)) as m:
        sid = m.create_session("alice", {"keep": True})
    m = SessionManager(store=url(db, busy_timeout_ms="200"))
    with sqlite_write_lock(db):
        # Reads never wait behind a writer (WAL): they answer while the lock is held.
        assert m.get_session(sid) == {"keep": True}
        assert m.count() == 1
        with pytest.raises(StoreUnavailable, match="locked by another connection") as info:
            m.create_session("bob")
        assert isinstance(info.value, ConnectionError)
    assert m.get_session(sid) == {"keep": True}
    m.create_session("bob")  # works again once the lock is gone
    assert m.count() == 2
    m.close()


FILLER = """
import resource, signal, sys
from pysessionmanager import SessionManager, StoreError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write(), not a kill
limit = 1024 * 1024
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
m = SessionManager(store=sys.argv[1])
for i in range(100_000):
    try:
        sid = m.create_session("alice", {"i": i, "pad": "x" * 500})
    except StoreError as e:
        print("ERROR", type(e).__name__, e, flush=True)
        break
    print(sid, i, flush=True)
"""


def test_a_full_disk_is_a_clear_error_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    SessionManager(store=url(db)).close()
    out = run_python(FILLER, url(db))
    lines = out.splitlines()
    assert lines[-1].startswith("ERROR StoreError"), lines[-3:]
    assert "disk full" in lines[-1] and "nothing of this write was stored" in lines[-1]
    acknowledged = [line.split() for line in lines[:-1]]
    assert len(acknowledged) >= 20
    with SessionManager(store=url(db)) as m:
        for sid, i in acknowledged:
            assert m.get_session(sid) == {"i": int(i), "pad": "x" * 500}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

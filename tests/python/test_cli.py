"""The `pysessionmanager` command on real stores: info, list, end, purge, and
migrate between every ordered pair of SQLite, Redis and PostgreSQL with
writes going on, killed halfway and run again."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from servers_redis import fresh_prefix

from pysessionmanager import SessionManager
from pysessionmanager.cli import main

DURABLE = ["sqlite", "redis", "postgres"]


@pytest.fixture
def new_store(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A URL of a new, empty store of a kind; each call another one."""
    made = iter(range(1000))

    def url(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'store{next(made)}.db'}"
        if kind == "redis":
            return request.getfixturevalue("redis_server").url(prefix=fresh_prefix())
        server = request.getfixturevalue("postgres_server")
        return server.url(server.fresh_database())

    return url


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


def test_info_list_end_and_purge(new_store: Callable[[str], str], capsys) -> None:
    url = new_store("sqlite") + "?sweep_interval_ms=0"  # the purge finds what expired
    with SessionManager(store=url) as m:
        alice = [m.create_session("alice", {"cart": [1, 2]}) for _ in range(3)]
        m.create_session("bob", {"n": 1})
        m.create_session("carol", expiration_time=0.05)
        time.sleep(0.1)

        code, text = run("info", url)
        assert code == 0
        assert "live sessions:     4" in text
        assert "users:             2" in text
        assert "sessions per user: max 3, median 2" in text
        assert "layout version:    " in text and "kind:              sqlite" in text

        code, text = run("list", url, "--json")
        listed = json.loads(text)
        assert code == 0 and len(listed) == 4
        assert {s["user_id"] for s in listed} == {"alice", "bob"}
        assert all(sid not in text for sid in alice), "session ids are never shown"
        first = m.session_info(alice[0])
        (mine,) = [s for s in listed if s["key"] == first.key]
        assert mine["data"] == {"cart": [1, 2]} and mine["size"] == len('{"cart":[1,2]}')

        code, text = run("list", url, "--user", "alice")
        assert code == 0 and text.count("alice") == 3 and first.key in text

        assert run("end", url, "--key", first.key) == (0, "ended 1 session\n")
        assert not m.is_session_active(alice[0])
        assert run("end", url, "--key", first.key) == (0, "no live session has that key\n")
        assert run("end", url, "--user", "alice") == (0, "ended 2 session(s) of user 'alice'\n")
        assert m.count() == 1
        assert run("purge", url) == (0, "removed 1 expired session(s)\n")


def test_bad_input_is_named_and_passwords_are_never_printed(
    new_store: Callable[[str], str], capsys
) -> None:
    assert run("info", "redis://:hunter2@127.0.0.1:1/0")[0] == 1
    err = capsys.readouterr().err
    assert "cannot open the store" in err and "hunter2" not in err

    assert run("info", "memory://")[0] == 1
    assert "export and import its sessions" in capsys.readouterr().err

    assert run("info", "bogus://x")[0] == 1
    assert "unknown store scheme" in capsys.readouterr().err

    url = new_store("sqlite")
    with SessionManager(store=url) as m:
        sid = m.create_session("alice")
        assert run("end", url, "--key", sid)[0] == 1, "a session id is not a key"
        err = capsys.readouterr().err
        assert "looks like a session id" in err and sid not in err
        assert m.is_session_active(sid)

    for argv in (["end", url], ["end", url, "--user", "a", "--key", "b"], ["nope"], []):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 2, argv
    with pytest.raises(SystemExit) as exit:
        main(["migrate", "--help"])
    assert exit.value.code == 0
    assert "Resumable" in capsys.readouterr().out

    state = Path(new_store("sqlite").removeprefix("sqlite:///") + ".state")
    state.write_text("not json")
    assert run("migrate", url, new_store("sqlite"), "--state", str(state))[0] == 1
    assert "not a migration state file" in capsys.readouterr().err
    assert run("migrate", url, new_store("sqlite"), "--batch", "0")[0] == 1
    assert "1 to 10000" in capsys.readouterr().err


def fill(url: str, count: int) -> dict[str, dict]:
    """`count` sessions of 50 users; their ids and data."""
    with SessionManager(store=url, expiration_time=3600) as m:
        return {
            m.create_session(f"user{i % 50}", {"i": i, "pad": "x" * (i % 40)}): {
                "i": i,
                "pad": "x" * (i % 40),
            }
            for i in range(count)
        }


def check_all_moved(target: str, sessions: dict[str, dict]) -> None:
    with SessionManager(store=target) as m:
        for sid, data in sessions.items():
            assert dict(m.session_info(sid)) == data, "every session opens on the target"
        assert m.count() == len(sessions)


@pytest.mark.parametrize(
    ("source_kind", "target_kind"),
    # Every pair, and between two stores of one kind (two Redis prefixes, two
    # databases), whose drivers must not wait on each other.
    [(a, b) for a in DURABLE for b in DURABLE if a != b]
    + [("redis", "redis"), ("postgres", "postgres")],
)
def test_migrate_keeps_everyone_logged_in_while_writes_go_on(
    source_kind: str,
    target_kind: str,
    new_store: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    source, target = new_store(source_kind), new_store(target_kind)
    sessions = fill(source, 2000)
    stop = threading.Event()
    writes = {"n": 0}

    def writer() -> None:
        # Logins and cart changes on the old store while the migration runs.
        with SessionManager(store=source, expiration_time=3600) as m:
            ids = list(sessions)
            while not stop.is_set():
                n = writes["n"]
                sid = ids[n % len(ids)]
                sessions[sid] = {**sessions[sid], "i": -n}
                m.update_session(sid, {"i": -n})
                new = m.create_session("late", {"late": n})
                sessions[new] = {"late": n}
                writes["n"] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        code, text = run("migrate", source, target, "--batch", "300")
    finally:
        stop.set()
        thread.join()
    assert code == 0, text
    assert "verified" in text and writes["n"] > 0
    # The cut-over step: the app now writes to the target; one more run
    # brings what the old store took after the first.
    code, text = run("migrate", source, target)
    assert code == 0, text
    check_all_moved(target, sessions)
    assert not list(tmp_path.glob(".pysessionmanager-migrate-*")), "state removed when done"


def test_migrate_killed_halfway_finishes_on_the_next_run(
    new_store: Callable[[str], str], tmp_path: Path
) -> None:
    source, target = new_store("sqlite"), new_store("redis")
    sessions = fill(source, 10_000)
    state = tmp_path / "state.json"
    command = [sys.executable, "-m", "pysessionmanager", "migrate", source, target]
    command += ["--state", str(state), "--batch", "20"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if state.exists() and json.loads(state.read_text() or "{}").get("copied", 0) >= 500:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert json.loads(state.read_text())["pass"] == 1, "killed in the first pass"
    with SessionManager(store=target) as m:
        assert 0 < m.count() < 10_000, "killed halfway"

    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stdout and "verified" in done.stdout
    check_all_moved(target, sessions)
    assert not state.exists()
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and " 0 created, 0 updated, 20000 unchanged" in again.stdout

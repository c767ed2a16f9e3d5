"""Two applications on one store: what one process does, another sees at
once, on every store processes can share (SQLite, Redis, PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from children import run_python
from redis_layout import session_key

from pysessionmanager import SessionManager, SessionNotFound

SECOND_PROCESS = """
import sys
from pysessionmanager import SessionManager
with SessionManager(store=sys.argv[1]) as m:
    assert m.get_session(sys.argv[2]) == {"step": 1}
    m.update_session(sys.argv[2], {"step": 2})
    print(m.rotate_session(sys.argv[2]))
"""

THIRD_PROCESS = """
import sys
from pysessionmanager import SessionManager
with SessionManager(store=sys.argv[1]) as m:
    m.end_session(sys.argv[2])
"""


@pytest.fixture(params=["sqlite", "redis", "redis-cluster", "postgres"])
def shared_store(request: pytest.FixtureRequest, url_of: Callable[[str], str]) -> str:
    return url_of(request.param)


def test_a_session_is_read_updated_rotated_and_ended_by_other_processes(
    shared_store: str,
) -> None:
    with SessionManager(store=shared_store) as m:
        sid = m.create_session("alice", {"step": 1})
        new = run_python(SECOND_PROCESS, shared_store, sid).strip()
        assert not m.is_session_active(sid), "the other process's rotation ended the old id"
        assert m.get_session(new) == {"step": 2}
        assert m.get_session(new).version == 2
        assert [s.key for s in m.list_sessions("alice")] == [session_key(new)]
        run_python(THIRD_PROCESS, shared_store, new)
        with pytest.raises(SessionNotFound):
            m.get_session(new)
        assert m.count() == 0
    with SessionManager(store=shared_store) as later:  # and after a restart
        assert not later.is_session_active(new)


WORKER = """
import sys
from pysessionmanager import SessionManager
with SessionManager(store=sys.argv[1]) as m:
    shared = sys.argv[2]
    for i in range(200):
        m.increment(shared, "hits")
        m.update_session(shared, {f"w{sys.argv[3]}": i})
        sid = m.create_session(f"user{sys.argv[3]}", {"i": i})
        print(sid, i, flush=True)
"""


def test_four_processes_on_one_store_lose_no_update(shared_store: str) -> None:
    """Four processes write one shared session at once (compare-and-set
    contended across processes) and create their own; nothing is lost."""
    with SessionManager(store=shared_store) as m:
        shared = m.create_session("everyone", {"hits": 0})
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, shared_store, shared, str(n)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(4)
        ]
        created = {}
        for worker in workers:
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err
            for line in out.splitlines():
                sid, i = line.split()
                created[sid] = int(i)
        final = m.get_session(shared)
        assert final == {"hits": 800, "w0": 199, "w1": 199, "w2": 199, "w3": 199}
        assert final.version == 1 + 2 * 800
        assert len(created) == 800
        for sid, i in created.items():
            assert m.get_session(sid) == {"i": i}
        assert m.count() == 801

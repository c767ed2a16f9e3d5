"""A manager made before ``fork()`` (gunicorn ``--preload``, a module-level
manager, ``multiprocessing``'s fork start method) works in the parent and in
every child at once: each process gets its own connections, never another
process's answer, and never hangs."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from pysessionmanager import RateLimiter, SessionManager, SessionNotFound

STORES = ["memory", "sqlite", "redis", "postgres"]
ROUNDS = 150
# A child that has not finished by then hangs: it is killed and the test fails.
DEADLINE_S = 60


def traffic(manager: SessionManager, who: str, rounds: int = ROUNDS) -> None:
    """Creates, reads, updates and ends sessions, checking that every answer
    is this process's own (a reply crossed with another process's would name
    another owner or round)."""
    for i in range(rounds):
        sid = manager.create_session(f"{who}-{i}", {"owner": who, "round": i})
        session = manager.get_session(sid)
        assert (session["owner"], session["round"]) == (who, i), (who, i, dict(session))
        manager.update_session(sid, {"seen": i})
        assert manager.increment(sid, "hits") == 1
        assert manager.get_session(sid)["seen"] == i
        manager.end_session(sid)
        assert not manager.is_session_active(sid)


def wait_for(pid: int) -> int:
    """The child's exit status; kills it and fails the test if it hangs."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child {pid} hung for {DEADLINE_S} s")


def in_child(work: Callable[[], None]) -> int:
    """Forks; the child runs ``work`` and exits 0, or 1 with the error on
    stderr. Returns the child's pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            work()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


@pytest.mark.parametrize("kind", STORES)
def test_parent_and_children_use_one_manager_at_once(
    kind: str, url_of: Callable[[str], str]
) -> None:
    manager = SessionManager(store=url_of(kind))
    before = manager.create_session("before-fork", {"made": "in the parent"})
    manager.get_session(before)  # the parent's connections are open and in use

    def child() -> None:
        # Made before the fork: visible in the child (memory: in its copy).
        assert manager.get_session(before)["made"] == "in the parent"
        traffic(manager, f"child-{os.getpid()}")

    children = [in_child(child) for _ in range(3)]
    traffic(manager, "parent")
    assert [wait_for(pid) for pid in children] == [0, 0, 0]
    # The parent's connections survived its children's.
    traffic(manager, "parent-after", rounds=20)
    assert manager.get_session(before)["made"] == "in the parent"
    manager.close()


@pytest.mark.parametrize("kind", STORES)
def test_fork_while_other_threads_are_inside_calls(kind: str, url_of: Callable[[str], str]) -> None:
    """Threads of the parent are inside store calls at the moment of the fork;
    the child must not inherit a lock one of them held, nor their connection."""
    manager = SessionManager(store=url_of(kind))
    stop = threading.Event()
    errors: list[BaseException] = []

    def busy(n: int) -> None:
        try:
            while not stop.is_set():
                traffic(manager, f"thread-{n}", rounds=5)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=busy, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        children = []
        for _ in range(5):
            time.sleep(0.01)
            children.append(in_child(lambda: traffic(manager, f"child-{os.getpid()}", 30)))
        assert [wait_for(pid) for pid in children] == [0] * 5
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    manager.close()


def _mp_worker(manager: SessionManager, limiter: RateLimiter, sid: str, queue) -> None:
    traffic(manager, f"mp-{os.getpid()}", rounds=50)
    queue.put((manager.get_session(sid)["made"], limiter.hit("shared-key").allowed))


@pytest.mark.parametrize("kind", STORES)
def test_multiprocessing_fork_start_method(kind: str, url_of: Callable[[str], str]) -> None:
    manager = SessionManager(store=url_of(kind))
    limiter = RateLimiter("1000/minute", store=manager)
    sid = manager.create_session("before-fork", {"made": "in the parent"})
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_mp_worker, args=(manager, limiter, sid, queue)) for _ in range(2)
    ]
    for w in workers:
        w.start()
    traffic(manager, "parent", rounds=50)
    results = [queue.get(timeout=DEADLINE_S) for _ in workers]
    for w in workers:
        w.join(timeout=DEADLINE_S)
        assert w.exitcode == 0
    assert results == [("in the parent", True)] * 2
    assert limiter.hit("shared-key").allowed
    manager.close()


@pytest.mark.parametrize("kind", STORES)
def test_a_child_exits_quietly_and_the_parent_can_close(
    kind: str, url_of: Callable[[str], str], tmp_path
) -> None:
    """A child that drops or closes the inherited manager exits with status 0
    and prints nothing (no panic from threads that only the parent has)."""
    manager = SessionManager(store=url_of(kind))
    sid = manager.create_session("u", {})
    err = tmp_path / "stderr"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        fd = os.open(err, os.O_WRONLY | os.O_CREAT)
        os.dup2(fd, 2)
        try:
            manager.get_session(sid)
            manager.close()
            code = 0
        except BaseException:
            code = 1
        os._exit(code)
    assert wait_for(pid) == 0
    assert err.read_text() == ""
    # Closing in the child closed nothing of the parent's.
    assert manager.get_session(sid).user_id == "u"
    manager.close()
    with pytest.raises(Exception, match="closed"):
        manager.get_session(sid)


@pytest.mark.parametrize("kind", STORES)
def test_a_child_that_exits_normally_prints_nothing(
    kind: str, url_of: Callable[[str], str]
) -> None:
    """The child ends with Python's own shutdown (``sys.exit``), which drops
    the inherited manager: no panic from threads only the parent has, no hang."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD_EXITS_NORMALLY, url_of(kind)],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.splitlines() == ["child: alice", "child exit: 0", "parent: alice"]


CHILD_EXITS_NORMALLY = """
import os, sys
from pysessionmanager import SessionManager
m = SessionManager(store=sys.argv[1])
sid = m.create_session("alice")
pid = os.fork()
if pid == 0:
    print("child:", m.get_session(sid).user_id, flush=True)
    sys.exit(0)
_, status = os.waitpid(pid, 0)
print("child exit:", os.waitstatus_to_exitcode(status))
print("parent:", m.get_session(sid).user_id)
m.close()
"""


def test_a_manager_closed_before_the_fork_stays_closed_in_the_child(
    url_of: Callable[[str], str],
) -> None:
    """The child does not open again a store its parent had closed."""
    manager = SessionManager(store=url_of("sqlite"))
    manager.close()

    def child() -> None:
        with pytest.raises(Exception, match="closed"):
            manager.create_session("u")

    assert wait_for(in_child(child)) == 0


def test_sessions_ended_in_a_child_are_gone_for_the_parent(url_of: Callable[[str], str]) -> None:
    manager = SessionManager(store=url_of("sqlite"))
    sid = manager.create_session("u", {})
    assert wait_for(in_child(lambda: manager.end_session(sid))) == 0
    with pytest.raises(SessionNotFound):
        manager.get_session(sid)

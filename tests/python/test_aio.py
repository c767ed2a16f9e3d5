"""AsyncSessionManager and AsyncRateLimiter on every store, on asyncio's loop
and on uvloop: the same operations and errors as the synchronous manager, a
loop that is never blocked, calls that run to their end when cancelled."""

from __future__ import annotations

import asyncio
import gc
import random
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop

from pysessionmanager import (
    AsyncRateLimiter,
    AsyncSessionManager,
    ManagerClosed,
    SessionConflict,
    SessionManager,
    SessionNotFound,
    UnsupportedDataType,
    aio,
)

STORES = ["memory", "sqlite", "redis", "postgres"]
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run(loop_kind: str, main: Callable[[], Awaitable[Any]]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop_kind]) as runner:
        return runner.run(main())


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("kind", STORES)
def test_every_operation_awaits_like_the_sync_one(
    kind: str, loop_kind: str, url_of: Callable[[str], str]
) -> None:
    async def main() -> None:
        async with AsyncSessionManager(60, store=url_of(kind)) as m:
            sid = await m.create_session("alice", {"role": "admin"})
            # Redis routes its tokens (46 characters): see keys.rs.
            assert isinstance(sid, str) and len(sid) == (46 if kind == "redis" else 43)
            s = await m.get_session(sid)
            assert s == {"role": "admin"}
            assert (s.session_id, s.user_id, s.version) == (sid, "alice", 1)
            assert (await m.session_info(sid)).user_id == "alice"
            assert await m.update_session(sid, {"theme": "dark"}) is None
            assert await m.set_session_data(sid, {"a": 1}, expected_version=2) == 3
            with pytest.raises(SessionConflict):
                await m.set_session_data(sid, {"a": 2}, expected_version=2)
            assert await m.increment(sid, "hits") == 1
            assert await m.increment(sid, "hits", 4) == 5
            assert await m.append(sid, "cart", ["book", 1]) == 1
            assert (await m.get_session(sid)) == {"a": 1, "hits": 5, "cart": [["book", 1]]}
            assert await m.touch(sid) is None
            new = await m.rotate_session(sid)
            assert not await m.is_session_active(sid)
            assert await m.is_session_active(new)
            assert await m.is_session_active(12) is False
            with pytest.raises(SessionNotFound):
                await m.get_session(sid)
            other = await m.create_session("alice")
            listed = await m.list_sessions("alice")
            assert sorted(x.version for x in listed) == [1, 6]
            assert await m.count() == 2
            assert await m.end_user_sessions("alice", except_session=new) == 1
            assert await m.end_session(new) is None
            assert not await m.is_session_active(other)
            assert await m.count() == 0
            assert await m.purge_expired() >= 0

    run(loop_kind, main)


@pytest.mark.parametrize("kind", STORES)
def test_bad_input_raises_the_sync_errors_from_the_coroutine(
    kind: str, url_of: Callable[[str], str]
) -> None:
    async def main() -> None:
        m = AsyncSessionManager(store=url_of(kind))
        with pytest.raises(TypeError, match="user_id must be a str, got int"):
            await m.create_session(5)
        with pytest.raises(UnsupportedDataType, match=r"data\['when'\]"):
            await m.create_session("u", {"when": object()})
        with pytest.raises(ValueError, match="user_id must not be empty"):
            await m.create_session("")
        with pytest.raises(SessionNotFound):
            await m.get_session("not-a-session")
        sid = await m.create_session("u", {"n": "text"})
        with pytest.raises(ValueError, match="cannot increment"):
            await m.increment(sid, "n")
        assert await m.get_session(sid) == {"n": "text"}, "nothing written"
        await m.aclose()
        with pytest.raises(ManagerClosed):
            await m.get_session(sid)
        with pytest.raises(ManagerClosed):
            await m.create_session("u")

    run("asyncio", main)


def test_a_call_never_awaited_warns_as_any_coroutine() -> None:
    m = AsyncSessionManager()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.create_session("u")
        gc.collect()
    assert any("was never awaited" in str(w.message) for w in caught), caught
    assert m.manager.count() == 0, "a coroutine never awaited does nothing"


def test_memory_calls_finish_without_suspending_or_threads() -> None:
    m = AsyncSessionManager()
    threads = threading.active_count()
    sid = m.manager.create_session("u", {"a": 1})
    coro = m.get_session(sid)
    with pytest.raises(StopIteration) as done:
        coro.send(None)  # no event loop needed: it never waits
    assert done.value.value == {"a": 1}
    assert threading.active_count() == threads


@pytest.mark.parametrize("kind", STORES)
def test_a_sync_and_an_async_manager_share_one_store(
    kind: str, url_of: Callable[[str], str]
) -> None:
    sync = SessionManager(store=url_of(kind))
    am = AsyncSessionManager(store=sync)
    assert am.manager is sync

    async def main() -> None:
        sid = await am.create_session("u", {"from": "async"})
        assert sync.get_session(sid) == {"from": "async"}
        other = sync.create_session("u")
        assert await am.is_session_active(other)

    run("asyncio", main)
    # Threads calling the sync manager while a loop's calls run on the same store.
    errors: list[BaseException] = []

    def sync_worker() -> None:
        try:
            for i in range(50):
                sid = sync.create_session("mixed", {"i": i})
                assert sync.get_session(sid)["i"] == i
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    async def both() -> None:
        workers = [threading.Thread(target=sync_worker) for _ in range(2)]
        for w in workers:
            w.start()
        for i in range(50):
            await asyncio.gather(*(am.create_session("mixed", {"i": i}) for _ in range(2)))
        for w in workers:
            await asyncio.to_thread(w.join)

    run("uvloop", both)
    assert not errors, errors
    assert sync.count() == 202
    with pytest.raises(TypeError, match="expiration_time cannot be given with a SessionManager"):
        AsyncSessionManager(60, store=sync)
    sync.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_many_calls_in_flight_wake_the_loop_in_batches(
    kind: str, url_of: Callable[[str], str]
) -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        waker = aio.LoopWaker(loop)
        drains = 0

        def drain() -> None:
            nonlocal drains
            drains += 1
            waker.drain()

        loop.add_reader(waker.fileno(), drain)
        aio._local.loop, aio._local.waker = loop, waker
        async with AsyncSessionManager(store=url_of(kind)) as m:
            sid = await m.create_session("u", {"n": 1})
            drains = 0
            found = await asyncio.gather(*(m.get_session(sid) for _ in range(500)))
            assert all(s == {"n": 1} for s in found)
            assert waker.waiting == 0
            return drains, len(found)

    drains, calls = run("asyncio", main)
    assert 1 <= drains < calls


def test_the_loop_keeps_running_while_redis_stalls(redis_server: Any) -> None:
    url = redis_server.url(prefix="stall:")

    async def main() -> float:
        async with AsyncSessionManager(store=url) as m:
            sid = await m.create_session("u")
            redis_server.command("CLIENT", "PAUSE", "400", "ALL")
            calls = [asyncio.ensure_future(m.get_session(sid)) for _ in range(1000)]
            longest, last = 0.0, time.perf_counter()
            while not all(c.done() for c in calls):
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                longest, last = max(longest, now - last), now
            assert all(c.result().user_id == "u" for c in calls)
            return longest

    assert run("uvloop", main) < 0.2, "a loop step waited for the store"


@pytest.mark.parametrize("kind", STORES)
def test_loops_in_several_threads_share_one_manager(
    kind: str, url_of: Callable[[str], str]
) -> None:
    m = AsyncSessionManager(store=url_of(kind))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def main() -> None:
            for i in range(20):
                sid = await m.create_session(f"user{n}", {"i": i})
                assert (await m.get_session(sid))["i"] == i

        try:
            run("uvloop" if n % 2 else "asyncio", main)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert m.manager.count() == 160
    m.manager.close()


@pytest.mark.parametrize("kind", STORES)
def test_cancelled_calls_run_whole_or_not_at_all(kind: str, url_of: Callable[[str], str]) -> None:
    rng = random.Random(kind)

    async def main() -> None:
        m = AsyncSessionManager(store=url_of(kind))
        sid = await m.create_session("counter", {"n": 0})
        version = (await m.get_session(sid)).version
        increments = [asyncio.ensure_future(m.increment(sid, "n")) for _ in range(60)]
        creates = [
            asyncio.ensure_future(m.create_session("made", {"i": i, "copy": i})) for i in range(40)
        ]
        calls = increments + creates
        for _ in range(30):
            await asyncio.sleep(rng.random() * 0.002)
            rng.choice(calls).cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        finished = sum(1 for c in increments if not c.cancelled())
        while m._core.in_flight:  # the cancelled callers' calls run on
            await asyncio.sleep(0.005)
        check = m.manager
        s = check.get_session(sid)
        assert finished <= s["n"] <= 60
        assert s.version == version + s["n"], "every increment whole, none half"
        made = check.list_sessions("made")
        assert all(x["i"] == x["copy"] for x in made)
        assert sum(1 for c in creates if not c.cancelled()) <= len(made) <= 40
        await m.aclose()

    run("asyncio", main)


@pytest.mark.parametrize("kind", STORES)
def test_async_rate_limiter_counts_hits(kind: str, url_of: Callable[[str], str]) -> None:
    async def main() -> None:
        limiter = AsyncRateLimiter("5/minute", store=url_of(kind))
        results = await asyncio.gather(*(limiter.hit("api:alice") for _ in range(8)))
        assert sum(r.allowed for r in results) == 5
        assert limiter.limiter.hit("api:alice").allowed is False
        assert (await limiter.hit("api:bob")).remaining == 4
        with pytest.raises(ValueError, match="must not be empty"):
            await limiter.hit("")

    run("uvloop", main)


CLOSED_LOOP = """
import asyncio, sys
from pysessionmanager import AsyncSessionManager, SessionManager
url = sys.argv[1]
m = AsyncSessionManager(store=url)
loop = asyncio.new_event_loop()
calls = [loop.create_task(m.create_session("closed", {"i": i})) for i in range(100)]
loop.run_until_complete(asyncio.sleep(0.001))
loop.stop()
loop.close()
check = SessionManager(store=url)
for _ in range(200):
    if check.list_sessions("closed") and len(check.list_sessions("closed")) == 100:
        break
    import time; time.sleep(0.01)
print(len(check.list_sessions("closed")))
try:
    asyncio.run(m.get_session("x"))
except Exception as e:
    print(type(e).__name__)
"""


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_a_loop_closed_with_calls_in_flight(kind: str, url_of: Callable[[str], str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLOSED_LOOP, url_of(kind)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines == ["100", "SessionNotFound"], done.stdout
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr


EXIT_WHILE_LOOPS_WAIT = """
import asyncio, sys, threading, time
from pysessionmanager import AsyncSessionManager
m = AsyncSessionManager(store=sys.argv[1])
acked = open(sys.argv[2], "a", buffering=1)

async def work(n):
    i = 0
    while True:
        calls = [m.create_session(f"loop{n}", {"i": i + k}) for k in range(20)]
        for sid in await asyncio.gather(*calls):
            acked.write(sid + "\\n")  # only after the store acknowledged it
        i += 20

for n in range(3):
    loop = uvloop_new() if n % 2 else asyncio.new_event_loop()
    threading.Thread(target=loop.run_until_complete, args=(work(n),), daemon=True).start()
time.sleep(0.3)
print("exiting", flush=True)
""".replace("uvloop_new()", "__import__('uvloop').new_event_loop()")


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_exit_with_loops_awaiting_calls(
    kind: str, url_of: Callable[[str], str], tmp_path: Any
) -> None:
    url = url_of(kind)
    acked = tmp_path / "acked"
    for run in range(4):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_WHILE_LOOPS_WAIT, url, str(acked)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stderr) == (0, ""), f"run {run}: {done.stderr}"
        assert done.stdout == "exiting\n"
    sids = acked.read_text().split()
    assert sids, "the loops acknowledged nothing"
    with SessionManager(store=url) as m:
        assert [sid for sid in sids if not m.is_session_active(sid)] == []


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_a_forked_child_runs_its_own_loop_on_the_inherited_manager(
    kind: str, url_of: Callable[[str], str]
) -> None:
    import os

    m = AsyncSessionManager(store=url_of(kind))

    async def use(tag: str) -> str:
        sid = await m.create_session(tag, {"from": tag})
        assert (await m.get_session(sid))["from"] == tag
        return sid

    parent_sid = run("asyncio", lambda: use("parent"))  # the parent's loop and threads first
    pid = os.fork()
    if pid == 0:
        try:
            child_sid = run("uvloop", lambda: use("child"))
            ok = run("asyncio", lambda: m.is_session_active(parent_sid))
            os._exit(0 if ok and child_sid else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert run("asyncio", lambda: use("parent again"))
    assert len(m.manager.list_sessions("child")) == 1
    m.manager.close()


def test_a_call_outside_a_running_loop_says_what_it_needs(tmp_path: Any) -> None:
    m = AsyncSessionManager(store=f"sqlite:///{tmp_path / 's.db'}")
    sid = m.manager.create_session("u")
    coro = m.get_session(sid)
    with pytest.raises(RuntimeError, match="needs a running asyncio event loop"):
        coro.send(None)  # driven by hand, as another event loop would
    assert m.manager.is_session_active(sid)
    m.manager.close()

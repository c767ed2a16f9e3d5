"""Many Python threads on one manager: no lost updates, no deadlocks."""

from __future__ import annotations

import threading
from typing import Callable

from pysessionmanager import SessionManager

THREADS = 8
ROUNDS = 2000


def run_threads(work: Callable[[int], None]) -> None:
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def body(n: int) -> None:
        start.wait()
        try:
            work(n)
        except BaseException as e:  # surfaced below; a thread's exception is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=body, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert errors == []


def test_concurrent_increments_and_updates_lose_nothing() -> None:
    m = SessionManager()
    sid = m.create_session("u", {"keep": "me"})

    def work(n: int) -> None:
        for i in range(ROUNDS):
            m.increment(sid, "total")
            m.increment(sid, f"t{n}", by=2)
            m.update_session(sid, {f"last{n}": i})

    run_threads(work)
    s = m.get_session(sid)
    assert s["total"] == THREADS * ROUNDS
    for n in range(THREADS):
        assert s[f"t{n}"] == 2 * ROUNDS
        assert s[f"last{n}"] == ROUNDS - 1
    assert s["keep"] == "me"
    assert s.version == 1 + 3 * THREADS * ROUNDS


def test_threads_creating_reading_and_ending_sessions() -> None:
    m = SessionManager(max_sessions_per_user=5)
    kept: dict[int, list[str]] = {}

    def work(n: int) -> None:
        mine: list[str] = []
        for i in range(ROUNDS):
            sid = m.create_session(f"user{n}", {"i": i})
            assert m.get_session(sid)["i"] == i
            mine.append(sid)
            if i % 4 == 3:
                m.end_session(mine.pop(0))
            if i % 50 == 0:
                assert len(m.list_sessions(f"user{n}")) <= 5
        kept[n] = mine

    run_threads(work)
    for n, mine in kept.items():
        # The per-user index agrees exactly with the sessions that are alive.
        alive = {m.session_info(sid).key for sid in mine if m.is_session_active(sid)}
        assert {s.key for s in m.list_sessions(f"user{n}")} == alive
        assert len(alive) == 5
    assert m.count() == 5 * THREADS


def test_the_gil_is_released_while_the_engine_works() -> None:
    # A Python thread keeps running *during* one long engine call (purging
    # 200,000 expired sessions). If the call held the GIL, the thread could run
    # only around it, for at most a switch interval or two.
    import sys
    import time

    from pysessionmanager.testing import ManualClock

    clock = ManualClock()
    m = SessionManager(expiration_time=1, store="memory://?sweep_interval_ms=0", clock=clock)
    for i in range(200_000):
        m.create_session(f"user{i}")
    clock.advance(2)
    ticks: list[float] = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        time.sleep(0.05)
        start = time.perf_counter()
        assert m.purge_expired() == 200_000
        end = time.perf_counter()
    finally:
        stop.set()
        spinner.join()
    during = [t for t in ticks if start < t < end]
    covered = (during[-1] - during[0]) if len(during) > 1 else 0.0
    # The spinner ran through most of the call, far beyond a switch interval.
    assert end - start > 4 * sys.getswitchinterval(), "purge too quick to tell"
    assert covered > 0.5 * (end - start), (covered, end - start)

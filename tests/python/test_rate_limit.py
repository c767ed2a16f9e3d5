"""RateLimiter: GCRA limits on every store, exact under threads and processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pysessionmanager import RateLimiter, SessionManager
from pysessionmanager.testing import ManualClock


def test_a_burst_then_one_hit_per_interval() -> None:
    clock = ManualClock()
    limiter = RateLimiter("5/second", clock=clock)
    results = [limiter.hit("alice") for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0, 0]
    assert results[0].retry_after == 0 and results[5].retry_after == pytest.approx(0.2)
    assert not results[5]  # a result is true when allowed
    assert limiter.hit("bob").allowed, "each key has its own budget"
    clock.advance(0.2)
    assert limiter.hit("alice").allowed
    assert not limiter.hit("alice").allowed
    clock.advance(60)
    assert limiter.hit("alice").remaining == 4


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis", "postgres"])
def test_a_clock_stepped_back_locks_no_key_out(store: str, url_of: Callable[[str], str]) -> None:
    """NTP steps the clock back an hour: a key that spent its burst waits one
    interval, not an hour; a step forward grants the burst and no more."""
    # Two days ahead of the servers' clocks: Redis expires by its own clock.
    clock = ManualClock(time.time() + 2 * 86_400)
    manager = SessionManager(store=url_of(store), clock=clock)
    limiter = RateLimiter("10/minute", store=manager)
    assert all(limiter.hit("k").allowed for _ in range(10))
    clock.set(clock.now() - 3600)
    denied = limiter.hit("k")
    assert not denied.allowed and denied.retry_after == pytest.approx(6)
    clock.advance(6)
    assert limiter.hit("k").allowed
    clock.advance(86_400)
    assert [limiter.hit("k").allowed for _ in range(11)] == [True] * 10 + [False]
    manager.close()


def test_a_burst_too_large_to_count_exactly_names_the_largest() -> None:
    with pytest.raises(ValueError, match="at most 36600"):
        RateLimiter("1/day", burst=200_000_000)
    assert RateLimiter("1/day", burst=36_600).burst == 36_600
    with pytest.raises(ValueError, match="more than 4294967295 hits"):
        RateLimiter("4294967296/second")


def test_burst_sets_how_many_come_at_once() -> None:
    clock = ManualClock()
    limiter = RateLimiter("60/minute", burst=2, clock=clock)
    assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]
    assert limiter.burst == 2 and limiter.rate == "60/minute"
    clock.advance(1)
    assert limiter.hit("k").allowed


def hammer(limiter: RateLimiter, threads: int, hits: int) -> int:
    allowed = []

    def work() -> None:
        allowed.append(sum(limiter.hit("shared").allowed for _ in range(hits)))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(allowed)


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis", "postgres"])
def test_eight_threads_get_exactly_the_limit(store: str, url_of: Callable[[str], str]) -> None:
    url = url_of(store)
    limiter = RateLimiter("50/hour", store=url)  # refills one per 72 s: none during the test
    assert hammer(limiter, threads=8, hits=40) == 50


HITTER = """
import sys
from pysessionmanager import RateLimiter
limiter = RateLimiter("50/hour", store=sys.argv[1])
print(sum(limiter.hit("shared").allowed for _ in range(60)))
"""


@pytest.mark.parametrize("store", ["sqlite", "redis", "postgres"])
def test_four_processes_get_exactly_the_limit(store: str, url_of: Callable[[str], str]) -> None:
    url = url_of(store)
    RateLimiter("50/hour", store=url).hit("warm-up")  # create the file once
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HITTER), url],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    counts = [int(p.communicate(timeout=120)[0]) for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert sum(counts) == 50, counts


def test_a_limiter_can_share_a_managers_store() -> None:
    clock = ManualClock()
    with SessionManager(clock=clock) as m:
        sid = m.create_session("alice")
        limiter = RateLimiter("2/minute", store=m)
        assert [limiter.hit(sid).allowed for _ in range(3)] == [True, True, False]
        assert m.get_session(sid) == {}
        clock.advance(30)
        assert limiter.hit(sid).allowed


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "words"),
    [
        (("ten/minute",), {}, ValueError, "whole number of hits"),
        (("0/second",), {}, ValueError, "at least 1 hit"),
        (("5/fortnight",), {}, ValueError, "unknown unit"),
        (("100",), {}, ValueError, "has no '/'"),
        ((100,), {}, TypeError, "rate must be a str, got int"),
        (("5/second",), {"burst": -1}, ValueError, "burst must be a positive integer, got -1"),
        (("5/second",), {"burst": 0}, ValueError, "burst must be a positive integer, got 0"),
        (("5/second",), {"burst": True}, TypeError, "burst must be an int"),
        (("5/second",), {"store": 42}, TypeError, "a store URL or a SessionManager, got int"),
        (("5/second",), {"store": "ftp://x"}, ValueError, "unknown store"),
    ],
)
def test_bad_arguments_are_clear_errors(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        RateLimiter(*args, **kwargs)  # type: ignore[arg-type]


def test_bad_keys_are_clear_errors() -> None:
    limiter = RateLimiter("5/second")
    with pytest.raises(ValueError, match="must not be empty"):
        limiter.hit("")
    with pytest.raises(ValueError, match="at most 1024 bytes"):
        limiter.hit("k" * 1025)
    with pytest.raises(TypeError, match="key must be a str, got int"):
        limiter.hit(7)  # type: ignore[arg-type]
    with SessionManager() as m, pytest.raises(ValueError, match="uses the manager's clock"):
        RateLimiter("5/second", store=m, clock=ManualClock())


def test_a_limiter_names_its_store(tmp_path: Path) -> None:
    assert RateLimiter("5/second").store == "memory://"
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    assert RateLimiter("5/second", store=url).store == url
    with SessionManager(store=url) as m:
        assert RateLimiter("5/second", store=m).store == url

"""Idle expiry that slides with the half-window rule, absolute caps, fixed expiry."""

from __future__ import annotations

import pytest

from pysessionmanager import SessionManager, SessionNotFound
from pysessionmanager.testing import ManualClock


def test_idle_timeout_expires_exactly_at_the_deadline(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, clock=clock)
    sid = m.create_session("u")
    clock.advance(59.999)
    assert m.is_session_active(sid)
    clock.advance(0.001)
    assert not m.is_session_active(sid)
    with pytest.raises(SessionNotFound):
        m.get_session(sid)


def test_reads_before_half_window_do_not_write(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, clock=clock)
    sid = m.create_session("u")
    clock.advance(29)
    s = m.get_session(sid)
    assert s.last_active.timestamp() == 1_700_000_000
    assert s.expires_at.timestamp() == 1_700_000_060
    clock.advance(1)  # half the window has passed: this read slides the deadline
    s = m.get_session(sid)
    assert s.last_active.timestamp() == 1_700_000_030
    assert s.expires_at.timestamp() == 1_700_000_090
    assert m.session_info(sid).expires_at.timestamp() == 1_700_000_090
    assert s.version == 1  # a refresh is not a data write


def test_activity_keeps_a_session_alive_indefinitely_without_cap(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, clock=clock)
    sid = m.create_session("u")
    for _ in range(100):
        clock.advance(40)
        m.get_session(sid)
    assert m.is_session_active(sid)


def test_is_session_active_does_not_slide(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, clock=clock)
    sid = m.create_session("u")
    clock.advance(50)
    assert m.is_session_active(sid)
    clock.advance(10)
    assert not m.is_session_active(sid)


def test_absolute_timeout_is_never_extended(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, absolute_timeout=100, clock=clock)
    sid = m.create_session("u")
    s = m.get_session(sid)
    assert s.absolute_expires_at is not None
    assert s.absolute_expires_at.timestamp() == 1_700_000_100
    for _ in range(3):
        clock.advance(33)
        m.get_session(sid)
        m.update_session(sid, {"x": 1})
        m.touch(sid)
    assert m.session_info(sid).expires_at.timestamp() == 1_700_000_100
    clock.advance(1)
    assert not m.is_session_active(sid)


def test_writes_slide_expiry(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, clock=clock)
    sid = m.create_session("u")
    clock.advance(10)
    m.update_session(sid, {"a": 1})
    s = m.session_info(sid)
    assert (s.last_active.timestamp(), s.expires_at.timestamp()) == (1_700_000_010, 1_700_000_070)


def test_fixed_expiry_does_not_slide(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, sliding=False, clock=clock)
    sid = m.create_session("u")
    clock.advance(40)
    m.get_session(sid)
    m.update_session(sid, {"a": 1})
    m.touch(sid)
    clock.advance(20)
    assert not m.is_session_active(sid)


def test_per_session_overrides(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, clock=clock)
    short = m.create_session("u", expiration_time=5)
    fixed = m.create_session("u", sliding=False)
    capped = m.create_session("u", absolute_timeout=45)
    assert m.session_info(short).expires_at.timestamp() == 1_700_000_005
    clock.advance(40)
    m.get_session(fixed)
    m.get_session(capped)
    assert not m.is_session_active(short)
    clock.advance(20)
    assert not m.is_session_active(fixed)
    assert not m.is_session_active(capped)
    m2 = SessionManager(expiration_time=60, sliding=False, clock=clock)
    sliding = m2.create_session("u", sliding=True)
    clock.advance(40)
    m2.get_session(sliding)
    clock.advance(40)
    assert m2.is_session_active(sliding)


def test_clock_stepping_back_never_shortens_a_session(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, clock=clock)
    sid = m.create_session("u")
    clock.advance(40)
    m.get_session(sid)  # deadline now +100
    clock.set(1_700_000_000.0 - 3600)
    m.touch(sid)
    clock.set(1_700_000_099.0)
    assert m.is_session_active(sid)


def test_background_sweeper_removes_expired_sessions_untouched(clock: ManualClock) -> None:
    import time

    m = SessionManager(expiration_time=1, clock=clock)
    for i in range(2000):
        m.create_session(f"user{i}")
    survivor = m.create_session("survivor", expiration_time=3600)
    clock.advance(2)
    time.sleep(1.5)  # the sweeper wakes every 100 ms and takes 4096 records per tick
    # Nothing was left for an explicit purge: the sweeper had removed the expired ones.
    assert m.purge_expired() == 0
    assert m.is_session_active(survivor)

"""contrib._web.RequestState: explicit creation with start(), and reads that
do not count as activity (what the Django engine builds on)."""

from __future__ import annotations

import pytest

from pysessionmanager import SessionManager
from pysessionmanager.contrib._web import RequestState
from pysessionmanager.testing import ManualClock


def test_start_stores_even_empty_data_for_a_new_visitor(manager: SessionManager) -> None:
    state = RequestState(manager, None)
    sid = state.start({})
    assert state.sid == sid
    stored = manager.get_session(sid)
    assert stored == {}
    assert stored.user_id.startswith("anonymous:")
    assert state.anonymous


def test_start_moves_data_to_a_new_record_and_ends_the_old(manager: SessionManager) -> None:
    old = manager.create_session("anonymous:x", {"cart": ["book"]})
    state = RequestState(manager, old)
    sid = state.start(state.data(), "alice")
    assert sid != old
    assert not manager.is_session_active(old)
    assert manager.get_session(sid).user_id == "alice"
    assert manager.get_session(sid)["cart"] == ["book"]
    assert (state.user_id, state.stored) == ("alice", {"cart": ["book"]})


def test_start_passes_the_lifetime_on(manager: SessionManager, clock: ManualClock) -> None:
    fixed = RequestState(manager, None).start({"a": 1}, expiration_time=100, sliding=False)
    capped = RequestState(manager, None).start({"a": 1}, expiration_time=100, absolute_timeout=50)
    clock.advance(60)
    manager.touch(fixed)  # activity does not move a fixed expiry
    assert not manager.is_session_active(capped)
    clock.advance(41)
    assert not manager.is_session_active(fixed)


def test_login_is_start_for_a_user_and_still_checks_the_id(manager: SessionManager) -> None:
    state = RequestState(manager, None)
    with pytest.raises(ValueError, match="reserved"):
        state.login({}, "anonymous:me")
    sid = state.login({"a": 1}, "alice")
    assert manager.get_session(sid).user_id == "alice"


@pytest.mark.parametrize(("activity", "alive"), [(True, True), (False, False)])
def test_reads_count_as_activity_unless_told_not_to(
    manager: SessionManager, clock: ManualClock, activity: bool, alive: bool
) -> None:
    sid = manager.create_session("alice", {"a": 1})  # 60 s idle timeout
    clock.advance(40)
    state = RequestState(manager, sid, activity=activity)
    assert state.data() == {"a": 1}
    clock.advance(40)  # 80 s after creation, 40 s after the read
    assert manager.is_session_active(sid) is alive


def test_a_write_extends_a_session_read_without_activity(
    manager: SessionManager, clock: ManualClock
) -> None:
    sid = manager.create_session("alice", {"a": 1})
    clock.advance(40)
    state = RequestState(manager, sid, activity=False)
    assert state.save({"a": 2}) == sid
    clock.advance(40)
    assert manager.get_session(sid) == {"a": 2}

"""Operations beyond the seed, on the memory store."""

from __future__ import annotations

import pytest

from pysessionmanager import (
    ManagerClosed,
    SessionConflict,
    SessionLimitExceeded,
    SessionManager,
    SessionNotFound,
    StoreFull,
)
from pysessionmanager.testing import ManualClock


def test_update_session_merges_top_level_keys(manager: SessionManager) -> None:
    sid = manager.create_session("u", {"a": 1, "b": {"x": 1}})
    assert manager.update_session(sid, {"b": {"y": 2}, "c": 3}) is None
    assert manager.get_session(sid) == {"a": 1, "b": {"y": 2}, "c": 3}
    assert list(manager.get_session(sid)) == ["a", "b", "c"]
    assert manager.get_session(sid).version == 2


def test_update_of_missing_session_raises(manager: SessionManager) -> None:
    sid = manager.create_session("u")
    manager.end_session(sid)
    with pytest.raises(SessionNotFound):
        manager.update_session(sid, {"a": 1})


def test_set_session_data_replaces_and_returns_version(manager: SessionManager) -> None:
    sid = manager.create_session("u", {"a": 1})
    assert manager.set_session_data(sid, {"b": 2}) == 2
    assert manager.get_session(sid) == {"b": 2}
    assert manager.set_session_data(sid, {"c": 3}, expected_version=2) == 3


def test_set_session_data_with_stale_version_conflicts_and_changes_nothing(
    manager: SessionManager,
) -> None:
    sid = manager.create_session("u", {"a": 1})
    manager.update_session(sid, {"a": 2})
    with pytest.raises(SessionConflict) as info:
        manager.set_session_data(sid, {"a": 99}, expected_version=1)
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)
    assert "expected version 1, found 2" in str(info.value)
    assert manager.get_session(sid) == {"a": 2}


def test_increment_counts_from_zero_and_keeps_other_keys(manager: SessionManager) -> None:
    sid = manager.create_session("u", {"name": "x"})
    assert manager.increment(sid, "hits") == 1
    assert manager.increment(sid, "hits", by=5) == 6
    assert manager.increment(sid, "hits", -10) == -4
    assert manager.get_session(sid) == {"name": "x", "hits": -4}


def test_increment_refuses_non_integer_values(manager: SessionManager) -> None:
    sid = manager.create_session("u", {"name": "x", "ratio": 0.5, "flag": True})
    for key in ["name", "ratio", "flag"]:
        with pytest.raises(TypeError, match=rf"data\['{key}'\]: cannot increment"):
            manager.increment(sid, key)
    with pytest.raises(TypeError, match="by must be an int"):
        manager.increment(sid, "n", by=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="by must be an int"):
        manager.increment(sid, "n", by=True)
    with pytest.raises(ValueError, match="overflows"):
        manager.set_session_data(sid, {"n": 2**63 - 1})
        manager.increment(sid, "n")
    assert manager.get_session(sid) == {"n": 2**63 - 1}


def test_rotate_keeps_data_user_and_created_at_and_kills_old_id(
    manager: SessionManager, clock: ManualClock
) -> None:
    old = manager.create_session("alice", {"cart": [1]})
    before = manager.get_session(old)
    clock.advance(5)
    new = manager.rotate_session(old)
    assert new != old
    after = manager.get_session(new)
    assert after == {"cart": [1]}
    assert after.user_id == "alice"
    assert after.created_at == before.created_at
    assert not manager.is_session_active(old)
    with pytest.raises(SessionNotFound):
        manager.rotate_session(old)
    assert [s.key for s in manager.list_sessions("alice")] == [after.key]


def test_rotate_does_not_extend_absolute_timeout(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=60, absolute_timeout=100, clock=clock)
    sid = m.create_session("u")
    clock.advance(50)
    sid = m.rotate_session(sid)
    clock.advance(50)
    assert not m.is_session_active(sid)


def test_touch_extends_sliding_expiry(manager: SessionManager, clock: ManualClock) -> None:
    sid = manager.create_session("u")
    clock.advance(10)
    manager.touch(sid)
    s = manager.session_info(sid)
    assert s.last_active.timestamp() == 1_700_000_010
    assert s.expires_at.timestamp() == 1_700_000_070
    manager.end_session(sid)
    with pytest.raises(SessionNotFound):
        manager.touch(sid)


def test_session_info_does_not_slide(manager: SessionManager, clock: ManualClock) -> None:
    sid = manager.create_session("u", {"a": 1})
    clock.advance(40)
    info = manager.session_info(sid)
    assert info == {"a": 1}
    assert info.expires_at.timestamp() == 1_700_000_060
    clock.advance(20)
    assert not manager.is_session_active(sid)


def test_list_sessions_oldest_first_without_tokens(
    manager: SessionManager, clock: ManualClock
) -> None:
    first = manager.create_session("alice", {"n": 1})
    clock.advance(1)
    second = manager.create_session("alice", {"n": 2})
    manager.create_session("bob")
    listed = manager.list_sessions("alice")
    assert [s["n"] for s in listed] == [1, 2]
    assert [s.session_id for s in listed] == [None, None]
    assert [s.key for s in listed] == [manager.get_session(t).key for t in (first, second)]
    assert manager.list_sessions("nobody") == []


def test_end_user_sessions_counts_and_keeps_exception(manager: SessionManager) -> None:
    keep = manager.create_session("alice")
    others = [manager.create_session("alice") for _ in range(3)]
    bob = manager.create_session("bob")
    assert manager.end_user_sessions("alice", except_session=keep) == 3
    assert manager.is_session_active(keep)
    assert not any(manager.is_session_active(s) for s in others)
    assert manager.is_session_active(bob)
    assert manager.end_user_sessions("alice") == 1
    assert manager.end_user_sessions("alice") == 0
    assert manager.list_sessions("alice") == []


def test_end_user_sessions_ignores_a_malformed_exception(manager: SessionManager) -> None:
    manager.create_session("alice")
    assert manager.end_user_sessions("alice", except_session="not-a-token") == 1


def test_limit_evicts_oldest(clock: ManualClock) -> None:
    m = SessionManager(max_sessions_per_user=2, clock=clock)
    sessions = []
    for _ in range(3):
        sessions.append(m.create_session("alice"))
        clock.advance(1)
    assert [m.is_session_active(s) for s in sessions] == [False, True, True]
    assert len(m.list_sessions("alice")) == 2


def test_limit_rejects_and_changes_nothing(clock: ManualClock) -> None:
    m = SessionManager(max_sessions_per_user=2, on_limit="reject", clock=clock)
    sessions = [m.create_session("alice") for _ in range(2)]
    with pytest.raises(SessionLimitExceeded) as info:
        m.create_session("alice")
    assert info.value.limit == 2
    assert "maximum of 2" in str(info.value)
    assert all(m.is_session_active(s) for s in sessions)
    assert m.count() == 2
    m.end_session(sessions[0])
    m.create_session("alice")


def test_limit_counts_only_live_sessions(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=10, max_sessions_per_user=1, on_limit="reject", clock=clock)
    m.create_session("alice")
    clock.advance(10)
    assert m.is_session_active(m.create_session("alice"))


def test_store_wide_bound(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=10, store="memory://?max_sessions=3", clock=clock)
    for _ in range(3):
        m.create_session("u")
    with pytest.raises(StoreFull):
        m.create_session("u")
    clock.advance(10)
    m.create_session("u")  # expired ones are purged to make room
    assert m.count() == 1


def test_full_store_makes_room_as_soon_as_anything_expired(clock: ManualClock) -> None:
    m = SessionManager(
        expiration_time=0.01, store="memory://?max_sessions=3&sweep_interval_ms=0", clock=clock
    )
    for _ in range(3):
        m.create_session("u")
    with pytest.raises(StoreFull):
        m.create_session("u")
    clock.advance(0.02)  # everything expired, a moment after the refusal
    assert m.count() == 0
    m.create_session("u")
    clock.set(1_600_000_000.0)  # a clock stepping back must not block purging later
    for _ in range(2):
        m.create_session("u")
    clock.set(1_700_000_001.0)
    m.create_session("u")
    assert m.count() == 1


def test_full_store_still_lets_a_user_at_an_evicting_limit_log_in(clock: ManualClock) -> None:
    m = SessionManager(store="memory://?max_sessions=2", max_sessions_per_user=2, clock=clock)
    first = m.create_session("u")
    clock.advance(1)
    second = m.create_session("u")
    clock.advance(1)
    third = m.create_session("u")
    assert [m.is_session_active(s) for s in (first, second, third)] == [False, True, True]
    with pytest.raises(StoreFull):
        m.create_session("someone else")


def test_purge_expired_and_count(manager: SessionManager, clock: ManualClock) -> None:
    for _ in range(5):
        manager.create_session("u")
    clock.advance(30)
    live = manager.create_session("u")
    clock.advance(30)
    assert manager.count() == 1
    assert manager.purge_expired() == 5
    assert manager.purge_expired() == 0
    assert manager.count() == 1
    assert [s.key for s in manager.list_sessions("u")] == [manager.session_info(live).key]


def test_close_and_context_manager() -> None:
    with SessionManager() as m:
        sid = m.create_session("u")
    with pytest.raises(ManagerClosed):
        m.get_session(sid)
    with pytest.raises(ManagerClosed):
        m.create_session("u")
    m.close()  # closing twice is fine


def test_context_manager_does_not_swallow_exceptions() -> None:
    with pytest.raises(RuntimeError), SessionManager():
        raise RuntimeError("boom")


def test_session_pickles_as_plain_dict(manager: SessionManager) -> None:
    import copy
    import pickle

    s = manager.get_session(manager.create_session("u", {"a": [1]}))
    assert pickle.loads(pickle.dumps(s)) == {"a": [1]}
    assert copy.deepcopy(s) == {"a": [1]}


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
def test_concurrent_appends_all_land(kind: str, url_of) -> None:  # type: ignore[no-untyped-def]
    import threading

    m = SessionManager(store=url_of(kind))
    sid = m.create_session("alice", {"cart": [], "other": 1})
    lengths: list[int] = []

    def add(n: int) -> None:
        for i in range(10):
            lengths.append(m.append(sid, "cart", {"by": n, "i": i}))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cart = m.get_session(sid)["cart"]
    assert sorted((item["by"], item["i"]) for item in cart) == [
        (n, i) for n in range(8) for i in range(10)
    ]
    assert sorted(lengths) == list(range(1, 81)), "each append saw its own length"
    assert m.get_session(sid)["other"] == 1
    m.close()


def test_append_refuses_what_is_not_a_list_or_not_json(manager: SessionManager) -> None:
    from pysessionmanager import InvalidSessionData, SessionNotFound, UnsupportedDataType

    sid = manager.create_session("alice", {"name": "x", "deep": []})
    assert manager.append(sid, "new", 1) == 1
    with pytest.raises(UnsupportedDataType, match=r"data\['name'\]: cannot append to a string"):
        manager.append(sid, "name", 1)
    with pytest.raises(UnsupportedDataType, match=r"data\['deep'\]\[0\]"):
        manager.append(sid, "deep", {1, 2})
    with pytest.raises(InvalidSessionData, match="NaN|finite"):
        manager.append(sid, "deep", float("nan"))
    with pytest.raises(TypeError, match="key must be a str"):
        manager.append(sid, 5, 1)  # type: ignore[arg-type]
    with pytest.raises(SessionNotFound):
        manager.append("no-such-session", "cart", 1)
    assert manager.get_session(sid) == {"name": "x", "deep": [], "new": [1]}

"""contrib._web.RequestState.save: the engine's ``save_step`` says what a
request's end needs, and what it changed is written through
``SessionManager.apply_changes`` (one compare-and-set; after a concurrent
write, only this request's changes re-applied on top)."""

from __future__ import annotations

from typing import Any

import pytest

from pysessionmanager import SessionConflict, SessionManager
from pysessionmanager._native import save_step
from pysessionmanager.contrib._web import RequestState


def test_a_save_without_a_concurrent_write_stores_the_data_as_given(
    manager: SessionManager,
) -> None:
    sid = manager.create_session("alice", {"a": 1, "b": 1})
    state = RequestState(manager, sid)
    assert state.save({"a": 2, "c": [1]}) == sid
    stored = manager.get_session(sid)
    assert stored == {"a": 2, "c": [1]} and stored.version == 2
    assert (state.version, state.stored) == (2, {"a": 2, "c": [1]})
    assert state.meta is not None and state.meta.version == 2
    # The metadata the save returned is the basis of the next save.
    assert state.save({"c": [1]}) == sid
    assert manager.get_session(sid) == {"c": [1]}
    assert state.version == 3


def test_a_concurrent_write_keeps_its_keys_and_loses_only_what_this_request_changed(
    manager: SessionManager,
) -> None:
    sid = manager.create_session("alice", {"a": 1, "b": 1, "c": 1})
    state = RequestState(manager, sid)
    manager.update_session(sid, {"b": 2, "d": 9})  # another request, meanwhile
    # This request changed "a" and removed "c"; its "b" is stale, not a change.
    assert state.save({"a": 5, "b": 1}) == sid
    stored = manager.get_session(sid)
    assert stored == {"a": 5, "b": 2, "d": 9}
    assert (state.version, state.stored) == (stored.version, stored) == (3, stored)


def test_a_concurrent_change_to_the_same_key_is_a_conflict_that_names_it(
    manager: SessionManager,
) -> None:
    sid = manager.create_session("alice", {"cart": ["tea"], "n": 1})
    state = RequestState(manager, sid)
    manager.append(sid, "cart", "mug")  # another request, meanwhile
    with pytest.raises(SessionConflict, match=r"data\['cart'\] was changed") as caught:
        state.save({"cart": ["tea", "cup"], "n": 1})
    assert (caught.value.key, caught.value.expected_version) == ("cart", 1)
    assert caught.value.actual_version == 2
    stored = manager.get_session(sid)
    assert (stored, stored.version) == ({"cart": ["tea", "mug"], "n": 1}, 2)
    assert (state.version, state.stored) == (1, {"cart": ["tea"], "n": 1})


def test_a_session_ended_meanwhile_is_not_brought_back(manager: SessionManager) -> None:
    sid = manager.create_session("alice", {"a": 1})
    state = RequestState(manager, sid)
    manager.end_session(sid)  # "log out everywhere", meanwhile
    assert state.save({"a": 2}) is None
    assert (state.sid, state.version, state.meta, state.stored) == (None, 0, None, {})
    assert not manager.is_session_active(sid)
    assert manager.count() == 0


def test_a_save_after_a_create_goes_by_version(manager: SessionManager) -> None:
    state = RequestState(manager, None)
    sid = state.save({"a": 1})
    assert sid is not None and state.meta is None and state.version == 1
    manager.update_session(sid, {"b": 2})
    assert state.save({"a": 2}) == sid
    assert manager.get_session(sid) == {"a": 2, "b": 2}
    assert state.stored == {"a": 2, "b": 2}


@pytest.mark.parametrize(
    ("stored", "current", "stored_session", "failed", "step"),
    [
        ({"a": 1}, {"a": 2}, True, True, ("nothing", [])),
        ({}, {}, False, False, ("nothing", [])),
        ({}, {"a": 1}, False, False, ("create", [])),
        ({"a": [1]}, {"a": [1]}, True, False, ("nothing", [])),
        ({"a": 1}, {}, True, False, ("end", [])),
        (
            {"s": 1, "c": 1, "r": 1},
            {"s": 1, "c": 2, "n": 0},
            True,
            False,
            ("apply", ["c", "n", "r"]),
        ),
    ],
)
def test_save_step_is_the_engines_rule(
    stored: dict[str, Any], current: dict[str, Any], stored_session: bool, failed: bool, step: Any
) -> None:
    assert save_step(stored, current, stored_session=stored_session, failed=failed) == step


@pytest.mark.parametrize(("stored", "current"), [([], {}), ({}, None), ({}, "a")])
def test_save_step_refuses_what_is_not_a_dict(stored: Any, current: Any) -> None:
    with pytest.raises(TypeError, match="must be a dict"):
        save_step(stored, current, stored_session=True)


def test_apply_changes_reports_merged_data_only_when_it_merged(manager: SessionManager) -> None:
    sid = manager.create_session("alice", {"a": 1})
    read = manager.session_info(sid)
    written = manager.apply_changes(sid, read, dict(read), {"a": 2}, ["a"])
    assert written is not None
    meta, merged = written
    assert (meta.version, meta.session_id, meta.user_id, merged) == (2, sid, "alice", None)
    manager.update_session(sid, {"z": 0})
    written = manager.apply_changes(sid, meta, {"a": 2}, {"a": 3}, iter(["a"]))
    assert written is not None and written[1] == {"a": 3, "z": 0}
    assert written[0].version == 4


def test_a_save_that_keeps_losing_raises_the_engines_session_conflict(clock: Any) -> None:
    # The engine's unit tests check the bound (16 writes); here, that the
    # conflict it then raises reaches the integration unchanged.
    class Contended(SessionManager):
        def apply_changes(self, *args: Any) -> Any:
            raise SessionConflict("gave up")

    manager = Contended(expiration_time=60, clock=clock)
    sid = manager.create_session("alice", {"n": 0})
    state = RequestState(manager, sid)
    with pytest.raises(SessionConflict, match="gave up"):
        state.save({"n": 1})
    assert (state.sid, state.version, state.stored) == (sid, 1, {"n": 0})


@pytest.mark.parametrize(
    ("basis", "data", "keys", "error", "message"),
    [
        (
            "1",
            {},
            [],
            TypeError,
            "basis must be a Session, a SessionMeta or an int version, got str",
        ),
        (True, {}, [], TypeError, "basis must be an int, got bool"),
        (0, {}, [], ValueError, "basis must be a positive integer, got 0"),
        (1, None, [], TypeError, r"data: must be a dict, got NoneType"),
        (1, [("a", 1)], [], TypeError, r"data: must be a dict, got list"),
        (1, {"a": {1, 2}}, ["a"], TypeError, r"data\['a'\]"),
        (1, {}, "a", TypeError, "keys must be an iterable of str, got str"),
        (1, {}, 5, TypeError, "keys must be an iterable of str, got int"),
        (1, {}, ["a", 1], TypeError, "each key must be a str, got int"),
    ],
)
def test_apply_changes_refuses_bad_input(
    manager: SessionManager, basis: Any, data: Any, keys: Any, error: type, message: str
) -> None:
    sid = manager.create_session("alice", {"a": 1})
    with pytest.raises(error, match=message):
        manager.apply_changes(sid, basis, {}, data, keys)
    stored = manager.get_session(sid)
    assert (stored, stored.version) == ({"a": 1}, 1)


def test_apply_changes_refuses_stored_data_that_is_not_a_dict(manager: SessionManager) -> None:
    sid = manager.create_session("alice", {"a": 1})
    with pytest.raises(TypeError, match="stored must be a dict, got list"):
        manager.apply_changes(sid, 1, [("a", 1)], {"a": 2}, ["a"])
    assert manager.get_session(sid).version == 1


def test_apply_changes_refuses_the_metadata_of_another_session(manager: SessionManager) -> None:
    sid = manager.create_session("alice", {"a": 1})
    other = manager.create_session("bob", {"b": 1})
    with pytest.raises(ValueError, match="another session"):
        manager.apply_changes(sid, manager.session_info(other), {"a": 1}, {"a": 2}, ["a"])
    assert manager.get_session(sid) == {"a": 1}


def test_apply_changes_on_an_unknown_or_malformed_id_is_none(manager: SessionManager) -> None:
    assert manager.apply_changes("no-such-session", 1, {}, {"a": 1}, ["a"]) is None
    with pytest.raises(TypeError, match="session_id must be a str"):
        manager.apply_changes(None, 1, {}, {}, [])  # type: ignore[arg-type]
    assert manager.count() == 0

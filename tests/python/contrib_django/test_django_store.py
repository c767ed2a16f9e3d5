"""The engine's own rules, beyond Django's suite: keys are the manager's
tokens, records are owned by the logged-in user, expiry follows
set_expiry, data is JSON, and the settings are checked."""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from pysessionmanager import (
    InvalidSessionData,
    SessionLimitExceeded,
    SessionManager,
    UnsupportedDataType,
)
from pysessionmanager.contrib.django import SessionStore, get_manager
from pysessionmanager.testing import ManualClock


def saved(data: dict[str, object]) -> SessionStore:
    store = SessionStore()
    store.update(data)
    store.save()
    return store


# Keys


def test_keys_are_the_managers_tokens(manager: SessionManager) -> None:
    store = saved({"a": 1})
    assert len(store.session_key) == 43
    assert manager.get_session(store.session_key) == {"a": 1}


def test_must_create_refuses_a_key_that_names_a_session(manager: SessionManager) -> None:
    existing = saved({"a": 1}).session_key
    store = SessionStore(existing)
    store["b"] = 2
    with pytest.raises(CreateError):
        store.save(must_create=True)
    assert manager.get_session(existing) == {"a": 1}


def test_must_create_never_adopts_a_key_chosen_outside_the_store(
    manager: SessionManager,
) -> None:
    chosen = "c" * 43  # well formed, names nothing
    store = SessionStore(chosen)
    store["a"] = 1
    store.save(must_create=True)
    assert store.session_key != chosen
    assert not manager.is_session_active(chosen)
    assert manager.get_session(store.session_key) == {"a": 1}


@pytest.mark.parametrize(
    "key", ["", "1234567", "x" * 47, "has space in it", "with/slash", "ünïcödé-key", 12345678]
)
def test_keys_that_can_never_name_a_session_are_dropped(key: object) -> None:
    assert SessionStore(key).session_key is None  # type: ignore[arg-type]


def test_an_unknown_key_loads_as_no_session(manager: SessionManager) -> None:
    store = SessionStore("u" * 43)
    assert store.load() == {}
    assert store.session_key is None
    assert manager.count() == 0


def test_delete_by_key_ends_another_session(manager: SessionManager) -> None:
    other = saved({"a": 1}).session_key
    SessionStore().delete(other)
    assert not manager.is_session_active(other)


# Owners


def test_a_visitors_record_has_its_own_anonymous_owner(manager: SessionManager) -> None:
    one, two = saved({"a": 1}), saved({"a": 2})
    owners = {manager.get_session(s.session_key).user_id for s in (one, two)}
    assert len(owners) == 2
    assert all(owner.startswith("anonymous:") for owner in owners)


def test_cycle_key_ends_the_old_id_at_once_and_the_user_owns_the_new_record(
    manager: SessionManager,
) -> None:
    store = saved({"cart": ["book"]})
    old = store.session_key
    store.cycle_key()  # what django.contrib.auth.login does first...
    assert not manager.is_session_active(old)
    store["_auth_user_id"] = "42"  # ...then it records the user
    store.save()
    new = store.session_key
    assert new != old
    stored = manager.get_session(new)
    assert stored.user_id == "42"
    assert stored["cart"] == ["book"]
    assert manager.count() == 1


def test_reading_the_key_after_cycle_key_stores_the_record_at_once(
    manager: SessionManager,
) -> None:
    store = saved({"_auth_user_id": "42", "a": 1})
    old = store.session_key
    store.cycle_key()  # as update_session_auth_hash() does for a logged-in user
    new = store.session_key
    assert new is not None and new != old
    assert manager.get_session(new).user_id == "42"
    store["b"] = 2
    store.save()
    assert store.session_key == new  # same owner: no further move
    assert manager.get_session(new) == {"_auth_user_id": "42", "a": 1, "b": 2}


def test_an_empty_session_cycled_and_left_empty_stores_nothing(manager: SessionManager) -> None:
    store = SessionStore()
    store.cycle_key()
    assert store.session_key is None
    assert manager.count() == 0


def test_a_user_id_set_without_cycle_key_still_moves_the_session(
    manager: SessionManager,
) -> None:
    """Code that logs users in by hand gets the fixation defence too."""
    store = saved({"a": 1})
    old = store.session_key
    store["_auth_user_id"] = 7  # an int is kept as Django would read it back: "7"
    store.save()
    assert store.session_key != old
    assert not manager.is_session_active(old)
    assert manager.get_session(store.session_key).user_id == "7"


def test_dropping_the_user_id_moves_the_session_back_to_a_visitor(
    manager: SessionManager,
) -> None:
    store = saved({"_auth_user_id": "42", "a": 1})
    old = store.session_key
    del store["_auth_user_id"]
    store.save()
    assert not manager.is_session_active(old)
    assert manager.get_session(store.session_key).user_id.startswith("anonymous:")
    assert manager.list_sessions("42") == []


@pytest.mark.parametrize("user_id", ["", "anonymous:spoof", True, None, 1.5, ["42"]])
def test_user_ids_that_cannot_own_a_record_leave_it_a_visitors(
    manager: SessionManager, user_id: object
) -> None:
    store = saved({"_auth_user_id": user_id})
    assert manager.get_session(store.session_key).user_id.startswith("anonymous:")


def test_per_user_limits_apply_at_login(clock: ManualClock) -> None:
    options = {"clock": clock, "max_sessions_per_user": 1, "on_limit": "reject"}
    with override_settings(PYSESSIONMANAGER_STORE="memory://", PYSESSIONMANAGER_OPTIONS=options):
        saved({"_auth_user_id": "42"})
        with pytest.raises(SessionLimitExceeded):
            saved({"_auth_user_id": "42"})


# Expiry


def test_the_record_lives_session_cookie_age_after_its_last_save(
    manager: SessionManager, clock: ManualClock
) -> None:
    with override_settings(SESSION_COOKIE_AGE=100):
        store = saved({"a": 1})
        clock.advance(90)
        assert SessionStore(store.session_key).load() == {"a": 1}  # a read...
        clock.advance(20)  # ...does not extend it
        assert SessionStore(store.session_key).load() == {}


def test_a_save_without_changes_renews_the_expiry(
    manager: SessionManager, clock: ManualClock
) -> None:
    store = saved({"a": 1})
    store.set_expiry(100)
    store.save()  # moved to a record living 100 s
    clock.advance(90)
    again = SessionStore(store.session_key)
    again.save()  # unchanged, as with SESSION_SAVE_EVERY_REQUEST
    clock.advance(90)
    assert SessionStore(store.session_key).load() == {"a": 1, "_session_expiry": 100}


def test_set_expiry_seconds_moves_the_session_to_a_record_of_that_lifetime(
    manager: SessionManager, clock: ManualClock
) -> None:
    store = saved({"a": 1})
    old = store.session_key
    store.set_expiry(30)
    store.save()
    assert store.session_key != old
    assert not manager.is_session_active(old)
    clock.advance(31)
    assert not manager.is_session_active(store.session_key)


def test_set_expiry_date_is_fixed_whatever_is_saved(
    manager: SessionManager, clock: ManualClock
) -> None:
    store = saved({"a": 1})
    store.set_expiry(timedelta(seconds=100))
    store.save()
    clock.advance(80)
    later = SessionStore(store.session_key)
    later["b"] = 2
    later.save()  # a save does not extend a fixed date
    assert later.session_key == store.session_key
    clock.advance(30)
    assert not manager.is_session_active(store.session_key)


def test_a_session_saved_past_its_expiry_is_not_stored(manager: SessionManager) -> None:
    store = SessionStore()
    store["a"] = 1
    store.set_expiry(-timedelta(seconds=1))
    store.save()
    assert store.session_key is None
    assert manager.count() == 0

    existing = saved({"a": 1})
    existing.set_expiry(timezone.now() - timedelta(seconds=1))
    existing.save()
    assert not manager.is_session_active(existing.session_key)


def test_a_passed_expiry_date_is_never_returned(manager: SessionManager) -> None:
    """Even for a record whose own lifetime was set some other way."""
    past = (timezone.now() - timedelta(seconds=1)).isoformat()
    sid = manager.create_session("anonymous:x", {"a": 1, "_session_expiry": past})
    assert SessionStore(sid).load() == {}
    assert not manager.is_session_active(sid)


@pytest.mark.parametrize(
    ("value", "error"), [([1], TypeError), (True, TypeError), ("next tuesday", ValueError)]
)
def test_a_bad_expiry_value_is_refused(
    manager: SessionManager, value: object, error: type[Exception]
) -> None:
    existing = saved({"a": 1})
    existing["_session_expiry"] = value
    with pytest.raises(error, match="_session_expiry"):
        existing.save()
    assert manager.get_session(existing.session_key) == {"a": 1}  # left as it was
    store = SessionStore()
    store["_session_expiry"] = value
    with pytest.raises(error, match="_session_expiry"):
        store.save()
    assert manager.count() == 1


def test_clear_expired_purges_the_sqlite_store(sqlite_path: Path, clock: ManualClock) -> None:
    store = saved({"a": 1})
    store.set_expiry(10)
    store.save()
    keep = saved({"b": 2})
    clock.advance(11)
    SessionStore.clear_expired()
    assert get_manager().purge_expired() == 0  # nothing left to purge
    assert SessionStore(keep.session_key).load() == {"b": 2}


# Data


def test_values_are_stored_as_djangos_json_serializer_would(manager: SessionManager) -> None:
    store = saved({"pair": (1, 2), "by_id": {3: "x"}, "nested": [("a", None)]})
    assert manager.get_session(store.session_key) == {
        "pair": [1, 2],
        "by_id": {"3": "x"},
        "nested": [["a", None]],
    }


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (timezone.now(), UnsupportedDataType),
        ({1, 2}, UnsupportedDataType),
        (b"bytes", UnsupportedDataType),
        (math.nan, InvalidSessionData),
        (math.inf, InvalidSessionData),
    ],
)
def test_values_json_cannot_hold_are_refused_naming_the_key(
    manager: SessionManager, value: object, error: type[Exception]
) -> None:
    store = SessionStore()
    store["fine"] = 1
    store["when"] = value
    with pytest.raises(error, match=r"session\['when'\]") as refused:
        store.save()
    assert refused.value.path == "session['when']"  # type: ignore[attr-defined]
    assert manager.count() == 0


def test_values_the_store_refuses_raise_its_error(manager: SessionManager) -> None:
    store = saved({"n": 1})
    store["n"] = 2**70
    with pytest.raises(InvalidSessionData, match="n"):
        store.save()
    assert manager.get_session(store.session_key) == {"n": 1}


def test_changes_made_in_place_are_saved(manager: SessionManager) -> None:
    store = saved({"cart": ["book"]})
    later = SessionStore(store.session_key)
    later["cart"].append("pen")
    later.modified = True  # as Django asks after changing a value in place
    later.save()
    assert manager.get_session(store.session_key)["cart"] == ["book", "pen"]


def test_an_emptied_session_is_ended_not_stored_empty(manager: SessionManager) -> None:
    store = saved({"a": 1})
    del store["a"]
    store.save()
    assert not manager.is_session_active(store.session_key)
    assert manager.count() == 0


def test_two_requests_changing_different_keys_keep_both(manager: SessionManager) -> None:
    sid = saved({"a": 0, "b": 0}).session_key
    first, second = SessionStore(sid), SessionStore(sid)
    first["a"], second["b"] = 1, 2
    first.load(), second.load()  # both read before either writes
    first.save()
    second.save()
    assert manager.get_session(sid) == {"a": 1, "b": 2}


def test_a_second_save_keeps_what_another_request_wrote_before_the_first(
    manager: SessionManager,
) -> None:
    key = saved({"a": 1, "b": 1}).session_key
    first, second = SessionStore(key), SessionStore(key)
    first["a"], second["b"] = 2, 2
    first.save()
    second.save()  # merges "a" from the first request
    assert second["a"] == 2  # and shows it, so the next save does not undo it
    second["c"] = 3
    second.save()
    assert manager.get_session(key) == {"a": 2, "b": 2, "c": 3}


def test_a_session_ended_elsewhere_is_not_brought_back_by_a_move(
    manager: SessionManager,
) -> None:
    store = saved({"a": 1})
    store.load()
    SessionStore().delete(store.session_key)  # logged out in another request
    store["_auth_user_id"] = "42"  # would move it to a new record
    with pytest.raises(UpdateError):
        store.save()
    assert manager.count() == 0


# Settings


def test_one_manager_per_store_and_options(clock: ManualClock, tmp_path: Path) -> None:
    with override_settings(PYSESSIONMANAGER_OPTIONS={"clock": clock}):
        first = get_manager()
        clock.advance(5)  # the clock's state changed, not which clock it is
        assert get_manager() is first
        assert SessionStore()._manager is first
        with override_settings(PYSESSIONMANAGER_STORE=f"sqlite:///{tmp_path}/s.db"):
            assert get_manager() is not first
        with override_settings(PYSESSIONMANAGER_OPTIONS={"clock": clock, "max_data_bytes": 9}):
            assert get_manager() is not first


def test_a_forked_worker_opens_its_own_manager(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Store handles (SQLite connections) must not cross a fork; a worker
    forked after the parent opened the store opens its own."""
    parent_pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent_pid + 1)
    child = get_manager()
    assert child is not manager
    assert get_manager() is child
    child.close()


def test_the_managers_default_expiry_is_session_cookie_age(tmp_path: Path) -> None:
    with override_settings(
        PYSESSIONMANAGER_STORE=f"sqlite:///{tmp_path}/s.db", SESSION_COOKIE_AGE=1234
    ):
        assert get_manager().expiration_time == 1234


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PYSESSIONMANAGER_STORE": 5}, "PYSESSIONMANAGER_STORE must be a store URL"),
        ({"PYSESSIONMANAGER_STORE": "ftp://nowhere"}, "ftp"),
        ({"PYSESSIONMANAGER_OPTIONS": ["x"]}, "PYSESSIONMANAGER_OPTIONS must be a dict"),
        ({"PYSESSIONMANAGER_OPTIONS": {"expiration_time": 5}}, "SESSION_COOKIE_AGE"),
        ({"PYSESSIONMANAGER_OPTIONS": {"store": "memory://"}}, "PYSESSIONMANAGER_STORE"),
        ({"PYSESSIONMANAGER_OPTIONS": {"sliding": False}}, "set_expiry"),
        ({"PYSESSIONMANAGER_OPTIONS": {"colour": "red"}}, "colour"),
        ({"PYSESSIONMANAGER_OPTIONS": {"max_data_bytes": -1}}, "max_data_bytes"),
    ],
)
def test_bad_settings_are_refused_clearly(settings: dict[str, object], message: str) -> None:
    with override_settings(**settings), pytest.raises(ImproperlyConfigured, match=message):
        SessionStore()

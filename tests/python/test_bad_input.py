"""Every kind of bad input gets a clear error naming the problem, and changes nothing stored."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest

from pysessionmanager import (
    InvalidSessionData,
    SessionError,
    SessionManager,
    SessionNotFound,
    UnsupportedDataType,
)


@pytest.fixture
def populated() -> tuple[SessionManager, str, dict[str, Any]]:
    m = SessionManager(max_data_bytes=4096)
    data = {"cart": [1, 2, 3], "profile": {"name": "alice"}}
    return m, m.create_session("alice", data), data


def assert_unchanged(m: SessionManager, sid: str, data: dict[str, Any]) -> None:
    s = m.get_session(sid)
    assert s == data
    assert s.version == 1
    assert m.count() == 1
    assert len(m.list_sessions("alice")) == 1


class Unserializable:
    pass


class IdentityKey(str):
    """A str that equals only itself, so a dict can hold two keys of one text."""

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"d": value}
    return value


BAD_DATA = [
    # (data, exception, path, words in the message)
    ([1, 2], UnsupportedDataType, "data", "must be a dict, got list"),
    ("text", UnsupportedDataType, "data", "must be a dict, got str"),
    ({1: "a"}, UnsupportedDataType, "data", "key 1 of type int; keys must be str"),
    ({"a": {(1, 2): "b"}}, UnsupportedDataType, "data['a']", "keys must be str"),
    ({"tags": {"x", "y"}}, UnsupportedDataType, "data['tags']", "type set"),
    ({"raw": b"bytes"}, UnsupportedDataType, "data['raw']", "type bytes"),
    ({"when": datetime(2026, 1, 1)}, UnsupportedDataType, "data['when']", "type datetime"),
    ({"obj": Unserializable()}, UnsupportedDataType, "data['obj']", "type Unserializable"),
    ({"pair": (1, 2)}, UnsupportedDataType, "data['pair']", "type tuple"),
    ({"cart": [1, 2, {1, 2}]}, UnsupportedDataType, "data['cart'][2]", "type set"),
    ({"x": math.nan}, InvalidSessionData, "data['x']", "NaN"),
    ({"x": math.inf}, InvalidSessionData, "data['x']", "inf"),
    ({"x": [-math.inf]}, InvalidSessionData, "data['x'][0]", "inf"),
    ({"big": 2**64}, InvalidSessionData, "data['big']", "does not fit in 64 bits"),
    ({"small": -(2**63) - 1}, InvalidSessionData, "data['small']", "does not fit in 64 bits"),
    ({"s": "\ud800"}, InvalidSessionData, "data['s']", "UTF-8"),
    ({"\ud800": 1}, InvalidSessionData, "data", "UTF-8"),
    (deep(10_000), InvalidSessionData, "data" + "['d']" * 32, "deeper than the limit of 32"),
    ({"blob": "x" * 5000}, InvalidSessionData, "data", "over max_data_bytes (4096)"),
    ({IdentityKey("a"): 1, IdentityKey("a"): 2}, InvalidSessionData, "data", 'key "a" twice'),
    ({"a": 1, IdentityKey("a"): 2}, InvalidSessionData, "data", 'key "a" twice'),
    ({"p": {IdentityKey("b"): 1, IdentityKey("b"): 2}}, InvalidSessionData, "data['p']", "twice"),
]


@pytest.mark.parametrize(("data", "exc", "path", "words"), BAD_DATA)
def test_bad_data_is_refused_everywhere_with_its_path(
    populated: tuple[SessionManager, str, dict[str, Any]],
    data: Any,
    exc: type[Exception],
    path: str,
    words: str,
) -> None:
    m, sid, stored = populated
    base = TypeError if exc is UnsupportedDataType else ValueError
    calls = [
        lambda: m.create_session("alice", data),
        lambda: m.update_session(sid, data),
        lambda: m.set_session_data(sid, data),
        lambda: m.set_session_data(sid, data, expected_version=1),
    ]
    for call in calls:
        with pytest.raises(exc) as info:
            call()
        assert isinstance(info.value, base) and isinstance(info.value, SessionError)
        assert info.value.path == path  # type: ignore[attr-defined]
        assert str(info.value).startswith(path + ":")
        assert words in str(info.value)
        assert sid not in str(info.value)
    assert_unchanged(m, sid, stored)


def test_nesting_at_the_limit_is_accepted() -> None:
    m = SessionManager()
    sid = m.create_session("u", deep(31))
    assert m.get_session(sid) == deep(31)


def test_cyclic_data_is_refused_not_looping() -> None:
    m = SessionManager()
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(InvalidSessionData, match="deeper than the limit"):
        m.create_session("u", cyclic)


def test_update_that_would_exceed_the_size_limit_changes_nothing(
    populated: tuple[SessionManager, str, dict[str, Any]],
) -> None:
    m, sid, stored = populated
    with pytest.raises(InvalidSessionData, match=r"over max_data_bytes \(4096\)"):
        m.update_session(sid, {"more": "y" * 4050})
    assert_unchanged(m, sid, stored)


@pytest.mark.parametrize(
    ("user_id", "exc", "words"),
    [
        (None, TypeError, "user_id must be a str, got NoneType"),
        (12345, TypeError, "user_id must be a str, got int"),
        (b"alice", TypeError, "user_id must be a str, got bytes"),
        ("", ValueError, "user_id must not be empty"),
        ("x" * 1025, ValueError, "user_id must be at most 1024 bytes"),
        ("a\x00b", ValueError, "user_id must not contain NUL"),
    ],
)
def test_bad_user_id(
    populated: tuple[SessionManager, str, dict[str, Any]], user_id: Any, exc: type, words: str
) -> None:
    m, sid, stored = populated
    with pytest.raises(exc, match=words):
        m.create_session(user_id)
    with pytest.raises(exc, match=words.replace("user_id", "user_id")):
        m.list_sessions(user_id)
    with pytest.raises(exc, match=words):
        m.end_user_sessions(user_id)
    assert_unchanged(m, sid, stored)


@pytest.mark.parametrize("session_id", [None, 42, b"bytes", ["list"]])
def test_non_str_session_id_is_a_type_error(
    populated: tuple[SessionManager, str, dict[str, Any]], session_id: Any
) -> None:
    m, sid, stored = populated
    for call in [
        m.get_session,
        m.session_info,
        m.end_session,
        m.touch,
        m.rotate_session,
        lambda s: m.update_session(s, {}),
        lambda s: m.set_session_data(s, {}),
        lambda s: m.increment(s, "n"),
    ]:
        with pytest.raises(TypeError, match="session_id must be a str"):
            call(session_id)
    assert m.is_session_active(session_id) is False
    assert_unchanged(m, sid, stored)


@pytest.mark.parametrize(
    "session_id",
    [
        "",
        "x" * 10_000,
        "abc\x00def",
        "/../" * 11,
        "../../etc/passwd",
        "A" * 42 + "B",  # right length and alphabet, non-canonical last character
        "A" * 43,  # well-formed, never issued
        "\ud800",  # a lone surrogate: not even encodable
        "A" * 42 + "\udfff",
    ],
)
def test_malformed_or_unissued_ids_are_simply_not_found(
    populated: tuple[SessionManager, str, dict[str, Any]], session_id: str
) -> None:
    m, sid, stored = populated
    assert m.is_session_active(session_id) is False
    for call in [
        m.get_session,
        m.session_info,
        m.touch,
        m.rotate_session,
        lambda s: m.update_session(s, {"a": 1}),
        lambda s: m.set_session_data(s, {"a": 1}),
        lambda s: m.increment(s, "n"),
    ]:
        with pytest.raises(SessionNotFound) as info:
            call(session_id)
        assert session_id not in str(info.value) or session_id == ""
    m.end_session(session_id)
    assert_unchanged(m, sid, stored)


def test_a_near_miss_of_a_real_id_is_not_found(
    populated: tuple[SessionManager, str, dict[str, Any]],
) -> None:
    m, sid, stored = populated
    for variant in [sid[:-1], sid + "A", sid.upper() if sid.upper() != sid else sid.lower()]:
        assert not m.is_session_active(variant)
    assert_unchanged(m, sid, stored)


@pytest.mark.parametrize(
    ("value", "exc", "words"),
    [
        (0, ValueError, "expiration_time must be between 0.001 seconds and 100 years, got 0"),
        (-1, ValueError, "got -1"),
        (math.nan, ValueError, "got nan"),
        (math.inf, ValueError, "got inf"),
        (0.0001, ValueError, "got 0.0001"),
        (10**12, ValueError, "100 years"),
        (True, TypeError, "expiration_time must be a number of seconds (int or float), got bool"),
        ("30", TypeError, "got str"),
        ([30], TypeError, "got list"),
    ],
)
def test_bad_expiration_time(value: Any, exc: type, words: str) -> None:
    with pytest.raises(exc) as info:
        SessionManager(expiration_time=value)
    assert words in str(info.value)
    m = SessionManager()
    with pytest.raises(exc) as info:
        m.create_session("u", expiration_time=value)
    assert words in str(info.value)
    with pytest.raises(exc) as info:
        m.create_session("u", absolute_timeout=value)
    assert words.replace("expiration_time", "absolute_timeout") in str(info.value)
    assert m.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "exc", "words"),
    [
        ({"sliding": "yes"}, TypeError, "sliding must be a bool, got str"),
        ({"max_sessions_per_user": 0}, ValueError, "max_sessions_per_user must be a positive"),
        ({"max_sessions_per_user": True}, TypeError, "max_sessions_per_user must be an int"),
        ({"on_limit": "drop"}, ValueError, 'on_limit must be "evict_oldest" or "reject"'),
        ({"max_data_bytes": -5}, ValueError, "max_data_bytes must be a positive integer"),
        ({"max_data_bytes": 1}, ValueError, "max_data_bytes must be at least 2"),
        ({"store": "nosuch://x"}, ValueError, 'unknown store scheme "nosuch"'),
        ({"store": "memory"}, ValueError, "has no scheme"),
        ({"store": "memory://?max_sessions=zero"}, ValueError, "max_sessions must be a positive"),
        ({"store": "memory://?color=red"}, ValueError, 'unknown memory:// option "color"'),
        ({"store": "memory://somehost"}, ValueError, "takes no host or path"),
        ({"store": 5}, TypeError, "store must be a str"),
        ({"clock": 5}, TypeError, "clock must be a pysessionmanager.testing.ManualClock"),
    ],
)
def test_bad_manager_settings(kwargs: dict[str, Any], exc: type, words: str) -> None:
    with pytest.raises(exc) as info:
        SessionManager(**kwargs)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("store", "shown"),
    [
        ("nosuch://admin:hunter2@db.example:1/x", "admin:***@db.example"),
        ("nosuch://admin:hun/ter2@db.example/x", "admin:***@db.example"),
        ("nosuch://db.example/x?password=hunter2", "password=***"),
        ("host=db user=app password=hunter2", "password=***"),  # libpq's form, no scheme
    ],
)
def test_store_url_errors_never_echo_a_password(store: str, shown: str) -> None:
    with pytest.raises(ValueError) as info:
        SessionManager(store=store)
    assert "hunter2" not in str(info.value) and "ter2" not in str(info.value)
    assert shown in str(info.value)


def test_bad_increment_arguments(populated: tuple[SessionManager, str, dict[str, Any]]) -> None:
    m, sid, stored = populated
    with pytest.raises(TypeError, match="key must be a str"):
        m.increment(sid, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="by must fit in a signed 64-bit"):
        m.increment(sid, "n", by=2**64)
    with pytest.raises(TypeError, match=r"data\['cart'\]: cannot increment a list"):
        m.increment(sid, "cart")
    assert_unchanged(m, sid, stored)


def test_bad_expected_version(populated: tuple[SessionManager, str, dict[str, Any]]) -> None:
    m, sid, stored = populated
    with pytest.raises(TypeError, match="expected_version must be an int"):
        m.set_session_data(sid, {}, expected_version="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected_version must be a positive integer"):
        m.set_session_data(sid, {}, expected_version=0)
    assert_unchanged(m, sid, stored)


def test_a_manual_clock_stays_where_every_deadline_is_a_datetime() -> None:
    from pysessionmanager.testing import ManualClock

    for bad in (1e15, float("nan"), -1e12):
        with pytest.raises(ValueError, match="years 5 to 9892"):
            ManualClock(bad)
    clock = ManualClock(2.4e11)  # year 9575
    m = SessionManager(clock=clock, absolute_timeout=100 * 365 * 86_400)
    sid = m.create_session("u")
    assert m.get_session(sid).expires_at.year == 9575
    with pytest.raises(ValueError, match="years 5 to 9892"):
        clock.set(3e11)
    clock.set(2.49e11)  # year 9860: fine
    with pytest.raises(ValueError, match="years 5 to 9892"):
        clock.advance(99 * 365 * 86_400)
    assert clock.now() == 2.49e11, "a refused move leaves the clock where it was"


def test_incrementing_a_non_integer_names_its_type() -> None:
    m = SessionManager()
    sid = m.create_session("u", {"o": {}, "n": None})
    with pytest.raises(TypeError, match=r"data\['o'\]: cannot increment an object \(dict\)"):
        m.increment(sid, "o")
    with pytest.raises(TypeError, match=r"cannot increment null \(None\)"):
        m.increment(sid, "n")
    assert m.get_session(sid) == {"o": {}, "n": None}

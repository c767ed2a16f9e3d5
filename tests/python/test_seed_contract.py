"""The seed API of DESIGN.md section 1, exactly."""

from __future__ import annotations

import base64
import re

import pytest

from pysessionmanager import Session, SessionError, SessionManager, SessionNotFound
from pysessionmanager.testing import ManualClock


def test_default_manager_uses_memory_and_one_hour() -> None:
    m = SessionManager()
    assert m.store == "memory://"
    assert m.expiration_time == 3600
    assert repr(m) == 'SessionManager(store="memory://", expiration_time=3600)'


def test_expiration_time_positional_and_keyword() -> None:
    assert SessionManager(1800).expiration_time == 1800
    assert SessionManager(expiration_time=1800).expiration_time == 1800
    assert SessionManager(expiration_time=0.5).expiration_time == 0.5


def test_create_returns_url_safe_256_bit_token() -> None:
    m = SessionManager()
    sid = m.create_session(user_id="12345")
    assert isinstance(sid, str)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", sid)
    assert len(base64.urlsafe_b64decode(sid + "=")) == 32
    assert len({m.create_session(user_id="u") for _ in range(1000)}) == 1000


def test_get_session_returns_data_as_session_dict() -> None:
    m = SessionManager()
    data = {"role": "admin", "preferences": {"theme": "dark"}}
    sid = m.create_session(user_id="54321", data=data)
    s = m.get_session(sid)
    assert isinstance(s, dict) and isinstance(s, Session)
    assert s == data
    assert s["role"] == "admin"
    assert s.session_id == sid
    assert s.user_id == "54321"
    assert s.version == 1
    assert len(s.key) == 64


def test_session_without_data_is_empty_dict() -> None:
    m = SessionManager()
    assert m.get_session(m.create_session("u")) == {}
    assert m.get_session(m.create_session("u", None)) == {}


def test_session_times_are_aware_utc_datetimes(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=1800, clock=clock)
    s = m.get_session(m.create_session("u"))
    assert s.created_at.tzinfo is not None and s.created_at.utcoffset().total_seconds() == 0
    assert s.created_at.timestamp() == 1_700_000_000.0
    assert s.last_active == s.created_at
    assert (s.expires_at - s.created_at).total_seconds() == 1800
    assert s.absolute_expires_at is None


def test_session_attributes_are_read_only_and_mutation_changes_nothing() -> None:
    m = SessionManager()
    sid = m.create_session("u", {"a": 1})
    s = m.get_session(sid)
    with pytest.raises(AttributeError):
        s.user_id = "other"  # type: ignore[misc]
    s["a"] = 2
    s["b"] = 3
    assert m.get_session(sid) == {"a": 1}


def test_get_unknown_ended_expired_raise_session_not_found(clock: ManualClock) -> None:
    m = SessionManager(expiration_time=10, clock=clock)
    never_issued = base64.urlsafe_b64encode(bytes(32)).decode().rstrip("=")
    with pytest.raises(SessionNotFound):
        m.get_session(never_issued)
    ended = m.create_session("u")
    m.end_session(ended)
    with pytest.raises(SessionNotFound):
        m.get_session(ended)
    expired = m.create_session("u")
    clock.advance(10)
    with pytest.raises(SessionNotFound) as info:
        m.get_session(expired)
    assert isinstance(info.value, KeyError) and isinstance(info.value, SessionError)
    assert str(info.value) == "session not found (unknown, ended or expired)"


def test_is_session_active_never_raises() -> None:
    m = SessionManager()
    sid = m.create_session("u")
    assert m.is_session_active(sid) is True
    for bad in [None, 1, b"bytes", "", "x" * 10_000, sid + "\x00", "/../", object()]:
        assert m.is_session_active(bad) is False


def test_end_session_is_idempotent() -> None:
    m = SessionManager()
    sid = m.create_session("u")
    assert m.end_session(sid) is None
    assert m.end_session(sid) is None
    assert m.end_session("never-issued") is None
    assert not m.is_session_active(sid)

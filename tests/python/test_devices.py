"""A "your devices" page: a user lists their sessions and ends one by its
public key, on every store; nobody can end another user's session by key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from pysessionmanager import AsyncSessionManager, SessionManager


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
def test_a_user_ends_one_device_by_its_key(kind: str, url_of: Callable[[str], str]) -> None:
    with SessionManager(store=url_of(kind)) as m:
        phone = m.create_session("alice", {"device": "phone"})
        laptop = m.create_session("alice", {"device": "laptop"})
        bobs = m.create_session("bob", {"device": "tablet"})
        devices = {s["device"]: s.key for s in m.list_sessions("alice")}
        assert set(devices) == {"phone", "laptop"}

        assert m.end_session_by_key("bob", devices["phone"]) is False
        assert m.is_session_active(phone), "bob cannot end alice's phone"
        assert m.end_session_by_key("alice", m.session_info(bobs).key) is False
        assert m.is_session_active(bobs)

        assert m.end_session_by_key("alice", devices["phone"]) is True
        assert not m.is_session_active(phone)
        assert m.is_session_active(laptop)
        assert m.end_session_by_key("alice", devices["phone"]) is False, "already ended"

        am = AsyncSessionManager(store=m)
        assert asyncio.run(am.end_session_by_key("alice", devices["laptop"])) is True
        assert m.list_sessions("alice") == []


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "got 0 characters"),
        ("not-hex", "got 7 characters"),
        ("a" * 65, "got 65 characters"),
    ],
)
def test_bad_keys_are_refused_without_being_echoed(key: str, message: str) -> None:
    with SessionManager() as m:
        sid = m.create_session("alice")
        with pytest.raises(ValueError, match="64 hex digits") as info:
            m.end_session_by_key("alice", key)
        assert message in str(info.value)
        assert m.is_session_active(sid)


def test_a_session_id_given_for_a_key_is_named_and_never_printed() -> None:
    with SessionManager() as m:
        sid = m.create_session("alice")
        with pytest.raises(ValueError, match="looks like a session id") as info:
            m.end_session_by_key("alice", sid)
        assert sid not in str(info.value)
        assert m.is_session_active(sid), "nothing ended"
        with pytest.raises(TypeError, match="key must be a str"):
            m.end_session_by_key("alice", 5)  # type: ignore[arg-type]

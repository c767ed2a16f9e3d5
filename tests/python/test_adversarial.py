"""A standing adversarial suite, in bounded time (PYSM_FUZZ_EXAMPLES raises
the example counts for long runs; see the README's Development section):

- every public operation of the manager, called with generated hostile
  arguments (wrong types, subclasses with lying ``__eq__``/``__hash__``,
  huge and non-finite numbers, unicode edge cases, deep and huge data) on
  every store: either the call succeeds, or it raises a clear error of the
  documented kinds, and then nothing stored has changed;
- stored data corrupted by hand (arbitrary bytes where the JSON is): a
  read raises ``StoreError`` saying so, never another exception or a crash.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_layout import session_name

from pysessionmanager import RateLimiter, SessionError, SessionManager, StoreError

EXAMPLES = int(os.environ.get("PYSM_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class LyingStr(str):
    """Equal to everything, hashing like nothing else."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 7


class Weird(dict):  # type: ignore[type-arg]
    """A dict subclass whose items() lies."""

    def items(self):  # type: ignore[no-untyped-def]
        return [(1, object())]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"n": value}
    return value


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "\ud800", "é" * 200, "x" * 5000, "a\u0000b", "🙂", " "]),
    st.binary(max_size=20),
    st.builds(LyingStr, st.text(max_size=5)),
    st.just(object()),
    st.just(Weird(a=1)),
    st.just(nested(200)),
    st.just({"big": "x" * 200_000}),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
    st.lists(st.integers(), max_size=4),
    st.just({1: "int key"}),
    st.just({"s": {1, 2}}),
    st.just({"f": float("nan")}),
)

OPERATIONS: dict[str, Callable[..., Any]] = {
    "create_session": lambda m, k, a, b: m.create_session(a, b),
    "create_session_timeouts": lambda m, k, a, b: m.create_session(
        "u", expiration_time=a, absolute_timeout=b
    ),
    "get_session": lambda m, k, a, b: m.get_session(a),
    "session_info": lambda m, k, a, b: m.session_info(a),
    "is_session_active": lambda m, k, a, b: m.is_session_active(a),
    "end_session": lambda m, k, a, b: m.end_session(a),
    "update_session": lambda m, k, a, b: m.update_session(a, b),
    "update_known": lambda m, k, a, b: m.update_session(k[0], a),
    "set_session_data": lambda m, k, a, b: m.set_session_data(k[0], a, expected_version=b),
    "increment": lambda m, k, a, b: m.increment(k[1], a, b),
    "increment_known_key": lambda m, k, a, b: m.increment(k[1], "n", a),
    "rotate_session": lambda m, k, a, b: m.rotate_session(a),
    "touch": lambda m, k, a, b: m.touch(a),
    "list_sessions": lambda m, k, a, b: m.list_sessions(a),
    "end_user_sessions": lambda m, k, a, b: m.end_user_sessions(a, except_session=b),
    "rate_limit": lambda m, k, a, b: RateLimiter("5/second", store=m).hit(a),
    "rate_limiter": lambda m, k, a, b: RateLimiter(a, burst=b),
}

# What a refused call may raise: the package's errors, and the builtins the
# README names for wrong argument types and values.
CLEAR = (SessionError, TypeError, ValueError, KeyError)


def snapshot(m: SessionManager, known: list[str]) -> list[Any]:
    """What the test's known sessions hold: data, version, user."""
    out = []
    for sid in known:
        if m.is_session_active(sid):
            s = m.session_info(sid)
            out.append((sid, dict(s), s.version, s.user_id))
        else:
            out.append((sid, None))
    return out


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-cluster", "postgres"])
def known(request: pytest.FixtureRequest, url_of: Callable[[str], str]) -> Iterator[Any]:
    m = SessionManager(store=url_of(request.param))
    sids = [m.create_session("alice", {"a": 1}), m.create_session("bob", {"n": 1})]
    yield SimpleNamespace(m=m, known=sids)
    m.close()


@FUZZ
@given(op=st.sampled_from(sorted(OPERATIONS)), a=HOSTILE, b=HOSTILE)
def test_hostile_arguments_give_clear_errors_and_change_nothing(
    known: Any, op: str, a: Any, b: Any
) -> None:
    m, sids = known.m, known.known
    before = snapshot(m, sids)
    try:
        OPERATIONS[op](m, sids, a, b)
    except CLEAR as e:
        message = str(e)
        assert message, f"{op}: an error without a message"
        assert not any(sid in message for sid in known.known), f"{op}: an id in {message!r}"
        assert snapshot(m, sids) == before, f"{op} raised {e!r} and changed the store"
    # Any other exception fails the test: it is not one the README promises.
    for sid in known.known:
        # Whatever happened, the store still answers for every session.
        m.is_session_active(sid)


@pytest.fixture(params=["sqlite", "redis"])
def corruptible(
    request: pytest.FixtureRequest, url_of: Callable[[str], str]
) -> Iterator[tuple[str, Callable[[str, bytes], None]]]:
    url = url_of(request.param)
    if request.param == "sqlite":
        path = url.removeprefix("sqlite:///")

        def corrupt(sid: str, raw: bytes) -> None:
            # Another SQLite library in this process must not hold the file
            # while a manager has it open: the test's managers are closed here.
            with sqlite3.connect(path) as db:
                db.execute(
                    "UPDATE pysessionmanager_sessions SET data = ? WHERE key = ?",
                    (raw.decode("utf-8", "replace"), hashlib.sha256(sid.encode()).digest()),
                )
            db.close()

    else:
        server = request.getfixturevalue("redis_server")
        prefix = url.split("prefix=")[1]

        def corrupt(sid: str, raw: bytes) -> None:
            # The test's session is alice's.
            key = session_name(prefix, sid, "alice")
            assert server.client().hset(key, "d", raw) == 0  # the field existed

    yield url, corrupt


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
def test_corrupt_stored_data_is_a_store_error_never_a_crash(
    corruptible: tuple[str, Callable[[str, bytes], None]], raw: bytes
) -> None:
    url, corrupt = corruptible
    with SessionManager(store=url) as m:
        sid = m.create_session("alice", {"a": 1})
        other = m.create_session("bob", {"b": 2})
    corrupt(sid, raw)
    with SessionManager(store=url) as m:
        try:
            got = m.get_session(sid)
        except StoreError as e:  # names what is wrong with the stored data
            assert any(word in str(e) for word in ("JSON", "UTF-8", "corrupt")), e
        else:
            assert isinstance(got, dict)  # the bytes happened to be a JSON object
        assert m.is_session_active(sid)
        assert m.get_session(other) == {"b": 2}
        m.end_session(sid)  # a corrupt session can still be ended
        assert not m.is_session_active(sid)

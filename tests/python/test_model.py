"""Random sequences of every operation, checked against a small pure-Python model.

The model is the specification: sliding expiry with the half-window rule,
absolute caps, versions, merges, counters, rotation, per-user limits and purges.
The clock is a ManualClock moved by the test, so expiry is exercised without sleeping.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, rule
from redis_layout import session_key

from pysessionmanager import (
    InvalidSessionData,
    SessionConflict,
    SessionLimitExceeded,
    SessionManager,
    SessionNotFound,
    UnsupportedDataType,
)
from pysessionmanager.testing import ManualClock

START_MS = 1_700_000_000_000
I64_MAX = 2**63 - 1

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
session_data = st.dictionaries(
    st.sampled_from(["a", "b", "n", "cart", "é", 'q"k']), json_values, max_size=4
)
users = st.sampled_from(["alice", "bob", "carol"])
counter_keys = st.sampled_from(["n", "a", "hits", 'q"k'])


@dataclass(frozen=True)
class Rec:
    user: str
    data: dict[str, Any]
    version: int
    created: int
    last_active: int
    expires: int
    idle: int
    sliding: bool
    absolute: Optional[int]

    def live(self, now: int) -> bool:
        return now < self.expires

    def deadline(self, now: int) -> int:
        return now + self.idle if self.absolute is None else min(now + self.idle, self.absolute)

    def refresh_due(self, now: int) -> bool:
        return (
            self.sliding
            and now - self.last_active >= self.idle // 2
            and self.deadline(now) > self.expires
        )

    def active_at(self, now: int) -> Rec:
        expires = max(self.expires, self.deadline(now)) if self.sliding else self.expires
        return replace(self, last_active=max(self.last_active, now), expires=expires)


def key(token: str) -> bytes:
    return bytes.fromhex(session_key(token))


def observed(s: Any) -> tuple[Any, ...]:
    meta = s._meta
    return (
        s.key,
        s.user_id,
        list(s.items()),
        meta.version,
        meta.created_at_ms,
        meta.last_active_ms,
        meta.expires_at_ms,
        meta.absolute_expires_at_ms,
    )


def expected(token: str, r: Rec) -> tuple[Any, ...]:
    return (
        key(token).hex(),
        r.user,
        list(r.data.items()),
        r.version,
        r.created,
        r.last_active,
        r.expires,
        r.absolute,
    )


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call did: its result, or the type of error it raised."""
    try:
        return ("ok", call())
    except (SessionNotFound, SessionConflict, SessionLimitExceeded) as e:
        return ("error", type(e).__name__)
    except UnsupportedDataType:
        return ("error", "TypeError")
    except InvalidSessionData:
        return ("error", "ValueError")


class SessionModel(RuleBasedStateMachine):
    """Drives a real manager and the model side by side."""

    limit: Optional[int] = None
    on_limit = "evict_oldest"
    default_absolute: Optional[float] = None
    #: Whether the store leaves the expired sessions a write meets for its
    #: sweeps (Redis: a create under the limit does not remove them, and
    #: ending a user's sessions removes only those its indexes still list),
    #: so that a purge may find some the model no longer holds.
    expired_left_for_sweeps = False

    tokens = Bundle("tokens")

    def __init__(self) -> None:
        super().__init__()
        self.now = START_MS
        # Expired sessions the model dropped that the store may still hold
        # (see `expired_left_for_sweeps`), since the last purge.
        self.maybe_left = 0
        self.clock = ManualClock(START_MS / 1000)
        self.manager = SessionManager(
            expiration_time=60,
            absolute_timeout=self.default_absolute,
            max_sessions_per_user=self.limit,
            on_limit=self.on_limit,
            clock=self.clock,
            store=self.store_url(),
        )
        self.records: dict[str, Rec] = {}

    def store_url(self) -> str:
        return "memory://?sweep_interval_ms=0"

    def teardown(self) -> None:
        self.manager.close()

    # --- helpers of the model -------------------------------------------------

    def live(self, token: str) -> Optional[Rec]:
        r = self.records.get(token)
        return r if r is not None and r.live(self.now) else None

    def of_user(self, user: str) -> list[tuple[str, Rec]]:
        return [(t, r) for t, r in self.records.items() if r.user == user]

    def write(self, token: str, change: Callable[[Rec], Rec]) -> tuple[str, Any]:
        r = self.live(token)
        if r is None:
            return ("error", "SessionNotFound")
        new = change(r)
        self.records[token] = replace(new, version=r.version + 1).active_at(self.now)
        return ("ok", None)

    # --- rules ------------------------------------------------------------------

    @initialize(target=tokens)
    def first_session(self) -> str:
        return self.create(user="alice", data={}, idle=None, sliding=None, absolute=None)

    @rule(ms=st.integers(0, 70_000))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms / 1000) if ms else None
        self.now += ms

    @rule(
        target=tokens,
        user=users,
        data=session_data,
        idle=st.none() | st.integers(1, 120_000),
        sliding=st.none() | st.booleans(),
        absolute=st.none() | st.integers(1, 200_000),
    )
    def create(
        self,
        user: str,
        data: dict[str, Any],
        idle: Optional[int],
        sliding: Optional[bool],
        absolute: Optional[int],
    ) -> str:
        kwargs = {
            "expiration_time": None if idle is None else idle / 1000,
            "sliding": sliding,
            "absolute_timeout": None if absolute is None else absolute / 1000,
        }
        mine = self.of_user(user)
        if self.limit is not None:
            for t, r in mine:
                if not self.expired_left_for_sweeps and not r.live(self.now):
                    del self.records[t]
            live = sorted(
                ((r.created, key(t), t) for t, r in mine if r.live(self.now)),
            )
            if len(live) >= self.limit:
                if self.on_limit == "reject":
                    assert outcome(lambda: self.manager.create_session(user, data, **kwargs)) == (
                        "error",
                        "SessionLimitExceeded",
                    )
                    return "A" * 43
                for _, _, t in live[: len(live) - self.limit + 1]:
                    del self.records[t]
        token = self.manager.create_session(user, data, **kwargs)
        if absolute is None and self.default_absolute is not None:
            absolute = int(self.default_absolute * 1000)
        idle_ms = 60_000 if idle is None else idle
        cap = None if absolute is None else self.now + absolute
        self.records[token] = Rec(
            user=user,
            data=dict(data),
            version=1,
            created=self.now,
            last_active=self.now,
            expires=self.now + idle_ms if cap is None else min(self.now + idle_ms, cap),
            idle=idle_ms,
            sliding=True if sliding is None else sliding,
            absolute=cap,
        )
        return token

    @rule(token=tokens)
    def get(self, token: str) -> None:
        got = outcome(lambda: observed(self.manager.get_session(token)))
        r = self.live(token)
        if r is None:
            assert got == ("error", "SessionNotFound")
            return
        if r.refresh_due(self.now):
            r = self.records[token] = r.active_at(self.now)
        assert got == ("ok", expected(token, r))

    @rule(token=tokens)
    def session_info(self, token: str) -> None:
        got = outcome(lambda: observed(self.manager.session_info(token)))
        r = self.live(token)
        assert got == (("error", "SessionNotFound") if r is None else ("ok", expected(token, r)))

    @rule(token=tokens)
    def is_active(self, token: str) -> None:
        assert self.manager.is_session_active(token) is (self.live(token) is not None)

    @rule(token=consumes(tokens))
    def end(self, token: str) -> None:
        assert self.manager.end_session(token) is None
        self.records.pop(token, None)

    @rule(token=tokens)
    def touch(self, token: str) -> None:
        got = outcome(lambda: self.manager.touch(token))
        r = self.live(token)
        if r is None:
            assert got == ("error", "SessionNotFound")
        else:
            self.records[token] = r.active_at(self.now)
            assert got == ("ok", None)

    @rule(token=tokens, patch=session_data)
    def update(self, token: str, patch: dict[str, Any]) -> None:
        got = outcome(lambda: self.manager.update_session(token, patch))
        assert got == self.write(token, lambda r: replace(r, data={**r.data, **patch}))

    @rule(token=tokens, data=session_data, pin=st.booleans(), skew=st.integers(-1, 1))
    def set_data(self, token: str, data: dict[str, Any], pin: bool, skew: int) -> None:
        r = self.live(token)
        expected_version = max(1, (r.version if r else 1) + skew) if pin else None
        got = outcome(
            lambda: self.manager.set_session_data(token, data, expected_version=expected_version)
        )
        if r is not None and expected_version is not None and expected_version != r.version:
            assert got == ("error", "SessionConflict")
            return
        want = self.write(token, lambda r: replace(r, data=dict(data)))
        assert got == (want if want[0] == "error" else ("ok", self.records[token].version))

    @rule(token=tokens, name=counter_keys, by=st.integers(-(2**62), 2**62))
    def increment(self, token: str, name: str, by: int) -> None:
        got = outcome(lambda: self.manager.increment(token, name, by))
        r = self.live(token)
        if r is None:
            assert got == ("error", "SessionNotFound")
            return
        current = r.data.get(name, 0)
        if isinstance(current, bool) or not isinstance(current, int):
            assert got == ("error", "TypeError")
        elif current > I64_MAX or not -(2**63) <= current + by <= I64_MAX:
            assert got == ("error", "ValueError")
        else:
            self.write(token, lambda r: replace(r, data={**r.data, name: current + by}))
            assert got == ("ok", current + by)

    @rule(target=tokens, token=tokens)
    def rotate(self, token: str) -> str:
        got = outcome(lambda: self.manager.rotate_session(token))
        r = self.live(token)
        if r is None:
            assert got == ("error", "SessionNotFound")
            return token
        assert got[0] == "ok" and got[1] != token
        del self.records[token]
        self.records[got[1]] = r
        return got[1]

    @rule(user=users)
    def list_sessions(self, user: str) -> None:
        got = [observed(s) for s in self.manager.list_sessions(user)]
        live = sorted(
            ((r.created, key(t), t, r) for t, r in self.of_user(user) if r.live(self.now)),
            key=lambda x: (x[0], x[1]),
        )
        assert got == [expected(t, r) for _, _, t, r in live]

    @rule(user=users, keep=st.none() | tokens)
    def end_user(self, user: str, keep: Optional[str]) -> None:
        got = self.manager.end_user_sessions(user, except_session=keep)
        ended = [t for t, r in self.of_user(user) if t != keep]
        assert got == sum(1 for t in ended if self.records[t].live(self.now))
        self.maybe_left += sum(1 for t in ended if not self.records[t].live(self.now))
        for t in ended:
            del self.records[t]

    @rule()
    def purge(self) -> None:
        expired = [t for t, r in self.records.items() if not r.live(self.now)]
        purged = self.manager.purge_expired()
        if self.expired_left_for_sweeps:
            assert len(expired) <= purged <= len(expired) + self.maybe_left
        else:
            assert purged == len(expired)
        assert self.manager.purge_expired() == 0
        self.maybe_left = 0
        for t in expired:
            del self.records[t]

    @rule()
    def count(self) -> None:
        assert self.manager.count() == sum(1 for r in self.records.values() if r.live(self.now))


class EvictingModel(SessionModel):
    limit = 2
    default_absolute = 150.0


class RejectingModel(SessionModel):
    limit = 2
    on_limit = "reject"


class SqliteModel(SessionModel):
    limit = 2
    default_absolute = 150.0

    def store_url(self) -> str:
        self.folder = tempfile.mkdtemp(prefix="pysessionmanager-model-")
        return f"sqlite:///{self.folder}/sessions.db?sweep_interval_ms=0"

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.folder, ignore_errors=True)


EXAMPLES = settings(max_examples=300, stateful_step_count=50, deadline=None)
TestUnlimited = SessionModel.TestCase
TestUnlimited.settings = EXAMPLES
TestEvictOldest = EvictingModel.TestCase
TestEvictOldest.settings = EXAMPLES
TestReject = RejectingModel.TestCase
TestReject.settings = EXAMPLES
TestSqlite = SqliteModel.TestCase
TestSqlite.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)

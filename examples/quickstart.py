"""A tour of pysessionmanager: every example of the README, narrated.

Run it with `make quickstart` (or `python examples/quickstart.py` once the package
is installed). The web side (Flask sessions, login, rate-limited views) is the
demo app: `make demo`.
"""

from __future__ import annotations

import threading
from datetime import datetime

from pysessionmanager import (
    RateLimiter,
    SessionConflict,
    SessionLimitExceeded,
    SessionManager,
    SessionNotFound,
    UnsupportedDataType,
)
from pysessionmanager.testing import ManualClock


def step(title: str) -> None:
    print(f"\n== {title}")


def seed_api() -> None:
    step("The seed API")
    m = SessionManager(expiration_time=1800)
    sid = m.create_session(
        user_id="54321", data={"role": "admin", "preferences": {"theme": "dark"}}
    )
    s = m.get_session(sid)
    print(f"session of user {s.user_id}: role={s['role']}, expires {s.expires_at:%H:%M} UTC")
    print(f"the id is {len(sid)} URL-safe characters (256 random bits); repr(s) shows no id: {s!r}")
    print("active:", m.is_session_active(sid))
    m.end_session(sid)
    m.end_session(sid)  # idempotent
    print("active after end_session:", m.is_session_active(sid))
    try:
        m.get_session(sid)
    except SessionNotFound as e:
        print("get_session after end:", type(e).__name__, "-", e)


def writes() -> None:
    step("Atomic writes")
    m = SessionManager()
    sid = m.create_session("alice", {"theme": "dark"})
    m.update_session(sid, {"lang": "fr"})
    print("after update_session:", m.get_session(sid))

    def visit() -> None:
        for _ in range(1000):
            m.increment(sid, "page_views")

    threads = [threading.Thread(target=visit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("8 threads x 1000 increments ->", m.get_session(sid)["page_views"])

    s = m.get_session(sid)
    m.set_session_data(sid, {"theme": "light"}, expected_version=s.version)
    try:
        m.set_session_data(sid, {"theme": "blue"}, expected_version=s.version)
    except SessionConflict as e:
        print("stale compare-and-set refused:", e)


def bad_data() -> None:
    step("Only JSON goes in, never pickle")
    m = SessionManager()
    for data in [
        {"cart": [1, 2, {"added": datetime(2026, 1, 1)}]},
        {"tags": {"a", "b"}},
        {"ratio": float("nan")},
        {1: "non-str key"},
    ]:
        try:
            m.create_session("alice", data)
        except (UnsupportedDataType, ValueError) as e:
            print(f"refused {type(e).__name__}: {e}")


def login_flow() -> None:
    step("Login, devices, log out everywhere")
    m = SessionManager(max_sessions_per_user=3, on_limit="reject")
    anonymous = m.create_session("alice", {"cart": ["book"]})
    sid = m.rotate_session(anonymous)
    print("old id still works after rotation:", m.is_session_active(anonymous))
    m.create_session("alice")
    m.create_session("alice")
    try:
        m.create_session("alice")
    except SessionLimitExceeded as e:
        print("fourth device:", e)
    print("alice's devices:", [s.key[:12] for s in m.list_sessions("alice")])
    print("ended elsewhere:", m.end_user_sessions("alice", except_session=sid))
    print("cart kept across login:", m.get_session(sid)["cart"])


def rate_limits() -> None:
    step("Rate limits: 5 calls at once, then one every 2 seconds")
    clock = ManualClock()
    api = RateLimiter("30/minute", burst=5, clock=clock)
    print("6 calls at once:", [api.hit("user:alice").allowed for _ in range(6)])
    print("retry after", api.hit("user:alice").retry_after, "s")
    clock.advance(2)
    print("2 s later:", api.hit("user:alice").allowed)


def expiry() -> None:
    step("Expiry (on a hand-moved clock)")
    clock = ManualClock()
    m = SessionManager(expiration_time=60, absolute_timeout=300, clock=clock)
    sid = m.create_session("alice")
    for _ in range(4):
        clock.advance(50)
        m.get_session(sid)
    print("after 200 s of activity every 50 s:", m.is_session_active(sid))
    clock.advance(100)
    print("after 300 s (the absolute cap):", m.is_session_active(sid))
    for _ in range(3):
        m.create_session("bob", expiration_time=5)
    clock.advance(10)
    print("live sessions after their 5 s ran out:", m.count())


if __name__ == "__main__":
    seed_api()
    writes()
    bad_data()
    login_flow()
    expiry()
    rate_limits()
    with SessionManager() as m:
        m.create_session("alice")
        print("\nclosed cleanly after", m.count(), "session(s)")

"""Session events from Python: a callback on its own thread sees every
creation, end and rotation with key and user, on every store; a slow or
raising callback never slows or breaks the operation behind the event."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from pysessionmanager import AsyncSessionManager, SessionManager
from pysessionmanager.events import SessionEvent, subscribe


def wait_for(events: list, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "redis-cluster", "postgres"])
def test_a_subscriber_sees_what_happened(kind: str, url_of: Callable[[str], str]) -> None:
    with SessionManager(store=url_of(kind), max_sessions_per_user=2) as m:
        seen: list[SessionEvent] = []
        with subscribe(m, seen.append):
            a1 = m.create_session("alice")
            time.sleep(0.002)
            a2 = m.create_session("alice")
            time.sleep(0.002)
            a3 = m.create_session("alice")  # evicts a1
            m.end_session(a2)
            new = m.rotate_session(a3)
            m.end_user_sessions("alice")
            wait_for(seen, 7)
        described = [(e.type, e.reason, e.user_id) for e in seen]
        assert described == [
            ("created", None, "alice"),
            ("created", None, "alice"),
            ("ended", "evicted", "alice"),
            ("created", None, "alice"),
            ("ended", "logout", "alice"),
            ("rotated", None, "alice"),
            ("ended", "ended_with_user", "alice"),
        ]
        assert seen[2].key == seen[0].key, "the oldest was evicted"
        assert seen[5].key == seen[3].key and seen[5].new_key == seen[6].key
        every = str(seen)
        assert all(sid not in every for sid in (a1, a2, a3, new)), "ids never appear"
        assert seen[0].created_at <= seen[0].at < seen[0].expires_at


def test_a_slow_or_raising_subscriber_slows_and_breaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with SessionManager() as m:
        release = threading.Event()
        taken: list[SessionEvent] = []

        def slow(event: SessionEvent) -> None:
            taken.append(event)
            release.wait(10)

        def broken(event: SessionEvent) -> None:
            raise RuntimeError(f"subscriber bug on {event.type}")

        with caplog.at_level(logging.ERROR, logger="pysessionmanager.events"):
            with subscribe(m, slow, capacity=5), subscribe(m, broken):
                for _ in range(200):
                    m.create_session("bob")
                # Had a create waited for room in the stuck subscriber's
                # queue, the subscriber would have been let go (its wait
                # ends after 10 s) and taken more by now.
                assert len(taken) <= 1, "the operations never waited for the stuck subscriber"
                release.set()
                deadline = time.monotonic() + 10
                while len(caplog.records) < 200 and time.monotonic() < deadline:
                    time.sleep(0.01)
        assert m.stats()["events_dropped"] >= 200 - 1 - 5, "the stuck one's overflow counted"
        assert len(caplog.records) == 200, "each raise is logged, none lost"
        assert "subscriber bug on created" in caplog.text
        assert m.count() == 200


def test_subscribe_takes_an_async_manager_and_refuses_bad_input() -> None:
    with SessionManager() as m:
        seen: list[SessionEvent] = []
        with subscribe(AsyncSessionManager(store=m), seen.append):
            m.create_session("carol")
            wait_for(seen, 1)
        assert [e.user_id for e in seen] == ["carol"]
        with pytest.raises(TypeError, match="expected a SessionManager"):
            subscribe("memory://", seen.append)
        with pytest.raises(ValueError, match="capacity must be a positive int"):
            subscribe(m, seen.append, capacity=0)


CHILD = """
import json, sys, time
from pysessionmanager import SessionManager
from pysessionmanager.events import subscribe
seen = []
with SessionManager(store=sys.argv[1]) as m:
    with subscribe(m, lambda e: seen.append(e) if e.type == "expired" else None):
        print("ready", flush=True)
        time.sleep(float(sys.argv[2]))
print(json.dumps([[e.key, e.user_id] for e in seen]), flush=True)
"""


@pytest.mark.parametrize("kind", ["sqlite", "redis", "redis-cluster", "postgres"])
def test_each_expired_session_is_reported_once_by_three_processes(
    kind: str, url_of: Callable[[str], str]
) -> None:
    url = url_of(kind)
    sweeping = url + ("&" if "?" in url else "?") + "sweep_interval_ms=50"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, sweeping, "6"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    with SessionManager(store=url + ("&" if "?" in url else "?") + "sweep_interval_ms=0") as m:
        keys = {}
        for i in range(300):
            sid = m.create_session(f"user{i % 7}", expiration_time=1)
            keys[m.session_info(sid).key] = f"user{i % 7}"
        m.create_session("stays", expiration_time=3600)
    reported = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        reported += json.loads(out.strip().splitlines()[-1])
    assert sorted(k for k, _ in reported) == sorted(keys), "each expired session exactly once"
    assert all(keys[k] == user for k, user in reported)
    assert len({k for k, _ in reported}) == 300

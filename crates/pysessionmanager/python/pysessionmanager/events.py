"""Session lifecycle events, delivered to a callback on a thread of their own.

    from pysessionmanager.events import subscribe

    def audit(event):
        print(event.type, event.reason, event.user_id, event.key)

    subscription = subscribe(manager, audit)
    ...
    subscription.close()

Events: ``created``; ``ended`` with ``reason`` ``logout`` (by session id or
key), ``evicted`` (by ``max_sessions_per_user``) or ``ended_with_user``
(``end_user_sessions``); ``rotated`` with ``new_key``; ``expired``, from
the store's sweeps, purges and the calls that meet an expired session,
reported by the process whose delete removed the session. Each names the
session by its key, never its id. Callbacks run on the subscription's
thread, in order, never on the request's: a slow callback delays only later
events (past ``capacity`` waiting ones, new events are dropped and counted
in ``stats()["events_dropped"]``), and one that raises is logged on the
``pysessionmanager.events`` logger and the next event is delivered as usual.
Events are per process: a forked child subscribes anew.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional, Union

from pysessionmanager._native import SessionManager

__all__ = ["SessionEvent", "Subscription", "subscribe"]

log = logging.getLogger("pysessionmanager.events")


def _utc(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class SessionEvent:
    """What happened to one session."""

    type: str  # "created", "ended", "rotated" or "expired"
    reason: Optional[str]  # for "ended": "logout", "evicted" or "ended_with_user"
    key: str  # the session's key (hex), never its id
    new_key: Optional[str]  # for "rotated": the key it lives under now
    user_id: str
    created_at: datetime
    expires_at: datetime
    at: datetime

    @classmethod
    def _of(cls, raw: tuple[Any, ...]) -> SessionEvent:
        kind, reason, key, new_key, user_id, created, expires, at = raw
        return cls(kind, reason, key, new_key, user_id, _utc(created), _utc(expires), _utc(at))


class Subscription:
    """A callback receiving a manager's events; `close()` stops it."""

    def __init__(
        self, manager: SessionManager, callback: Callable[[SessionEvent], Any], capacity: int
    ) -> None:
        self._stream = manager.event_stream(capacity)
        self._callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="pysessionmanager-events", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._deliver(self._stream.next(0.1))
        # Closing: what was published before it is still delivered.
        while self._deliver(self._stream.next(0)):
            pass

    def _deliver(self, raw: Optional[tuple[Any, ...]]) -> bool:
        if raw is None:
            return False
        try:
            self._callback(SessionEvent._of(raw))
        except Exception:
            log.exception("a session event subscriber raised")
        return True

    def close(self) -> None:
        """Delivers the events published before this call, then stops."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe(
    manager: Union[SessionManager, Any],
    callback: Callable[[SessionEvent], Any],
    *,
    capacity: int = 10_000,
) -> Subscription:
    """Calls `callback` with each of `manager`'s session events (a
    `SessionManager` or an `AsyncSessionManager`) on a thread of its own."""
    native = getattr(manager, "manager", manager)
    if not isinstance(native, SessionManager):
        raise TypeError(f"expected a SessionManager, got {type(manager).__name__}")
    if not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be a positive int, got {capacity!r}")
    return Subscription(native, callback, capacity)

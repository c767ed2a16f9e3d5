"""Coroutine versions of `SessionManager` and `RateLimiter` for asyncio.

    >>> import asyncio
    >>> from pysessionmanager.aio import AsyncSessionManager
    >>> async def main():
    ...     async with AsyncSessionManager() as m:
    ...         sid = await m.create_session("alice", {"theme": "dark"})
    ...         return (await m.get_session(sid))["theme"]
    >>> asyncio.run(main())
    'dark'

The event loop awaits the engine itself: no call occupies a Python thread.
Memory-store calls finish at once; Redis and PostgreSQL calls run on the
store's own runtime and SQLite calls on a few threads of the engine, and the
loop is woken once for however many calls finished together. Works on
asyncio's loops and on uvloop, and in several threads with a loop each.

Cancelling an awaited call stops the wait, not the operation: it still runs
to its end as one atomic step, so a cancelled write has either fully
happened or not at all. Read the session again if it matters.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Iterable, Mapping, Optional

from pysessionmanager._native import (
    AsyncCore,
    LoopWaker,
    RateLimiter,
    RateLimitResult,
    SessionManager,
)
from pysessionmanager.session import Session

__all__ = ["AsyncRateLimiter", "AsyncSessionManager"]

_Future = asyncio.Future
_local = threading.local()

#: How long `aclose()` lets calls in flight finish before closing the store.
CLOSE_WAIT_SECONDS = 30.0


def _waker() -> LoopWaker:
    """The running loop's waker, made and registered on first use."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "pysessionmanager.aio needs a running asyncio event loop (asyncio's own or "
            "uvloop); under another one, call SessionManager from a worker thread"
        ) from None
    local = _local
    if getattr(local, "loop", None) is loop:
        return local.waker
    waker = LoopWaker(loop)
    loop.add_reader(waker.fileno(), waker.drain)
    local.loop, local.waker = loop, waker
    return waker


def _forget_wakers() -> None:
    # A forked child must not read its parent's wakeups.
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_forget_wakers)


class _Front:
    """Runs calls of a native object for the running event loop. Each
    coroutine method starts its call with ``self._core.call(op, *args)``,
    which returns the result if it is done already (the memory store), else
    a future of the running loop to await."""

    __slots__ = ("_core",)

    def __init__(self, native: SessionManager | RateLimiter) -> None:
        self._core = AsyncCore(native, _waker)

    async def _close(self, close: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_WAIT_SECONDS
        # Calls in flight (cancelled callers' too) end first, so none is cut short.
        while self._core.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.005)
        close()


class AsyncSessionManager(_Front):
    """`SessionManager` with every operation a coroutine.

    Takes the same arguments. `store=` may also be a `SessionManager`: the
    two then share one store object and its connections, e.g. in a Django
    project with both kinds of views (the options are that manager's).
    """

    __slots__ = ("_manager",)

    def __init__(
        self,
        expiration_time: Optional[float] = None,
        *,
        store: Optional[str | SessionManager] = None,
        absolute_timeout: Optional[float] = None,
        sliding: Optional[bool] = None,
        max_sessions_per_user: Optional[int] = None,
        on_limit: Optional[str] = None,
        max_data_bytes: Optional[int] = None,
        clock: Any = None,
        metrics: Optional[bool] = None,
    ) -> None:
        options = {
            "expiration_time": expiration_time,
            "absolute_timeout": absolute_timeout,
            "sliding": sliding,
            "max_sessions_per_user": max_sessions_per_user,
            "on_limit": on_limit,
            "max_data_bytes": max_data_bytes,
            "clock": clock,
            "metrics": metrics,
        }
        if isinstance(store, SessionManager):
            given = sorted(name for name, value in options.items() if value is not None)
            if given:
                raise TypeError(
                    f"{', '.join(given)} cannot be given with a SessionManager as store: "
                    "the manager's own settings apply"
                )
            self._manager = store
        else:
            self._manager = SessionManager(store=store, **options)
        super().__init__(self._manager)

    @property
    def manager(self) -> SessionManager:
        """The synchronous manager over the same store."""
        return self._manager

    @property
    def expiration_time(self) -> float:
        return self._manager.expiration_time

    @property
    def store(self) -> str:
        return self._manager.store

    def __repr__(self) -> str:
        return f"AsyncSessionManager(store={self.store!r}, expiration_time={self.expiration_time})"

    async def create_session(
        self,
        user_id: str,
        data: Optional[Mapping[str, Any]] = None,
        *,
        expiration_time: Optional[float] = None,
        absolute_timeout: Optional[float] = None,
        sliding: Optional[bool] = None,
    ) -> str:
        out = self._core.call(
            "create_session", user_id, data, expiration_time, absolute_timeout, sliding
        )
        return await out if out.__class__ is _Future else out

    async def get_session(self, session_id: str) -> Session:
        out = self._core.call("get_session", session_id)
        return await out if out.__class__ is _Future else out

    async def session_info(self, session_id: str) -> Session:
        out = self._core.call("session_info", session_id)
        return await out if out.__class__ is _Future else out

    async def is_session_active(self, session_id: object) -> bool:
        out = self._core.call("is_session_active", session_id)
        return await out if out.__class__ is _Future else out

    async def end_session(self, session_id: str) -> None:
        out = self._core.call("end_session", session_id)
        return await out if out.__class__ is _Future else out

    async def update_session(self, session_id: str, data: Mapping[str, Any]) -> None:
        out = self._core.call("update_session", session_id, data)
        return await out if out.__class__ is _Future else out

    async def set_session_data(
        self,
        session_id: str,
        data: Mapping[str, Any],
        *,
        expected_version: Optional[int] = None,
    ) -> int:
        out = self._core.call("set_session_data", session_id, data, expected_version)
        return await out if out.__class__ is _Future else out

    async def apply_changes(
        self,
        session_id: str,
        basis: Any,
        stored: Mapping[str, Any],
        current: Mapping[str, Any],
        keys: Any,
    ) -> Any:
        out = self._core.call("apply_changes", session_id, basis, stored, current, keys)
        return await out if out.__class__ is _Future else out

    async def increment(self, session_id: str, key: str, by: int = 1) -> int:
        out = self._core.call("increment", session_id, key, by)
        return await out if out.__class__ is _Future else out

    async def append(self, session_id: str, key: str, value: Any) -> int:
        out = self._core.call("append", session_id, key, value)
        return await out if out.__class__ is _Future else out

    async def rotate_session(self, session_id: str) -> str:
        out = self._core.call("rotate_session", session_id)
        return await out if out.__class__ is _Future else out

    async def touch(self, session_id: str) -> None:
        out = self._core.call("touch", session_id)
        return await out if out.__class__ is _Future else out

    async def list_sessions(self, user_id: str) -> list[Session]:
        out = self._core.call("list_sessions", user_id)
        return await out if out.__class__ is _Future else out

    async def end_session_by_key(self, user_id: str, key: str) -> bool:
        out = self._core.call("end_session_by_key", user_id, key)
        return await out if out.__class__ is _Future else out

    async def end_user_sessions(self, user_id: str, except_session: Optional[str] = None) -> int:
        out = self._core.call("end_user_sessions", user_id, except_session)
        return await out if out.__class__ is _Future else out

    async def purge_expired(self) -> int:
        out = self._core.call("purge_expired")
        return await out if out.__class__ is _Future else out

    async def count(self) -> int:
        out = self._core.call("count")
        return await out if out.__class__ is _Future else out

    async def export_sessions(
        self, cursor: Optional[str] = None, limit: Optional[int] = None
    ) -> tuple[list[dict[str, Any]], Optional[str]]:
        out = self._core.call("export_sessions", cursor, limit)
        return await out if out.__class__ is _Future else out

    async def import_sessions(self, sessions: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        out = self._core.call("import_sessions", sessions)
        return await out if out.__class__ is _Future else out

    def stats(self) -> Optional[dict[str, Any]]:
        """The counters of the store's `SessionManager.stats()` (shared with
        that manager when one was given)."""
        return self._manager.stats()

    async def aclose(self) -> None:
        """Lets calls in flight finish, then releases the store (of the
        shared `SessionManager` too, if one was given). Later calls raise
        `ManagerClosed`."""
        await self._close(self._manager.close)

    async def __aenter__(self) -> AsyncSessionManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncRateLimiter(_Front):
    """`RateLimiter` whose `hit` is a coroutine. Takes the same arguments;
    `store=` may also be an `AsyncSessionManager` (its store keeps the
    limits), and `rate` a `RateLimiter` to share (then nothing else)."""

    __slots__ = ("_limiter",)

    def __init__(
        self,
        rate: str | RateLimiter,
        *,
        burst: Optional[int] = None,
        store: Optional[str | SessionManager | AsyncSessionManager] = None,
        clock: Any = None,
    ) -> None:
        if isinstance(rate, RateLimiter):
            if (burst, store, clock) != (None, None, None):
                raise TypeError("burst, store and clock belong to the RateLimiter given")
            self._limiter = rate
        else:
            if isinstance(store, AsyncSessionManager):
                store = store.manager
            self._limiter = RateLimiter(rate, burst=burst, store=store, clock=clock)
        super().__init__(self._limiter)

    @property
    def limiter(self) -> RateLimiter:
        """The synchronous limiter over the same state."""
        return self._limiter

    @property
    def rate(self) -> str:
        return self._limiter.rate

    @property
    def burst(self) -> int:
        return self._limiter.burst

    @property
    def store(self) -> str:
        return self._limiter.store

    def __repr__(self) -> str:
        return repr(self._limiter).replace("RateLimiter", "AsyncRateLimiter", 1)

    async def hit(self, key: str) -> RateLimitResult:
        """Counts a hit on `key` if the limit allows it; says what it decided."""
        out = self._core.call("hit", key)
        return await out if out.__class__ is _Future else out

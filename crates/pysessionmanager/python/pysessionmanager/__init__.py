"""Fast, safe, persistent sessions for Python applications, on a Rust engine.

>>> from pysessionmanager import SessionManager
>>> m = SessionManager()
>>> sid = m.create_session(user_id="12345", data={"role": "admin"})
>>> m.get_session(sid)["role"]
'admin'
"""

import atexit

from pysessionmanager._native import (
    RateLimiter,
    RateLimitResult,
    SessionManager,
    _interpreter_exiting,
)
from pysessionmanager.errors import (
    InvalidSessionData,
    ManagerClosed,
    SessionConflict,
    SessionError,
    SessionLimitExceeded,
    SessionNotFound,
    StoreError,
    StoreFull,
    StoreUnavailable,
    UnsupportedDataType,
)
from pysessionmanager.session import Session

# Runs after the application's exit handlers (they were registered later):
# from then on, daemon threads back from a store call wait for the process
# to end instead of being unwound through native frames.
atexit.register(_interpreter_exiting)


def __getattr__(name: str) -> object:
    # The asyncio front is imported on first use: asyncio is a heavy import
    # for programs that never use it.
    if name in ("AsyncRateLimiter", "AsyncSessionManager"):
        from pysessionmanager import aio

        return getattr(aio, name)
    raise AttributeError(f"module 'pysessionmanager' has no attribute {name!r}")


__all__ = [
    "AsyncRateLimiter",
    "AsyncSessionManager",
    "InvalidSessionData",
    "ManagerClosed",
    "RateLimitResult",
    "RateLimiter",
    "Session",
    "SessionConflict",
    "SessionError",
    "SessionLimitExceeded",
    "SessionManager",
    "SessionNotFound",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "UnsupportedDataType",
]

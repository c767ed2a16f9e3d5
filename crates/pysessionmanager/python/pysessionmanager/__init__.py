"""Fast, safe, persistent sessions for Python applications, on a Rust engine.

>>> from pysessionmanager import SessionManager
>>> m = SessionManager()
>>> sid = m.create_session(user_id="12345", data={"role": "admin"})
>>> m.get_session(sid)["role"]
'admin'
"""

from pysessionmanager._native import RateLimiter, RateLimitResult, SessionManager
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

__all__ = [
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

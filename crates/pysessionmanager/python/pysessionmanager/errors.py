"""Exceptions raised by pysessionmanager. All derive from :class:`SessionError`.

Bad arguments (a non-str id, a negative timeout) raise the builtin ``TypeError``
or ``ValueError``; problems with session *data* raise the subclasses below,
which are also ``TypeError``/``ValueError`` so generic handlers still work.
Messages never contain a session id.
"""

from __future__ import annotations

from typing import Optional


class SessionError(Exception):
    """Base class of every error pysessionmanager raises about sessions or stores."""


class SessionNotFound(SessionError, KeyError):
    """The session id is unknown, was ended or rotated away, or the session expired.

    Also a ``KeyError``, like a missing key in a dict.
    """

    def __str__(self) -> str:
        # KeyError.__str__ would show the message in quotes.
        return str(self.args[0]) if self.args else "session not found"


class SessionConflict(SessionError):
    """A write found the session changed by another writer; nothing was written.

    Either a compare-and-set write (``expected_version=``) found another
    version, or a web request's save found that a concurrent request of the
    same visitor had changed one of the keys it changed (``key`` names it;
    ``None`` otherwise). The integrations answer such a request with 409:
    the client may retry it. ``expected_version`` and ``actual_version`` tell
    what the caller based its write on and what the store holds now.
    """

    expected_version: int
    actual_version: int
    key: Optional[str]


class SessionLimitExceeded(SessionError):
    """The user already has ``max_sessions_per_user`` sessions and ``on_limit="reject"``.

    ``limit`` is the configured maximum.
    """

    limit: int


class StoreFull(SessionLimitExceeded):
    """The store holds its configured maximum of sessions (``memory://?max_sessions=N``)."""


class InvalidSessionData(SessionError, ValueError):
    """Session data with a value JSON cannot hold: NaN or infinity, an integer
    beyond 64 bits, nesting too deep, or a payload over ``max_data_bytes``.

    ``path`` names where, like ``data['cart'][2]``.
    """

    path: str


class UnsupportedDataType(InvalidSessionData, TypeError):
    """Session data of a type JSON cannot hold (set, bytes, datetime, object,
    non-str key, tuple). Sessions are never pickled.

    ``path`` names where, like ``data['cart'][2]``.
    """


class ManagerClosed(SessionError):
    """The manager was closed; create a new one."""


class StoreError(SessionError):
    """The store failed (I/O, corruption, driver error)."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store could not be reached in time."""


__all__ = [
    "InvalidSessionData",
    "ManagerClosed",
    "SessionConflict",
    "SessionError",
    "SessionLimitExceeded",
    "SessionNotFound",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "UnsupportedDataType",
]

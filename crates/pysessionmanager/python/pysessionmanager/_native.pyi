"""Type stubs for the native module. Keep in step with crates/pysessionmanager/src."""

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Optional, Type, final

from typing_extensions import disjoint_base

from pysessionmanager.session import Session

__all__ = [
    "SessionManager",
    "SessionMeta",
    "ManualClock",
    "RateLimiter",
    "RateLimitResult",
    "TOKEN_BYTES",
    "_interpreter_exiting",
]

TOKEN_BYTES: int

def _interpreter_exiting() -> None:
    """Registered with ``atexit`` by the package: marks the interpreter's exit."""

@disjoint_base
class SessionManager:
    def __new__(
        cls,
        expiration_time: Optional[float] = None,
        *,
        store: Optional[str] = None,
        absolute_timeout: Optional[float] = None,
        sliding: Optional[bool] = None,
        max_sessions_per_user: Optional[int] = None,
        on_limit: Optional[str] = None,
        max_data_bytes: Optional[int] = None,
        clock: Optional[ManualClock] = None,
    ) -> SessionManager: ...
    def create_session(
        self,
        user_id: str,
        data: Optional[dict[str, Any]] = None,
        *,
        expiration_time: Optional[float] = None,
        absolute_timeout: Optional[float] = None,
        sliding: Optional[bool] = None,
    ) -> str: ...
    def get_session(self, session_id: str) -> Session: ...
    def session_info(self, session_id: str) -> Session: ...
    def is_session_active(self, session_id: object) -> bool: ...
    def end_session(self, session_id: str) -> None: ...
    def update_session(self, session_id: str, data: dict[str, Any]) -> None: ...
    def set_session_data(
        self, session_id: str, data: dict[str, Any], *, expected_version: Optional[int] = None
    ) -> int: ...
    def _apply_changes(
        self,
        session_id: str,
        basis: SessionMeta | int,
        data: dict[str, Any],
        keys: Iterable[str],
        base: dict[str, Any],
    ) -> Optional[tuple[SessionMeta, Optional[dict[str, Any]]]]:
        """For the web integrations: writes back what a request changed in a session it read.

        ``basis`` is what the request last read or wrote of the session: its
        ``SessionMeta`` (``session._meta``, or one this method returned),
        which lets the first write go without a read, or only its version.
        ``data`` is the whole data to store, ``keys`` the top-level keys
        the request set or removed relative to ``basis``, and ``base`` what
        those keys held then (a key it lacks was absent). If another writer
        changed the session meanwhile, only those keys are re-applied over
        what it stored (a key missing from ``data`` is removed), at most 16
        writes in all before ``SessionConflict``; if it changed one of the
        same keys, nothing is written and ``SessionConflict`` names the key.

        Returns ``None`` when the session is gone (ended, rotated away or
        expired, even meanwhile): it is never brought back. Otherwise the
        written session's ``SessionMeta`` and, when another writer's keys
        were merged in, the data as now stored (``None`` when ``data`` was
        stored as given).
        """
    def increment(self, session_id: str, key: str, by: Optional[int] = None) -> int: ...
    def append(self, session_id: str, key: str, value: Any) -> int: ...
    def rotate_session(self, session_id: str) -> str: ...
    def touch(self, session_id: str) -> None: ...
    def list_sessions(self, user_id: str) -> list[Session]: ...
    def end_user_sessions(self, user_id: str, except_session: Optional[str] = None) -> int: ...
    def purge_expired(self) -> int: ...
    def count(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> SessionManager: ...
    def __exit__(
        self,
        *_exc: Optional[Type[BaseException]] | Optional[BaseException] | Optional[TracebackType],
    ) -> bool: ...
    @property
    def expiration_time(self) -> float: ...
    @property
    def store(self) -> str: ...

@final
class SessionMeta:
    @property
    def session_id(self) -> Optional[str]: ...
    @property
    def key(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def created_at_ms(self) -> int: ...
    @property
    def last_active_ms(self) -> int: ...
    @property
    def expires_at_ms(self) -> int: ...
    @property
    def absolute_expires_at_ms(self) -> Optional[int]: ...
    @property
    def idle_timeout_ms(self) -> int: ...
    @property
    def sliding(self) -> bool: ...

@final
class ManualClock:
    def __new__(cls, start: float = 1_700_000_000.0) -> ManualClock: ...
    def now(self) -> float: ...
    def advance(self, seconds: float) -> None: ...
    def set(self, timestamp: float) -> None: ...

@final
class RateLimiter:
    def __new__(
        cls,
        rate: str,
        *,
        burst: Optional[int] = None,
        store: Optional[str | SessionManager] = None,
        clock: Optional[ManualClock] = None,
    ) -> RateLimiter: ...
    def hit(self, key: str) -> RateLimitResult: ...
    @property
    def rate(self) -> str: ...
    @property
    def burst(self) -> int: ...
    @property
    def store(self) -> str: ...

@final
class RateLimitResult:
    @property
    def allowed(self) -> bool: ...
    @property
    def remaining(self) -> int: ...
    @property
    def retry_after(self) -> float: ...
    def __bool__(self) -> bool: ...

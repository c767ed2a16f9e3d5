"""Type stubs for the native module. Keep in step with crates/pysessionmanager/src."""

from asyncio import AbstractEventLoop
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Optional, Type, final

from typing_extensions import disjoint_base

from pysessionmanager.session import Session

__all__ = [
    "AsyncCore",
    "EventStream",
    "LoopWaker",
    "SessionManager",
    "SessionMeta",
    "ManualClock",
    "RateLimiter",
    "RateLimitResult",
    "TOKEN_BYTES",
    "TOKEN_MAX_CHARS",
    "_interpreter_exiting",
    "save_step",
]

TOKEN_BYTES: int
TOKEN_MAX_CHARS: int

def _interpreter_exiting() -> None:
    """Registered with ``atexit`` by the package: marks the interpreter's exit."""

def save_step(
    stored: dict[str, Any],
    current: dict[str, Any],
    *,
    stored_session: bool,
    failed: bool = False,
) -> tuple[str, list[str]]:
    """For web integrations: what the end of a request needs.

    ``("nothing", [])`` when the request ``failed`` (a server error), changed
    nothing, or is a visitor with empty data; ``("create", [])`` for a
    visitor's first data; ``("end", [])`` when a stored session's data was
    cleared; ``("apply", keys)`` to write ``current`` with
    ``SessionManager.apply_changes``, ``keys`` being those the request set,
    changed or removed. ``stored`` is the data as stored when the request
    last read or wrote it (empty without a stored session), ``current``
    what it holds now.
    """

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
        metrics: Optional[bool] = None,
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
    def apply_changes(
        self,
        session_id: str,
        basis: Session | SessionMeta | int,
        stored: dict[str, Any],
        current: dict[str, Any],
        keys: Iterable[str],
    ) -> Optional[tuple[SessionMeta, Optional[dict[str, Any]]]]:
        """For web integrations: writes back what a request changed in a session it read.

        ``basis`` is what the request last read or wrote of the session: the
        ``Session`` it read, or the ``SessionMeta`` this method returned,
        which let the first write go without a read, or only its version.
        ``stored`` is the data then, ``current`` the whole data to store now,
        and ``keys`` the top-level keys the request set, changed or removed,
        as ``save_step`` names them. If another writer changed the session
        meanwhile, only those keys are re-applied over what it stored (a key
        missing from ``current`` is removed), at most 16 writes in all before
        ``SessionConflict``; if it changed one of the same keys, nothing is
        written and ``SessionConflict`` names the key.

        Returns ``None`` when the session is gone (ended, rotated away or
        expired, even meanwhile): it is never brought back. Otherwise the
        written session's ``SessionMeta`` and, when another writer's keys
        were merged in, the data as now stored (``None`` when ``current`` was
        stored as given).
        """
    def increment(self, session_id: str, key: str, by: Optional[int] = None) -> int: ...
    def append(self, session_id: str, key: str, value: Any) -> int: ...
    def rotate_session(self, session_id: str) -> str: ...
    def touch(self, session_id: str) -> None: ...
    def list_sessions(self, user_id: str) -> list[Session]: ...
    def end_session_by_key(self, user_id: str, key: str) -> bool: ...
    def end_any_session_by_key(self, key: str) -> bool:
        """Ends the session named ``key`` whoever owns it: for operators'
        tools. A page acting for one user must use ``end_session_by_key``."""
    def end_user_sessions(self, user_id: str, except_session: Optional[str] = None) -> int: ...
    def purge_expired(self) -> int: ...
    def count(self) -> int: ...
    def export_sessions(
        self, cursor: Optional[str] = None, limit: Optional[int] = None
    ) -> tuple[list[dict[str, Any]], Optional[str]]:
        """A page of about ``limit`` (default 1000, at most 10,000) live
        sessions from ``cursor`` on, and the next page's cursor (``None`` when
        done). Each session is a JSON-ready dict: ``key`` (hex; never the
        session id), ``user_id``, ``data``, ``version``, ``created_at_ms``,
        ``last_active_ms``, ``expires_at_ms``, ``idle_timeout_ms``, ``sliding``,
        ``absolute_expires_at_ms``. A session may appear in two pages."""
    def import_sessions(self, sessions: Iterable[dict[str, Any]]) -> dict[str, int]:
        """Stores sessions as ``export_sessions`` gave them, so their session
        ids work here: a free key is ``created``, an older copy ``updated``, a
        copy as new or newer left ``unchanged``, an ``expired`` one skipped.
        Counts by outcome."""
    def copy_sessions(
        self, target: SessionManager, cursor: Optional[str] = None, limit: Optional[int] = None
    ) -> tuple[int, dict[str, int], Optional[str]]:
        """Copies a page (as ``export_sessions``) into ``target``'s store
        without making Python objects: sessions read, counts by outcome (as
        ``import_sessions``), next cursor."""
    def event_stream(self, capacity: int) -> EventStream:
        """A native stream of this manager's session events (see ``pysessionmanager.events``)."""
    def stats(self) -> Optional[dict[str, Any]]:
        """What this manager counted since it opened (in a forked child: since
        its first call), or ``None`` when made with ``metrics=False``.

        Keys: ``uptime_seconds``; ``created``; ``ended`` (by reason:
        ``logout``, ``evicted``, ``ended_with_user``); ``rotated``;
        ``expired`` (removed by purges and this process' sweeper);
        ``retries`` (compare-and-set writes tried again); ``errors`` (by
        kind); ``latency``, per operation: ``count``, ``sum_seconds``,
        cumulative ``buckets`` as ``(upper bound in seconds, calls)`` ending
        with infinity, and the ``p50_seconds``/``p99_seconds`` bucket bounds.
        """
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
    @property
    def store_layout_version(self) -> int:
        """The version of the layout the store reads and writes (a SQL store's schema version)."""

@final
class EventStream:
    def next(
        self, timeout: float
    ) -> Optional[tuple[str, Optional[str], str, Optional[str], str, int, int, int]]:
        """The next event as ``(type, reason, key, new_key, user_id,
        created_at_ms, expires_at_ms, at_ms)``, waiting at most ``timeout``
        seconds; ``None`` if none came."""

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

@final
class LoopWaker:
    """Resolves the futures of one event loop's calls (``pysessionmanager.aio``)."""

    def __new__(cls, event_loop: AbstractEventLoop) -> LoopWaker: ...
    def fileno(self) -> int: ...
    def drain(self) -> None: ...
    def flush(self) -> None: ...
    @property
    def waiting(self) -> int: ...

@final
class AsyncCore:
    """Runs a manager's or a limiter's calls for an event loop (``pysessionmanager.aio``)."""

    def __new__(
        cls, source: SessionManager | RateLimiter, waker_of: Callable[[], LoopWaker]
    ) -> AsyncCore: ...
    def call(self, op: str, *args: Any) -> Any: ...
    @property
    def in_flight(self) -> int: ...

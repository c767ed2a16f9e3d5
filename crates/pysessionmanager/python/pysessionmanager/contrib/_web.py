"""What every web integration shares: loading a request's session from its
cookie, and writing back what the request changed."""

from __future__ import annotations

import hashlib
import http.cookies as http_cookies
import math
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any, Optional, Union

from pysessionmanager import SessionManager, SessionNotFound, UnsupportedDataType
from pysessionmanager._native import SessionMeta, save_step
from pysessionmanager.session import Session

if TYPE_CHECKING:
    from pysessionmanager.aio import AsyncSessionManager

#: Prefix of the user id given to visitors who have not logged in. Each gets
#: their own (``anonymous:<random>``) so per-user limits and listings never
#: lump visitors together.
ANONYMOUS_PREFIX = "anonymous:"

Codec = Callable[[Any], Any]


#: How deep `fresh` copies; deeper data is left for the store to refuse (it
#: allows 32 levels), rather than overflowing Python's stack.
_MAX_COPY_DEPTH = 64


def fresh(value: Any, depth: int = 0) -> Any:
    """A copy of a session value with new dicts and lists (tuples become
    lists, as ``json.dumps`` makes them), so that a request's in-place
    changes never reach the copy the save compares against."""
    if depth < _MAX_COPY_DEPTH:
        if isinstance(value, dict):
            return {key: fresh(item, depth + 1) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [fresh(item, depth + 1) for item in value]
    return value


def as_manager(manager: Union[SessionManager, str, None]) -> SessionManager:
    """A manager given as itself or as a store URL (memory by default)."""
    if manager is None or isinstance(manager, str):
        return SessionManager(store=manager)
    if not isinstance(manager, SessionManager):
        raise TypeError(
            f"manager must be a SessionManager or a store URL, not {type(manager).__name__}"
        )
    return manager


def visitor_key(sid: Optional[str], address: Optional[str]) -> str:
    """Who a rate limit counts by default: the session (by its key, the
    SHA-256 of its id: a store never holds a usable id), or the client's
    address for a visitor without one."""
    if sid:
        return "session:" + hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()
    return f"address:{address or 'unknown'}"


def first_cookie(headers: Iterable[str], name: str) -> Optional[str]:
    """The first value of the cookie ``name`` in ``Cookie`` headers (HTTP/2
    may send several), or ``None``. One rule for every integration: a
    browser sends the cookie with the most specific path first, and a value
    after it (one planted for a wider path or a parent domain) is ignored,
    as werkzeug and the axum layer do; Django's and Starlette's own parsers
    keep the last."""
    for header in headers:
        for pair in header.split(";"):
            key, sep, value = pair.partition("=")
            if sep and key.strip() == name:
                return http_cookies._unquote(value.strip())
    return None


#: The body of the 409 response that replaces a response whose session
#: changes clashed with a concurrent request's (``SessionConflict``): what it
#: said was not saved, so it must not reach the client as a success.
CONFLICT_BODY = (
    "409 Conflict: another request of this session changed the same data at the "
    "same time, so this request's changes were not saved. Retry the request."
)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, rounded up (never "come back now")."""
    return str(math.ceil(seconds))


def anonymous_user_id() -> str:
    """A fresh user id for a visitor who has not logged in."""
    return ANONYMOUS_PREFIX + secrets.token_urlsafe(12)


def is_anonymous(user_id: Optional[str]) -> bool:
    """Whether ``user_id`` is a visitor's rather than a logged-in user's."""
    return user_id is None or user_id.startswith(ANONYMOUS_PREFIX)


class RequestState:
    """One request's tie between a framework's session dict and the store.

    ``encode`` turns the framework's values into JSON-ready ones (Flask tags
    tuples, bytes, datetimes...) and ``decode`` turns them back; both must
    return new containers, so in-place changes are seen as changes.

    With ``activity=False`` reads do not count as activity (``session_info``
    instead of ``get_session``), so a session's expiry moves only when it is
    written: Django's contract, where only a save renews a session.

    Every method that calls the store has a coroutine twin (``aload``,
    ``astart``, ``aappend``...) for asyncio servers, which awaits
    ``amanager``, an ``AsyncSessionManager`` over the same store.
    """

    __slots__ = (
        "manager",
        "amanager",
        "sid",
        "user_id",
        "version",
        "meta",
        "stored",
        "merged",
        "created_lifetime",
        "encode",
        "decode",
    )

    def __init__(
        self,
        manager: SessionManager,
        token: Optional[str],
        *,
        encode: Codec = fresh,
        decode: Codec = fresh,
        activity: bool = True,
        amanager: Optional[AsyncSessionManager] = None,
    ) -> None:
        self.manager, self.amanager = manager, amanager
        self.encode, self.decode = encode, decode
        self.sid: Optional[str] = None
        self.user_id: Optional[str] = None
        self.version = 0
        #: The session as last read (a ``Session``) or written (its
        #: ``SessionMeta``), so a save needs no read first; ``None`` after a
        #: create (only ``version`` is known then).
        self.meta: Optional[Union[Session, SessionMeta]] = None
        #: The data as stored (encoded) when the request last read or wrote it.
        self.stored: dict[str, Any] = {}
        #: Whether the last save merged another request's keys into ``stored``.
        self.merged = False
        #: Seconds a session this request created lives, if it chose them.
        self.created_lifetime: Optional[float] = None
        if token:
            try:
                read = manager.get_session if activity else manager.session_info
                self._adopt(read(token))
            except SessionNotFound:
                pass  # forged, ended or expired: no session

    async def aload(self, token: Optional[str], *, activity: bool = True) -> None:
        """Reads the session ``token`` names, as the constructor does when
        given a token (construct with ``None``, then await this)."""
        if token:
            amanager = self._async()
            try:
                read = amanager.get_session if activity else amanager.session_info
                self._adopt(await read(token))
            except SessionNotFound:
                pass  # forged, ended or expired: no session

    def _async(self) -> AsyncSessionManager:
        if self.amanager is None:
            from pysessionmanager.aio import AsyncSessionManager

            self.amanager = AsyncSessionManager(store=self.manager)
        return self.amanager

    def _adopt(self, session: Session) -> None:
        self.sid, self.user_id = session.session_id, session.user_id
        self.version, self.meta, self.stored = session.version, session, dict(session)

    def data(self) -> dict[str, Any]:
        """The session's data, decoded, for the framework's session dict."""
        return {key: self.decode(value) for key, value in self.stored.items()}

    def shared_data(self) -> dict[str, Any]:
        """The stored data for the framework's session dict without copying
        the values (for JSON data, stored and decoded forms are alike). The
        framework must call :meth:`detach` before anything can change a value
        in place: at the session's first access."""
        return dict(self.stored)

    def detach(self) -> None:
        """Gives the stored data copies of its own, so that changes the
        request makes to values of :meth:`shared_data` show as changes."""
        self.stored = {key: fresh(value) for key, value in self.stored.items()}

    @property
    def anonymous(self) -> bool:
        """Whether no user has logged in to this session."""
        return is_anonymous(self.user_id)

    @property
    def logged_in_user(self) -> Optional[str]:
        """The logged-in user, or ``None`` for a visitor."""
        return None if self.anonymous else self.user_id

    def login(
        self,
        data: Mapping[str, Any],
        user_id: str,
        *,
        expiration_time: Optional[float] = None,
        absolute_timeout: Optional[float] = None,
    ) -> str:
        """Moves ``data`` to a fresh session owned by ``user_id`` and ends the
        old one, so an id planted before login is worthless after it.
        Returns the new id. Per-user limits apply here, as to any create.
        When the session was another user's, the new one starts empty (see
        :meth:`switches_user`: the caller clears its copy of the data)."""
        data = self._login_data(data, user_id)
        return self.start(
            data, user_id, expiration_time=expiration_time, absolute_timeout=absolute_timeout
        )

    async def alogin(
        self,
        data: Mapping[str, Any],
        user_id: str,
        *,
        expiration_time: Optional[float] = None,
        absolute_timeout: Optional[float] = None,
    ) -> str:
        """:meth:`login`, awaiting the store."""
        data = self._login_data(data, user_id)
        return await self.astart(
            data, user_id, expiration_time=expiration_time, absolute_timeout=absolute_timeout
        )

    def _login_data(self, data: Mapping[str, Any], user_id: str) -> Mapping[str, Any]:
        """What a login as ``user_id`` carries over, after checking the id."""
        if not isinstance(user_id, str):
            # As create_session says it: a wrong type is a TypeError.
            raise TypeError(f"user_id must be a str, got {type(user_id).__name__}")
        if not user_id:
            raise ValueError("login needs a non-empty user id, got ''")
        if is_anonymous(user_id):
            raise ValueError(
                f"user ids starting with {ANONYMOUS_PREFIX!r} are reserved for visitors"
            )
        return {} if self.switches_user(user_id) else data

    def switches_user(self, user_id: str) -> bool:
        """Whether a login as ``user_id`` takes the session from one user to
        another. Then nothing of the first user's data passes to the second
        (Django's ``login`` flushes in this case too); a visitor's data, or
        the same user's logging in again, is kept."""
        return not self.anonymous and self.user_id != user_id

    def start(
        self,
        data: Mapping[str, Any],
        user_id: Optional[str] = None,
        *,
        expiration_time: Optional[float] = None,
        sliding: Optional[bool] = None,
        absolute_timeout: Optional[float] = None,
    ) -> str:
        """Stores ``data`` (even empty, unlike :meth:`save`) in a fresh session
        owned by ``user_id``, or by a new visitor id when it is ``None``, and
        ends the old session if any. Returns the new id. For frameworks whose
        store contract creates records explicitly (Django's ``create``) or
        fixes a session's lifetime at creation (``sliding=False``)."""
        old = self.sid
        sid = self._create(
            anonymous_user_id() if user_id is None else user_id,
            self.encoded(data),
            expiration_time=expiration_time,
            sliding=sliding,
            absolute_timeout=absolute_timeout,
        )
        if old is not None:
            self.manager.end_session(old)
        return sid

    async def astart(
        self,
        data: Mapping[str, Any],
        user_id: Optional[str] = None,
        *,
        expiration_time: Optional[float] = None,
        sliding: Optional[bool] = None,
        absolute_timeout: Optional[float] = None,
    ) -> str:
        """:meth:`start`, awaiting the store."""
        old = self.sid
        sid = await self._acreate(
            anonymous_user_id() if user_id is None else user_id,
            self.encoded(data),
            expiration_time=expiration_time,
            sliding=sliding,
            absolute_timeout=absolute_timeout,
        )
        if old is not None:
            await self._async().end_session(old)
        return sid

    def save(
        self,
        data: Mapping[str, Any],
        *,
        expiration_time: Optional[float] = None,
        failed: bool = False,
    ) -> Optional[str]:
        """Writes what the request changed in ``data`` (nothing if the request
        ``failed``: a server error). Returns the session id the cookie should
        carry, or ``None`` when the visitor has no session (any cookie should
        then be deleted)."""
        current = self.encoded(data)
        write = self.store_write(current, expiration_time=expiration_time, failed=failed)
        return self.sid if write is None else write()

    async def asave(
        self,
        data: Mapping[str, Any],
        *,
        expiration_time: Optional[float] = None,
        failed: bool = False,
    ) -> Optional[str]:
        """:meth:`save`, awaiting the store."""
        current = self.encoded(data)
        write = self.astore_write(current, expiration_time=expiration_time, failed=failed)
        return self.sid if write is None else await write()

    def encoded(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` as it would be stored: a new dict of encoded values."""
        return {key: self.encode(value) for key, value in data.items()}

    def store_write(
        self,
        current: dict[str, Any],
        *,
        expiration_time: Optional[float] = None,
        failed: bool = False,
    ) -> Optional[Callable[[], Optional[str]]]:
        """The store call that saving ``current`` (made by :meth:`encoded`,
        and kept as the stored data: pass a new dict) needs, or ``None`` when
        it needs none, by the engine's rule (``save_step``: nothing for a
        failed request or one that changed nothing, a create for a visitor's
        first data, an end for cleared data, else the changed keys). The
        caller runs it, on a worker thread if it likes, and gets the id the
        cookie should carry; without a call, that id is :attr:`sid` as it is."""
        step, keys = self._save_step(current, failed)
        if step == "nothing":
            return None
        if step == "create":
            return partial(
                self._create, anonymous_user_id(), current, expiration_time=expiration_time
            )
        if step == "end":
            return self.end  # cleared (logged out, reset): no session, no cookie
        return partial(self._write_changes, current, keys)

    def astore_write(
        self,
        current: dict[str, Any],
        *,
        expiration_time: Optional[float] = None,
        failed: bool = False,
    ) -> Optional[Callable[[], Awaitable[Optional[str]]]]:
        """:meth:`store_write`, as a coroutine function to await."""
        step, keys = self._save_step(current, failed)
        if step == "nothing":
            return None
        if step == "create":
            return partial(
                self._acreate, anonymous_user_id(), current, expiration_time=expiration_time
            )
        if step == "end":
            return self.aend
        return partial(self._awrite_changes, current, keys)

    def _save_step(self, current: dict[str, Any], failed: bool) -> tuple[str, list[str]]:
        self.merged = False
        return save_step(self.stored, current, stored_session=self.sid is not None, failed=failed)

    def append(self, data: MutableMapping[str, Any], key: str, item: Any) -> int:
        """Appends ``item`` to the list at ``key`` of ``data`` (the request's
        session dict; a missing key starts a list). With a stored session
        the store appends it at once, atomically, so appends of concurrent
        requests all land and never conflict; this request's save then has
        nothing left to write for ``key``. Without one, the item waits in
        ``data`` for the save that creates the session. Returns the list's
        length: in the store, or in ``data`` before the session is stored."""
        appended = self._appended(data, key, item)
        if self.sid is None:
            data[key] = appended
            return len(appended)
        encoded = self.encode(item)
        length = self.manager.append(self.sid, key, encoded)
        self._append_stored(data, key, appended, encoded)
        return length

    async def aappend(self, data: MutableMapping[str, Any], key: str, item: Any) -> int:
        """:meth:`append`, awaiting the store."""
        appended = self._appended(data, key, item)
        if self.sid is None:
            data[key] = appended
            return len(appended)
        encoded = self.encode(item)
        length = await self._async().append(self.sid, key, encoded)
        self._append_stored(data, key, appended, encoded)
        return length

    @staticmethod
    def _appended(data: Mapping[str, Any], key: str, item: Any) -> list[Any]:
        if key in data and not isinstance(data[key], list):
            raise UnsupportedDataType(f"data[{key!r}]: cannot append to {type(data[key]).__name__}")
        return [*data.get(key, ()), item]

    def _append_stored(
        self, data: MutableMapping[str, Any], key: str, appended: list[Any], encoded: Any
    ) -> None:
        data[key] = appended
        # What the store holds as far as this request knows: its save sees no change.
        prior = self.stored.get(key)
        known = [*prior, encoded] if isinstance(prior, list) else [encoded]
        self.stored = {**self.stored, key: known}

    def end(self) -> None:
        """Ends the stored session; the request carries on without one."""
        if self.sid is not None:
            self.manager.end_session(self.sid)
        self._forget()

    async def aend(self) -> None:
        """:meth:`end`, awaiting the store."""
        if self.sid is not None:
            await self._async().end_session(self.sid)
        self._forget()

    def _create(self, owner: str, encoded: dict[str, Any], **options: Any) -> str:
        """Stores ``encoded`` in a new session of ``owner`` and ties the request
        to it; a new record is version 1, so nothing needs reading back."""
        sid = self.manager.create_session(owner, encoded, **options)
        return self._created(sid, owner, encoded, options)

    async def _acreate(self, owner: str, encoded: dict[str, Any], **options: Any) -> str:
        sid = await self._async().create_session(owner, encoded, **options)
        return self._created(sid, owner, encoded, options)

    def _created(
        self, sid: str, owner: str, encoded: dict[str, Any], options: Mapping[str, Any]
    ) -> str:
        self.sid, self.user_id, self.version, self.stored = sid, owner, 1, encoded
        self.meta = None
        limits = [options.get("expiration_time"), options.get("absolute_timeout")]
        chosen = [float(limit) for limit in limits if limit is not None]
        self.created_lifetime = min(chosen) if chosen else None
        return sid

    def lifetime(self) -> Optional[float]:
        """Seconds the stored session lives after its last activity, as far
        as this request knows (a cookie should live as long): from what it
        last read or wrote, or the lifetime a create here chose; ``None``
        when not known (a create on the manager's default)."""
        meta = self.meta._meta if isinstance(self.meta, Session) else self.meta
        if meta is not None:
            return max(0.0, (meta.expires_at_ms - meta.last_active_ms) / 1000)
        return self.created_lifetime

    def _write_changes(self, current: dict[str, Any], keys: list[str]) -> Optional[str]:
        """Compare-and-set the new data; if another request wrote meanwhile,
        the engine re-applies only this request's changed ``keys`` on top of
        what it wrote (up to 16 times, then ``SessionConflict``), or raises
        ``SessionConflict`` at once if it changed one of the same keys."""
        assert self.sid is not None
        basis = self.version if self.meta is None else self.meta
        written = self.manager.apply_changes(self.sid, basis, self.stored, current, keys)
        return self._applied(written, current)

    async def _awrite_changes(self, current: dict[str, Any], keys: list[str]) -> Optional[str]:
        assert self.sid is not None
        basis = self.version if self.meta is None else self.meta
        written = await self._async().apply_changes(self.sid, basis, self.stored, current, keys)
        return self._applied(written, current)

    def _applied(self, written: Any, current: dict[str, Any]) -> Optional[str]:
        """Takes in what ``apply_changes`` wrote."""
        if written is None:
            # Ended meanwhile (say, "log out everywhere"): never bring it back.
            self._forget()
            return None
        self.meta, merged = written
        self.version = self.meta.version
        self.merged = merged is not None
        self.stored = current if merged is None else merged
        return self.sid

    def _forget(self) -> None:
        """Drops the tie to the stored session, which is gone."""
        self.sid, self.user_id, self.version, self.stored = None, None, 0, {}
        self.meta = None

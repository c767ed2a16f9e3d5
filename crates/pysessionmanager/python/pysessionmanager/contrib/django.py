"""Django session engine: ``request.session`` kept in a SessionManager.

    # settings.py
    SESSION_ENGINE = "pysessionmanager.contrib.django"
    PYSESSIONMANAGER_STORE = "sqlite:////var/lib/myapp/sessions.db"  # memory:// by default
    PYSESSIONMANAGER_OPTIONS = {"max_sessions_per_user": 10}  # more SessionManager options
    MIDDLEWARE = ["pysessionmanager.contrib.django.SessionMiddleware", ...]  # Secure cookies

The cookie carries the manager's token (256 random bits); the data stays in
the store, as JSON, never pickled or signed. The default ``memory://`` store
lives in one process: with several worker processes, or to keep sessions
across restarts, use ``sqlite:///...``. Cookie flags are Django's settings:
``SESSION_COOKIE_HTTPONLY`` (True) and ``SESSION_COOKIE_SAMESITE`` ("Lax")
are safe by default; ``SESSION_COOKIE_SECURE`` is off by default in Django,
so this module's :class:`SessionMiddleware` (Django's, in its place) makes the
cookie Secure unless the setting is given explicitly. With Django's own
middleware, set ``SESSION_COOKIE_SECURE = True`` for HTTPS
(``manage.py check --deploy`` warns about it). How Django's contract maps
onto the manager:

- Records are only ever named by the manager's tokens; Django's own key
  generator never names one. ``save(must_create=True)`` raises ``CreateError``
  when the key names a live session, and otherwise stores the data under a
  fresh token rather than adopt a key chosen outside the store.
- ``cycle_key()`` (called by ``django.contrib.auth.login``) ends the old record
  at once; the data moves to a new record when the session is saved, owned
  by the user id that ``login`` stores under ``_auth_user_id`` (so
  ``get_manager().list_sessions(str(user.pk))`` and ``end_user_sessions``
  work). Reading ``session_key`` before that creates the record at once.
- A record's owner and lifetime are fixed when it is created: a save that finds
  ``_auth_user_id`` or ``_session_expiry`` changed moves the data to a new
  record under a new id (the cookie follows), as a login does.
- Expiry follows ``set_expiry``: a record lives ``get_expiry_age()`` seconds
  (``SESSION_COOKIE_AGE`` by default) after its last save, or until the fixed
  date that ``set_expiry(datetime | timedelta)`` set; reading a session does
  not extend it, as with Django's own engines. The store itself never returns
  an expired record and removes them on its own; ``manage.py clearsessions``
  removes them at once.
- A session whose data is emptied is ended rather than kept empty; a session
  already past its expiry when saved is not stored.
- Values are what Django's ``JSONSerializer`` stores (tuples become lists,
  as it does); anything JSON cannot hold raises ``UnsupportedDataType`` or
  ``InvalidSessionData`` naming the key. ``SESSION_SERIALIZER`` is not used.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any, NamedTuple, Optional

from django.conf import settings
from django.contrib.auth import SESSION_KEY as USER_ID_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers

from pysessionmanager import (
    InvalidSessionData,
    SessionConflict,
    SessionManager,
    SessionNotFound,
    UnsupportedDataType,
)
from pysessionmanager._native import TOKEN_MAX_CHARS
from pysessionmanager.aio import AsyncSessionManager
from pysessionmanager.contrib._web import (
    CONFLICT_BODY,
    RequestState,
    first_cookie,
    is_anonymous,
)

__all__ = ["SessionMiddleware", "SessionStore", "close_managers", "get_manager"]

#: Where ``SessionBase.set_expiry`` keeps a session's own expiry.
EXPIRY_KEY = "_session_expiry"

#: Options that the engine sets itself, so PYSESSIONMANAGER_OPTIONS may not.
_RESERVED_OPTIONS = {
    "store": "PYSESSIONMANAGER_STORE",
    "expiration_time": "SESSION_COOKIE_AGE or session.set_expiry()",
    "sliding": "session.set_expiry()",
}

# Tokens are URL-safe base64 without padding (46 characters at most, routed
# ones on Redis); a longer key can never name one.
_TOKEN_LENGTH = TOKEN_MAX_CHARS
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

_managers: dict[tuple[str, tuple[tuple[str, Any], ...]], SessionManager] = {}
_managers_pid = os.getpid()
_managers_lock = threading.Lock()


def get_manager() -> SessionManager:
    """The manager the settings name, opened once per process and store.

    Use it for what ``request.session`` cannot do, like "log out everywhere":
    ``get_manager().end_user_sessions(str(user.pk))``.
    """
    global _managers_pid
    url = getattr(settings, "PYSESSIONMANAGER_STORE", None) or "memory://"
    options = getattr(settings, "PYSESSIONMANAGER_OPTIONS", None) or {}
    if not isinstance(url, str):
        raise ImproperlyConfigured(
            f"PYSESSIONMANAGER_STORE must be a store URL string, not {type(url).__name__}"
        )
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(
            f"PYSESSIONMANAGER_OPTIONS must be a dict, not {type(options).__name__}"
        )
    for name, instead in _RESERVED_OPTIONS.items():
        if name in options:
            raise ImproperlyConfigured(
                f"PYSESSIONMANAGER_OPTIONS cannot set {name!r}: the engine takes it from {instead}"
            )
    key = (url, tuple(sorted((name, _identity(value)) for name, value in options.items())))
    manager = _managers.get(key)
    if manager is not None and _managers_pid == os.getpid():
        return manager  # the common case, without the lock
    with _managers_lock:
        if _managers_pid != os.getpid():
            # A forked worker must not share its parent's store handles
            # (SQLite connections do not survive fork): open its own.
            _managers.clear()
            _async_managers.clear()
            _managers_pid = os.getpid()
        manager = _managers.get(key)
        if manager is None:
            try:
                manager = SessionManager(settings.SESSION_COOKIE_AGE, store=url, **options)
            except (TypeError, ValueError) as error:
                raise ImproperlyConfigured(
                    f"PYSESSIONMANAGER_STORE / PYSESSIONMANAGER_OPTIONS: {error}"
                ) from error
            _managers[key] = manager
        return manager


_async_managers: dict[int, AsyncSessionManager] = {}


def get_async_manager() -> AsyncSessionManager:
    """An :class:`~pysessionmanager.aio.AsyncSessionManager` over
    :func:`get_manager`'s store, for ``async def`` views and the session's
    ``a*`` methods."""
    manager = get_manager()
    amanager = _async_managers.get(id(manager))
    if amanager is None or amanager.manager is not manager:
        amanager = _async_managers[id(manager)] = AsyncSessionManager(store=manager)
    return amanager


def _identity(value: Any) -> Any:
    """What tells option values apart: plain values by value, objects (a
    clock) by identity, since their state changes."""
    return value if isinstance(value, (str, int, float, bool, type(None))) else ("id", id(value))


def close_managers() -> None:
    """Closes the managers :func:`get_manager` opened; the next request opens
    new ones. For tests (a fresh memory store) and orderly shutdown."""
    with _managers_lock:
        managers = list(_managers.values())
        _managers.clear()
        _async_managers.clear()
    for manager in managers:
        manager.close()


class _Lifetime(NamedTuple):
    seconds: float
    sliding: bool


class SessionStore(SessionBase):
    """Django's ``SessionBase`` over a :class:`~pysessionmanager.SessionManager`.

    ``session_key`` is the manager's token. See the module's documentation
    for how Django's contract maps onto the manager.
    """

    # Declared for type checkers; SessionBase defines them (a validating property).
    _session_key: Optional[str]
    _session_cache: dict[str, Any]

    def __init__(self, session_key: Optional[str] = None) -> None:
        self._manager = get_manager()
        #: For the ``a*`` methods, on first use.
        self._amanager: Optional[AsyncSessionManager] = None
        #: The tie to the stored record, made when the session is loaded or created.
        self._state: Optional[RequestState] = None
        #: Set by cycle_key(): the data waits for its new record.
        self._moved = False
        super().__init__(session_key)

    @property
    def session_key(self) -> Optional[str]:
        """The session id, ``None`` while nothing is stored. After
        ``cycle_key()`` reading it stores the data under its new id at once."""
        if self._moved and self._session_key is None and getattr(self, "_session_cache", None):
            self.create()
        return self._session_key

    def _validate_session_key(self, key: Any) -> bool:
        # Django's rule (8 characters or more), plus: a string no longer than
        # a token, of the token alphabet, so cookies that can never name a
        # session are dropped before any store lookup.
        return (
            isinstance(key, str)
            and 8 <= len(key) <= _TOKEN_LENGTH
            and _TOKEN_ALPHABET.issuperset(key)
        )

    def _async(self) -> AsyncSessionManager:
        if self._amanager is None:
            self._amanager = get_async_manager()
        return self._amanager

    def _new_state(self, token: Optional[str]) -> RequestState:
        # What it is given to store comes from _as_json, already new JSON
        # containers: no second copy.
        return RequestState(
            self._manager, token, encode=_unchanged, activity=False, amanager=self._amanager
        )

    async def _anew_state(self, token: Optional[str]) -> RequestState:
        self._async()
        state = self._new_state(None)
        await state.aload(token, activity=False)
        return state

    def load(self) -> dict[str, Any]:
        """The stored data; ``{}`` (and no key) for an unknown, ended or expired
        session. Reading does not extend the session."""
        state = self._state = self._new_state(self._session_key)
        if _outlived(state):
            state.end()
        return self._loaded(state)

    async def aload(self) -> dict[str, Any]:
        state = self._state = await self._anew_state(self._session_key)
        if _outlived(state):
            await state.aend()
        return self._loaded(state)

    def _loaded(self, state: RequestState) -> dict[str, Any]:
        if state.sid is None:
            self._session_key = None
        return state.data()

    def exists(self, session_key: Optional[str]) -> bool:
        """Whether ``session_key`` names a live session (without extending it)."""
        return isinstance(session_key, str) and self._manager.is_session_active(session_key)

    async def aexists(self, session_key: Optional[str]) -> bool:
        return isinstance(session_key, str) and await self._async().is_session_active(session_key)

    def create(self) -> None:
        """Stores the current data (none yet, for a new session) in a new
        record under a fresh token, owned by the logged-in user if any."""
        planned = self._plan_create()
        if planned is not None:
            state, data, lifetime = planned
            self._session_key = state.start(
                data, _owner(data), expiration_time=lifetime.seconds, sliding=lifetime.sliding
            )

    async def acreate(self) -> None:
        self._async()
        planned = self._plan_create()
        if planned is not None:
            state, data, lifetime = planned
            self._session_key = await state.astart(
                data, _owner(data), expiration_time=lifetime.seconds, sliding=lifetime.sliding
            )

    def _plan_create(self) -> Optional[tuple[RequestState, dict[str, Any], _Lifetime]]:
        data = _as_json(self._get_session(no_load=True))
        lifetime = self._lifetime(data)
        self._moved = False
        self._session_key = None
        self.modified = True
        if lifetime is None:
            return None  # already past its expiry: nothing worth storing
        state = self._state = self._new_state(None)
        return state, data, lifetime

    def save(self, must_create: bool = False) -> None:
        """Writes the changes. Without a key, creates the record. With
        ``must_create``, raises ``CreateError`` if the key names a live session.
        Otherwise raises ``UpdateError`` if the session was ended meanwhile
        (logged out elsewhere, say) rather than bring it back."""
        if self._session_key is None:
            return self.create()
        if must_create:
            if self.exists(self._session_key):
                raise CreateError
            return self.create()  # under a fresh token, not the key given
        data = _as_json(self._session)  # loads it if needed
        state = self._state
        if state is None and self._session_key is not None:
            # The data was replaced without being read (clear()): read the record now.
            state = self._state = self._new_state(self._session_key)
        if state is None or state.sid is None:
            raise UpdateError
        self._write(state, data)

    async def asave(self, must_create: bool = False) -> None:
        if self._session_key is None:
            return await self.acreate()
        if must_create:
            if await self.aexists(self._session_key):
                raise CreateError
            return await self.acreate()
        data = _as_json(await self._aget_session())
        state = self._state
        if state is None and self._session_key is not None:
            state = self._state = await self._anew_state(self._session_key)
        if state is None or state.sid is None:
            raise UpdateError
        await self._awrite(state, data)

    def _write(self, state: RequestState, data: dict[str, Any]) -> None:
        lifetime = self._lifetime(data)
        if lifetime is None:
            state.end()  # saved past its expiry: gone, as the store would have it
            return
        if _moves(state, data):
            # A record's owner and lifetime are set at creation: move the data
            # to a new record (a new id, like a login), unless it ended meanwhile.
            if not self._manager.is_session_active(state.sid):
                state.end()
                raise UpdateError
            self._session_key = state.start(
                data, _owner(data), expiration_time=lifetime.seconds, sliding=lifetime.sliding
            )
            return
        version = state.version
        sid = self._saved(state, data, state.save(data))
        if sid is not None and state.version == version and lifetime.sliding:
            # Nothing changed, but Django's save renews the expiry
            # (SESSION_SAVE_EVERY_REQUEST relies on it).
            try:
                self._manager.touch(sid)
            except SessionNotFound:
                state.end()
                raise UpdateError from None

    async def _awrite(self, state: RequestState, data: dict[str, Any]) -> None:
        amanager = self._async()
        lifetime = self._lifetime(data)
        if lifetime is None:
            await state.aend()
            return
        if _moves(state, data):
            if not await amanager.is_session_active(state.sid):
                await state.aend()
                raise UpdateError
            self._session_key = await state.astart(
                data, _owner(data), expiration_time=lifetime.seconds, sliding=lifetime.sliding
            )
            return
        version = state.version
        sid = self._saved(state, data, await state.asave(data))
        if sid is not None and state.version == version and lifetime.sliding:
            try:
                await amanager.touch(sid)
            except SessionNotFound:
                await state.aend()
                raise UpdateError from None

    def _saved(
        self, state: RequestState, data: dict[str, Any], sid: Optional[str]
    ) -> Optional[str]:
        """Takes in a save's outcome: the id it kept, ``None`` when the data
        was emptied (the record ended), ``UpdateError`` when the record was
        ended by another request meanwhile."""
        if sid is None and data:
            raise UpdateError
        if state.merged:
            # Another request wrote meanwhile and its keys were merged in:
            # show them, or a second save of this request would remove them.
            self._session_cache = state.data()
        return sid

    def _lifetime(self, data: Mapping[str, Any]) -> Optional[_Lifetime]:
        """How long a record of ``data`` lives (``None``: already expired):
        ``set_expiry(datetime | timedelta)`` is a fixed date; otherwise
        ``get_expiry_age()`` seconds after each save."""
        expiry = data.get(EXPIRY_KEY)
        if isinstance(expiry, str):
            try:
                lifetime = _Lifetime(_seconds_until(expiry), sliding=False)
            except ValueError as error:
                raise ValueError(
                    f"session[{EXPIRY_KEY!r}] is not an ISO date (use session.set_expiry()): "
                    f"{expiry!r}"
                ) from error
        elif expiry is None or (isinstance(expiry, (int, float)) and not isinstance(expiry, bool)):
            lifetime = _Lifetime(self.get_expiry_age(expiry=expiry), sliding=True)
        else:
            raise TypeError(
                f"session[{EXPIRY_KEY!r}] must be seconds, an ISO date or None "
                f"(use session.set_expiry()), not {type(expiry).__name__}"
            )
        return lifetime if lifetime.seconds > 0 else None

    def cycle_key(self) -> None:
        """Ends the stored session now; its data moves to a new id when the
        session is saved (see the module's documentation)."""
        data = self._session
        self.delete()
        self._await_new_key(data)

    async def acycle_key(self) -> None:
        data = await self._aget_session()
        await self.adelete()
        self._await_new_key(data)

    def _await_new_key(self, data: dict[str, Any]) -> None:
        self._session_key = None
        self._session_cache = data
        self.modified = True
        self._moved = True

    def flush(self) -> None:
        self._moved = False
        super().flush()

    async def aflush(self) -> None:
        self._moved = False
        await super().aflush()

    def delete(self, session_key: Optional[str] = None) -> None:
        """Ends the session ``session_key`` names (this one by default)."""
        if session_key is None:
            session_key = self._session_key
            if session_key is None:
                return
        state = self._state
        if state is not None and state.sid == session_key:
            state.end()  # also drops the tie, so save() cannot bring it back
        else:
            self._manager.end_session(session_key)

    async def adelete(self, session_key: Optional[str] = None) -> None:
        if session_key is None:
            session_key = self._session_key
            if session_key is None:
                return
        state = self._state
        if state is not None and state.sid == session_key:
            await state.aend()
        else:
            await self._async().end_session(session_key)

    def _get_or_create_session_key(self) -> Optional[str]:
        # Django's default would invent a key that names no record.
        if self._session_key is None:
            self.create()
        return self._session_key

    async def _aget_or_create_session_key(self) -> Optional[str]:
        if self._session_key is None:
            await self.acreate()
        return self._session_key

    @classmethod
    def clear_expired(cls) -> None:
        """Removes expired sessions now (``manage.py clearsessions``). Stores
        also remove them on their own, and never return one meanwhile."""
        get_manager().purge_expired()

    @classmethod
    async def aclear_expired(cls) -> None:
        await get_async_manager().purge_expired()


def _outlived(state: RequestState) -> bool:
    """Whether a loaded record is past the expiry its data names. The store
    expires the record on its own at that date; this guards records whose
    lifetime was set some other way."""
    return state.sid is not None and _past(state.stored.get(EXPIRY_KEY))


def _moves(state: RequestState, data: Mapping[str, Any]) -> bool:
    """Whether saving ``data`` needs a new record: its owner or its fixed
    expiry changed, and a record's owner and lifetime are set at creation."""
    owner = _owner(data)
    moved_owner = state.user_id != owner if owner is not None else not state.anonymous
    return bool(data) and (moved_owner or state.stored.get(EXPIRY_KEY) != data.get(EXPIRY_KEY))


def _unchanged(value: Any) -> Any:
    return value


def _as_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as Django's JSONSerializer would store it (tuples become lists,
    non-str keys strings), or a clear error naming the key it cannot store."""
    try:
        stored = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise _refusal(data, error) from error
    if not isinstance(stored, dict):  # pragma: no cover - SessionBase keeps a dict
        raise TypeError("the session must be a dict")
    return stored


def _refusal(data: Mapping[str, Any], error: Exception) -> InvalidSessionData:
    key: Any = "?"
    for name, value in data.items():
        try:
            json.dumps({name: value}, allow_nan=False)
        except (TypeError, ValueError):
            key = name
            break
    path = f"session[{key!r}]"
    cls = UnsupportedDataType if isinstance(error, TypeError) else InvalidSessionData
    refusal = cls(
        f"{path} cannot be stored: {error}. Sessions hold JSON values "
        "(str, int, float, bool, None, list, dict), as with Django's JSONSerializer"
    )
    refusal.path = path
    return refusal


def _owner(data: Mapping[str, Any]) -> Optional[str]:
    """The user id django.contrib.auth recorded, if it can own a record
    (``None``: the session stays a visitor's)."""
    user_id = data.get(USER_ID_KEY)
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)):
        return None
    user_id = str(user_id)
    return None if not user_id or is_anonymous(user_id) else user_id


def _seconds_until(iso: str) -> float:
    """Seconds from now until the date ``set_expiry`` stored. A naive date is
    local time, which is what Django's ``timezone.now()`` gives without USE_TZ."""
    deadline = datetime.fromisoformat(iso)
    if deadline.tzinfo is None:
        return (deadline - datetime.now()).total_seconds()
    return (deadline - datetime.now(dt_timezone.utc)).total_seconds()


def _past(expiry: Any) -> bool:
    """Whether a fixed ``set_expiry`` date has passed."""
    if not isinstance(expiry, str):
        return False
    try:
        return _seconds_until(expiry) <= 0
    except ValueError:
        return False  # not a date Django wrote; the record's own expiry applies


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's ``SessionMiddleware`` with the session cookie ``Secure`` unless
    ``SESSION_COOKIE_SECURE`` is set explicitly (Django's default is off).
    Use it in ``MIDDLEWARE`` in place of Django's; everything else is Django's."""

    def process_request(self, request: HttpRequest) -> None:
        # The first session cookie of the header, as every integration reads
        # it (Django's own parser keeps the last).
        header = request.META.get("HTTP_COOKIE", "")
        request.session = self.SessionStore(first_cookie([header], settings.SESSION_COOKIE_NAME))

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        try:
            response = super().process_response(request, response)
        except SessionConflict:
            # A concurrent request changed what this one changed: its
            # changes were not kept, so its response must not claim them.
            conflict = HttpResponse(CONFLICT_BODY, status=409, content_type="text/plain")
            patch_vary_headers(conflict, ("Cookie",))
            return conflict
        cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
        if cookie is not None and not settings.is_overridden("SESSION_COOKIE_SECURE"):
            cookie["secure"] = True
        return response

"""Server-side ``request.session`` for Starlette and FastAPI: the cookie
carries only a random session id, the data stays in a
:class:`~pysessionmanager.SessionManager`.

    from pysessionmanager.contrib.starlette import SessionMiddleware, alogin, alogout

    app = Starlette(routes=..., middleware=[Middleware(SessionMiddleware)])  # memory
    # or, FastAPI too: app.add_middleware(SessionMiddleware, manager="sqlite:///sessions.db")

    async def sign_in(request):
        ...  # check the password, then:
        await alogin(request, user_id)  # a fresh session id, against fixation

It takes the keywords of Starlette's ``SessionMiddleware`` (``secret_key``,
``session_cookie``, ``max_age``, ``path``, ``same_site``, ``https_only``,
``domain``, ``partitioned``) and means the same by them, with these
differences:

- ``https_only`` defaults to ``None``: the cookie is ``Secure`` whenever
  the request came over HTTPS (the ASGI scope's scheme), so browsers on
  HTTPS get a ``Secure`` cookie while plain-HTTP development servers and
  test clients (``http://testserver``) keep working, as with Starlette's
  middleware. Behind a proxy that ends TLS, let the server trust its
  forwarded headers (uvicorn's ``--proxy-headers``) or pass
  ``https_only=True``, which makes every cookie ``Secure``;
  ``https_only=False`` makes none ``Secure``. ``same_site="none"`` and
  ``partitioned=True`` cookies are always ``Secure``, as browsers demand.
- ``secret_key`` is optional and unused. A session id is 256 random bits,
  which nobody can guess or forge, so there is nothing to sign. It is
  accepted so that switching is a one-line import change. Changing it does
  not log anybody out (with Starlette's it does); end sessions through the
  manager instead (``end_user_sessions``).
- ``max_age`` is also the stored session's idle timeout. As with Starlette,
  the cookie is set (and its ``Max-Age`` renewed) only when the session
  changed, so a session lasts ``max_age`` after its last change.
  ``max_age=None`` makes a browser-session cookie and leaves the stored
  session on the manager's own ``expiration_time``. ``max_age <= 0`` turns
  sessions off, as it does in Starlette: nothing is stored, and the
  cookie sent (``Max-Age=0``) is deleted by the browser at once.
- Session data must be JSON: tuples become lists (as Starlette's
  ``json.dumps`` does), anything else that is not JSON is refused with an
  error naming its place instead of being coerced. Changes inside nested
  values (``request.session["cart"].append(x)``) are saved too. A request
  that never reads its session copies and saves nothing.
- Only what a request changed is written, so two requests of one visitor
  at once keep both their changes; a visitor whose session stays empty gets
  no record and no cookie; a forged, ended or expired cookie is no
  session (and is deleted); nothing is saved when the response is a 5xx.
- A WebSocket connection reads the session; like Starlette's, it cannot
  change it (no response to carry a cookie).

The middleware awaits the store through
:class:`~pysessionmanager.aio.AsyncSessionManager`: the event loop is never
held while a store waits, and no call occupies a worker thread (memory-store
calls finish at once; the others run in the engine and wake the loop when
done), on asyncio's own loop and on uvloop, as uvicorn and hypercorn run
them. Under trio it calls the store from anyio's worker threads instead.
A store call is made only when the request needs it: none without a
cookie, one to load a session, one more to save it only if it changed.
Use :func:`alogin` and :func:`alogout` in ``async def`` endpoints;
:func:`login` and :func:`logout` are for plain ``def`` endpoints, which
Starlette runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, ItemsView, Iterator, ValuesView
from functools import partial
from typing import Any, Callable, Literal, Optional, Union

import anyio.to_thread
from starlette.datastructures import MutableHeaders, Secret
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pysessionmanager import RateLimiter, RateLimitResult, SessionConflict, SessionManager
from pysessionmanager.aio import AsyncRateLimiter, AsyncSessionManager
from pysessionmanager.contrib._web import (
    CONFLICT_BODY,
    RequestState,
    as_manager,
    first_cookie,
    retry_after_header,
    visitor_key,
)

__all__ = [
    "Session",
    "SessionMiddleware",
    "alogin",
    "alogout",
    "login",
    "logout",
    "rate_limit",
]

#: A cookie name must be an RFC 6265 token; anything else could split the header.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Characters that would end or break a cookie attribute.
_UNSAFE_ATTRIBUTE = re.compile(r"[;\s\x00-\x1f\x7f]")
_EXPIRED = "expires=Thu, 01 Jan 1970 00:00:00 GMT; "


class Session(dict[str, Any]):
    """``request.session``: a dict that notes when it is read (``accessed``,
    for ``Vary: Cookie``) and when it is changed (``modified``), like
    Starlette's own. Besides ``request.session`` itself (Starlette 1.0+),
    every method that hands out a value counts as a read, so code that
    reaches ``scope["session"]`` directly is seen too (but not ``dict``'s
    own methods called on it, like ``dict.get(session, key)``)."""

    accessed = False
    modified = False
    _state: Optional[RequestState] = None
    _middleware: Optional[SessionMiddleware] = None

    @property
    def sid(self) -> Optional[str]:
        """The stored session's id, or ``None`` while nothing is stored."""
        return self._state.sid if self._state is not None else None

    @property
    def user_id(self) -> Optional[str]:
        """The logged-in user, or ``None`` for a visitor."""
        return self._state.logged_in_user if self._state is not None else None

    def __reduce__(self) -> Any:
        # Copies and pickles as a plain dict: the request's tie to the store stays behind.
        return (dict, (dict(self),))

    async def append(self, key: str, item: Any) -> int:
        """Appends ``item`` to the list at ``key`` (a missing key starts one),
        atomically in the store: concurrent requests' appends all land, where
        ``session[key].append(item)`` by two requests at once makes the later
        one's save a 409 conflict. Returns the list's length in the store."""
        assert self._state is not None and self._middleware is not None, (
            "SessionMiddleware must be installed to append to the session"
        )
        self.mark_accessed()
        return await self._state.aappend(self, key, item)

    def mark_accessed(self) -> None:
        # The values are shared with the copy the save compares against
        # until the first access: a request that never reads its session
        # copies nothing.
        if not self.accessed and self._state is not None:
            self._state.detach()
        self.accessed = True

    def mark_modified(self) -> None:
        self.mark_accessed()
        self.modified = True

    def __getitem__(self, key: str) -> Any:
        self.mark_accessed()
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[str]:
        # Also makes dict(session) and {**session} read through __getitem__.
        self.mark_accessed()
        return super().__iter__()

    def get(self, key: str, default: Any = None) -> Any:
        self.mark_accessed()
        return super().get(key, default)

    def items(self) -> ItemsView[str, Any]:
        self.mark_accessed()
        return super().items()

    def values(self) -> ValuesView[Any]:
        self.mark_accessed()
        return super().values()

    def copy(self) -> dict[str, Any]:
        self.mark_accessed()
        return dict(self)

    def __setitem__(self, key: str, value: Any) -> None:
        self.mark_modified()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.mark_modified()
        super().__delitem__(key)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.mark_modified()
        return super().__ior__(other)

    def clear(self) -> None:
        self.mark_modified()
        super().clear()

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.mark_modified()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self.mark_modified()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            self.mark_accessed()  # hands out the stored value
        else:
            self.mark_modified()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.mark_modified()
        super().update(*args, **kwargs)


class SessionMiddleware:
    """Keeps ``request.session`` in a :class:`~pysessionmanager.SessionManager`.

    ``manager`` is a manager or a store URL (``"sqlite:///sessions.db"``);
    by default an in-memory store, which lives as long as the process. The
    other keywords are Starlette's (see the module's documentation for
    where they differ).
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: Union[str, Secret, None] = None,
        session_cookie: str = "session",
        max_age: Optional[int] = 14 * 24 * 60 * 60,  # 14 days, in seconds
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: Optional[bool] = None,
        domain: Optional[str] = None,
        partitioned: bool = False,
        *,
        manager: Union[SessionManager, str, None] = None,
    ) -> None:
        self.app = app
        self.session_cookie = _cookie_name(session_cookie)
        self.max_age = _max_age(max_age)
        self.path = _attribute("path", path)
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        #: The cookie's attributes after its lifetime, over plain HTTP and over HTTPS.
        self.flags_by_scheme = _security_flags(same_site, https_only, domain, partitioned)
        #: Sessions are off when the cookie expires at once (Starlette's
        #: meaning of max_age <= 0).
        self.enabled = self.max_age is None or self.max_age > 0
        self._lifetime = None if self.max_age is None else float(self.max_age)
        self.manager = as_manager(manager)  # last: bad options open no store
        self.amanager = AsyncSessionManager(store=self.manager)
        #: The same store through worker threads, for apps on trio (a
        #: memory store needs none: its calls finish at once on any loop).
        self.threaded = ThreadedStore(self.manager)
        self._any_loop = _finishes_at_once(self.manager.store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookies = (v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie")
        token = first_cookie(cookies, self.session_cookie)
        state = await self._load(token)
        session = Session(state.shared_data())
        session._state, session._middleware = state, self
        scope["session"] = session

        replaced = False
        secure = scope.get("scheme") in ("https", "wss")

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the body of a response a 409 replaced
            if message["type"] == "http.response.start":
                try:
                    await self._commit(session, state, token, message, secure)
                except SessionConflict:
                    # The changes were not kept: the app's response, which
                    # may say they were, never starts.
                    replaced = True
                    await _send_conflict(send)
                    return
            await send(message)

        await self.app(scope, receive, send_wrapper)

    async def _load(self, token: Optional[str]) -> RequestState:
        amanager = self.amanager if self._any_loop or _on_asyncio() else self.threaded
        state = RequestState(self.manager, None, amanager=amanager)  # type: ignore[arg-type]
        if token and self.enabled:
            await state.aload(token)
        return state

    async def _commit(
        self,
        session: Session,
        state: RequestState,
        token: Optional[str],
        message: Message,
        secure: bool,
    ) -> None:
        """Saves the session and sets, renews or deletes the cookie."""
        message.setdefault("headers", [])  # ASGI allows leaving it out
        headers = MutableHeaders(scope=message)
        cookie: Optional[str] = None
        if not self.enabled:
            if session.modified and session:
                cookie = self._cookie("", f"Max-Age={self.max_age}; ", secure)
        else:
            version = state.version
            # A request that never read its session (every read and change is
            # noted) writes nothing, since nothing in it, nested values
            # included, can have changed; nor does a failed one.
            write = None
            if session.accessed:
                current = state.encoded(session)  # here on the event loop
                failed = message["status"] >= 500
                write = state.astore_write(current, expiration_time=self._lifetime, failed=failed)
            saved = state.sid if write is None else await write()
            if saved is None:
                if token is not None:  # cleared, ended, forged or expired
                    cookie = self._cookie("", _EXPIRED, secure)
            elif saved != token or state.version != version:
                cookie = self._cookie(saved, self._max_age_attribute(state), secure)
        if session.accessed or cookie is not None:
            headers.add_vary_header("Cookie")
        if cookie is not None:
            headers.append("Set-Cookie", cookie)

    def _max_age_attribute(self, state: RequestState) -> str:
        """The cookie lives as long as its session: ``max_age`` unless the
        session chose its own lifetime at login. With ``max_age=None`` the
        cookie is a browser-session cookie, unless a login chose one."""
        if self.max_age is None and state.created_lifetime is None:
            return ""
        lifetime = state.lifetime()
        seconds = self.max_age if lifetime is None else math.ceil(lifetime)
        return f"Max-Age={seconds}; "

    def _cookie(self, value: str, lifetime: str, secure: bool) -> str:
        # Starlette's exact layout, which its tests (and users' tests) parse.
        flags = self.flags_by_scheme[secure]
        return f"{self.session_cookie}={value}; path={self.path}; {lifetime}{flags}"


async def _send_conflict(send: Send) -> None:
    """Sends the 409 that says a request's session changes were not saved."""
    body = CONFLICT_BODY.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"vary", b"Cookie"),
    ]
    await send({"type": "http.response.start", "status": 409, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _cookie_name(name: str) -> str:
    if not isinstance(name, str) or not _COOKIE_NAME.fullmatch(name):
        raise ValueError(f"session_cookie must be a cookie name (RFC 6265 token), got {name!r}")
    return name


def _max_age(max_age: Optional[int]) -> Optional[int]:
    if max_age is not None and (not isinstance(max_age, int) or isinstance(max_age, bool)):
        raise TypeError(f"max_age must be whole seconds (int) or None, got {max_age!r}")
    return max_age


def _attribute(name: str, value: str) -> str:
    if not isinstance(value, str) or not value or _UNSAFE_ATTRIBUTE.search(value):
        raise ValueError(f"{name} must be a non-empty string without ';' or spaces, got {value!r}")
    return value


def _security_flags(
    same_site: str, https_only: Optional[bool], domain: Optional[str], partitioned: bool
) -> tuple[str, str]:
    """The cookie's attributes after its lifetime, in Starlette's order: for
    a request over plain HTTP, and for one over HTTPS."""
    if https_only is not None and not isinstance(https_only, bool):
        raise TypeError(f"https_only must be a bool or None, got {https_only!r}")
    if not isinstance(partitioned, bool):
        raise TypeError(f"partitioned must be a bool, got {partitioned!r}")
    same_site = same_site.lower() if isinstance(same_site, str) else same_site
    if same_site not in ("lax", "strict", "none"):
        raise ValueError(f"same_site must be 'lax', 'strict' or 'none', got {same_site!r}")
    # Browsers drop such cookies without a word; better to say so at start-up.
    if same_site == "none" and https_only is False:
        raise ValueError("same_site='none' needs a Secure cookie: leave https_only unset or True")
    if partitioned and https_only is False:
        raise ValueError("partitioned=True needs a Secure cookie: leave https_only unset or True")
    flags = "httponly; samesite=" + same_site
    secure = flags + "; secure"
    always = https_only is True or same_site == "none" or partitioned
    plain = secure if always else flags
    if https_only is False:
        secure = flags
    tail = ""
    if domain is not None:
        tail += "; domain=" + _attribute("domain", domain)
    if partitioned:
        tail += "; partitioned"
    return plain + tail, secure + tail


def _bound(request: HTTPConnection) -> tuple[Session, RequestState, SessionMiddleware]:
    session = request.scope.get("session")
    if not isinstance(session, Session) or session._state is None or session._middleware is None:
        raise RuntimeError(
            "request.session does not come from "
            "pysessionmanager.contrib.starlette.SessionMiddleware: add it to the app"
        )
    session.mark_accessed()
    return session, session._state, session._middleware


def _check_enabled(middleware: SessionMiddleware) -> None:
    if not middleware.enabled:
        raise RuntimeError("sessions are off (max_age <= 0): nobody can log in")


def login(
    request: HTTPConnection,
    user_id: str,
    *,
    expiration_time: Optional[float] = None,
    absolute_timeout: Optional[float] = None,
) -> str:
    """Logs ``user_id`` in: the session's data moves to a fresh session id
    owned by the user (the old id stops working, against session fixation)
    and the response sets the new cookie. Returns the new id. A session that
    was another user's starts empty instead.

    ``expiration_time`` (idle, seconds; ``max_age`` by default) and
    ``absolute_timeout`` give this session a lifetime of its own ("remember
    me" for 30 days, or 15 minutes on a shared computer); its cookie lives
    as long.

    It calls the store on the spot: use it in ``def`` endpoints, and
    ``await alogin(...)`` in ``async def`` ones."""
    session, state, middleware = _bound(request)
    data, options = _login(session, state, middleware, user_id, expiration_time, absolute_timeout)
    return state.login(data, user_id, **options)


async def alogin(
    request: HTTPConnection,
    user_id: str,
    *,
    expiration_time: Optional[float] = None,
    absolute_timeout: Optional[float] = None,
) -> str:
    """:func:`login` for ``async def`` endpoints: the store is awaited."""
    session, state, middleware = _bound(request)
    data, options = _login(session, state, middleware, user_id, expiration_time, absolute_timeout)
    return await state.alogin(data, user_id, **options)


def _login(
    session: Session,
    state: RequestState,
    middleware: SessionMiddleware,
    user_id: str,
    expiration_time: Optional[float],
    absolute_timeout: Optional[float],
) -> tuple[dict[str, Any], dict[str, Optional[float]]]:
    """What a login stores: the data it carries over and the new session's lifetime."""
    _check_enabled(middleware)
    if state.switches_user(user_id):
        session.clear()
    if expiration_time is None:
        expiration_time = middleware._lifetime
    options = {"expiration_time": expiration_time, "absolute_timeout": absolute_timeout}
    return dict(session), options


def logout(request: HTTPConnection) -> None:
    """Ends the session and empties ``request.session``; the cookie is
    deleted. For ``def`` endpoints; ``await alogout(...)`` in ``async def``."""
    session, state, _ = _bound(request)
    state.end()
    session.clear()


async def alogout(request: HTTPConnection) -> None:
    """:func:`logout` for ``async def`` endpoints."""
    session, state, _ = _bound(request)
    await state.aend()
    session.clear()


class ThreadedStore:
    """A manager's or limiter's calls as coroutines that run them on anyio's
    worker threads: what the middleware uses under trio, where the engine
    cannot wake the event loop itself."""

    def __init__(self, native: Union[SessionManager, RateLimiter]) -> None:
        self._native = native

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._native, name)

        async def threaded(*args: Any, **kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(partial(method, *args, **kwargs))

        return threaded


def _finishes_at_once(store: str) -> bool:
    """Whether calls to ``store`` finish at once, needing no loop's wakeup."""
    return store.startswith("memory:")


def _on_asyncio() -> bool:
    """Whether an asyncio loop (asyncio's own, uvloop) runs this request."""
    return asyncio._get_running_loop() is not None


def _visitor_key(request: HTTPConnection) -> str:
    session = request.scope.get("session")
    sid = session.sid if isinstance(session, Session) else None
    return visitor_key(sid, request.client.host if request.client else None)


def rate_limit(
    limiter: Union[RateLimiter, AsyncRateLimiter],
    key: Optional[Callable[[HTTPConnection], str]] = None,
) -> Callable[[HTTPConnection], Awaitable[RateLimitResult]]:
    """A FastAPI dependency (``Depends(rate_limit(limiter))``), or a coroutine
    a Starlette endpoint awaits with its request, that counts a hit and raises
    ``HTTPException(429)`` with a ``Retry-After`` header (whole seconds) past
    the limit. ``key`` names who is limited; by default the session, or the
    client address for visitors without one. The store is awaited, off the
    event loop."""
    alimiter = limiter if isinstance(limiter, AsyncRateLimiter) else AsyncRateLimiter(limiter)
    threaded = ThreadedStore(alimiter.limiter)
    any_loop = _finishes_at_once(alimiter.store)

    async def check(request: HTTPConnection) -> RateLimitResult:
        who = key(request) if key is not None else _visitor_key(request)
        awaited = any_loop or _on_asyncio()
        result = await (alimiter.hit(who) if awaited else threaded.hit(who))
        if not result.allowed:
            raise HTTPException(
                429,
                detail="rate limit exceeded",
                headers={"Retry-After": retry_after_header(result.retry_after)},
            )
        return result

    return check

"""Server-side ``flask.session``: the cookie carries only the session id.

    from flask import Flask, session
    from pysessionmanager.contrib.flask import init_app, login, logout

    app = Flask(__name__)
    init_app(app, "sqlite:///sessions.db")   # or a SessionManager; memory by default

Flask's settings apply as they do to its own sessions: ``SESSION_COOKIE_NAME``,
``_DOMAIN``, ``_PATH``, ``_HTTPONLY``, ``_SECURE``, ``_SAMESITE``,
``_PARTITIONED``, ``PERMANENT_SESSION_LIFETIME`` (also the stored session's
idle timeout) and ``SESSION_REFRESH_EACH_REQUEST``. Two defaults are safer
than Flask's: cookies are ``Secure`` and ``SameSite=Lax`` unless the
interface is built with ``secure=False`` or ``samesite=None`` (or the config
names another ``SameSite``). Values Flask's own cookie session can hold
(tuples, bytes, datetimes, UUIDs, ``Markup``) are kept as Flask tags them.
No secret key is needed: session ids are random, not signed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, TypeVar, Union

from flask import Flask, Request, Response, current_app, jsonify, make_response, request
from flask import session as current_session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface as FlaskSessionInterface
from flask.sessions import SessionMixin
from werkzeug.datastructures import CallbackDict

from pysessionmanager import RateLimiter, SessionConflict, SessionManager
from pysessionmanager.contrib._web import (
    CONFLICT_BODY,
    RequestState,
    as_manager,
    retry_after_header,
    visitor_key,
)

__all__ = ["ServerSession", "SessionInterface", "init_app", "login", "logout", "rate_limit"]

View = TypeVar("View", bound=Callable[..., Any])


def _hands_out_values(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of a dict, noting that it handed a value of the session out."""

    @functools.wraps(method)
    def handing_out(self: ServerSession, *args: Any, **kwargs: Any) -> Any:
        self.values_read = True
        return method(self, *args, **kwargs)

    return handing_out


class ServerSession(CallbackDict, SessionMixin):  # type: ignore[type-arg]
    """``flask.session`` for one request: a dict whose changes are written
    to the store when the response goes out."""

    modified = False
    #: Whether a value was handed out by the dict itself. Flask notes access
    #: through ``flask.session`` in ``accessed``; this also covers a session
    #: reached another way (``session_transaction``, code that opens one),
    #: whose values may then have been changed in place.
    values_read = False

    __getitem__ = _hands_out_values(CallbackDict.__getitem__)
    # Also makes dict(session) and {**session} read through __getitem__.
    __iter__ = _hands_out_values(CallbackDict.__iter__)
    get = _hands_out_values(CallbackDict.get)
    items = _hands_out_values(CallbackDict.items)
    values = _hands_out_values(CallbackDict.values)
    copy = _hands_out_values(CallbackDict.copy)
    setdefault = _hands_out_values(CallbackDict.setdefault)
    # pop and popitem need no wrapper: taking a value out calls on_update (modified).

    def __init__(self, state: RequestState, token: Optional[str]) -> None:
        def on_update(session: ServerSession) -> None:
            session.modified = True

        super().__init__(state.data(), on_update)
        self.state = state
        #: The session id the request's cookie carried, valid or not.
        self.token = token
        #: Whether the request came without a live session.
        self.new = state.sid is None

    def __reduce__(self) -> Any:
        # Copies and pickles as a plain dict: the request's tie to the store stays behind.
        return (dict, (dict(self),))

    @property
    def sid(self) -> Optional[str]:
        """The session id, or ``None`` while nothing is stored."""
        return self.state.sid

    @property
    def user_id(self) -> Optional[str]:
        """The logged-in user, or ``None`` for a visitor."""
        return self.state.logged_in_user

    def append(self, key: str, item: Any) -> int:
        """Appends ``item`` to the list at ``key`` (a missing key starts one),
        atomically in the store: concurrent requests' appends all land, where
        ``session[key].append(item)`` by two requests at once makes the later
        one's save a 409 conflict. Returns the list's length in the store."""
        return self.state.append(self, key, item)


class SessionInterface(FlaskSessionInterface):
    """Keeps ``flask.session`` in a :class:`~pysessionmanager.SessionManager`.

    ``manager`` is a manager or a store URL (``"sqlite:///sessions.db"``);
    by default an in-memory store, which lives as long as the process.
    ``SessionInterface(app)`` also works, and installs it on the app.
    """

    def __init__(
        self,
        manager: Union[SessionManager, str, Flask, None] = None,
        app: Optional[Flask] = None,
        *,
        secure: bool = True,
        samesite: Optional[str] = "Lax",
    ) -> None:
        if isinstance(manager, Flask):  # SessionInterface(app), like Flask extensions
            manager, app = None, manager
        self.manager = as_manager(manager)
        _check_samesite(samesite, secure)
        self.secure = secure
        self.samesite = samesite
        self.tags = TaggedJSONSerializer()
        if app is not None:
            app.session_interface = self

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or self.secure

    def get_cookie_samesite(self, app: Flask) -> Optional[str]:
        return app.config["SESSION_COOKIE_SAMESITE"] or self.samesite  # type: ignore[no-any-return]

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        token = request.cookies.get(self.get_cookie_name(app))
        state = RequestState(self.manager, token, encode=self.tags.tag, decode=self._untag)
        return ServerSession(state, token)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            return  # a null session, or another interface's
        state = session.state
        touched = session.accessed or session.modified or session.values_read
        if not touched:
            # A session nobody reached through flask.session (Flask 3.1.3+
            # notes each access; older ones always say accessed), changed, or
            # read a value of cannot have changed, not even inside a nested
            # value: no need to encode and compare all of it.
            sid = state.sid
        else:
            try:
                failed = response.status_code >= 500  # a failed request writes nothing
                sid = state.save(session, expiration_time=_lifetime(app), failed=failed)
            except SessionConflict:
                # Flask has no way to swap the response here: turn it into
                # the 409 that says the changes were not kept.
                _make_conflict(response)
                return
        if session.accessed:
            response.vary.add("Cookie")
        name, cookie = self.get_cookie_name(app), self._cookie_options(app)
        if sid is None:
            if session.token is not None:  # ended, cleared, forged or expired
                response.delete_cookie(name, **cookie)
                response.vary.add("Cookie")
        elif sid != session.token or self.should_set_cookie(app, session):
            expires = self.get_expiration_time(app, session)
            response.set_cookie(name, sid, expires=expires, **cookie)
            response.vary.add("Cookie")

    def get_expiration_time(self, app: Flask, session: SessionMixin) -> Optional[datetime]:
        """A permanent session's cookie lives as long as the stored session
        does after its last activity (``PERMANENT_SESSION_LIFETIME``, or
        what a login chose); others are browser-session cookies."""
        lifetime = session.state.lifetime() if isinstance(session, ServerSession) else None
        if not session.permanent or lifetime is None:
            return super().get_expiration_time(app, session)
        return datetime.now(timezone.utc) + timedelta(seconds=lifetime)

    def _cookie_options(self, app: Flask) -> dict[str, Any]:
        secure, samesite = self.get_cookie_secure(app), self.get_cookie_samesite(app)
        _check_samesite(samesite, secure)  # the app's config may name another SameSite
        return {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": secure,
            "partitioned": self.get_cookie_partitioned(app),
            "samesite": samesite,
            "httponly": self.get_cookie_httponly(app),
        }

    def _untag(self, value: Any) -> Any:
        """Turns Flask's tags back into values, innermost first (as ``json.loads``
        with ``object_hook`` would)."""
        if isinstance(value, dict):
            return self.tags.untag({k: self._untag(v) for k, v in value.items()})
        if isinstance(value, list):
            return [self._untag(v) for v in value]
        return value


def _make_conflict(response: Response) -> None:
    """Turns ``response`` into a 409 that says the session changes were lost."""
    response.status_code = 409
    response.set_data(CONFLICT_BODY)
    response.mimetype = "text/plain"
    response.headers.pop("Location", None)
    response.headers.remove("Set-Cookie")
    response.vary.add("Cookie")


def _check_samesite(samesite: Optional[str], secure: bool) -> None:
    """Browsers drop a ``SameSite=None`` cookie that is not ``Secure``: the
    session would silently never come back, so such settings are refused."""
    if isinstance(samesite, str) and samesite.lower() == "none" and not secure:
        raise ValueError(
            "SameSite=None needs a Secure cookie (browsers refuse it otherwise): "
            "keep secure=True, or choose SameSite Lax or Strict"
        )


def init_app(
    app: Flask,
    manager: Union[SessionManager, str, None] = None,
    **options: Any,
) -> SessionInterface:
    """Makes ``flask.session`` server-side for ``app``; returns the interface.
    ``options`` are :class:`SessionInterface`'s (``secure=``, ``samesite=``)."""
    return SessionInterface(manager, app, **options)


def _session() -> ServerSession:
    session = current_session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(session, ServerSession):
        raise RuntimeError(
            "flask.session is not a pysessionmanager session: call init_app(app) first"
        )
    return session


def _lifetime(app: Flask) -> float:
    return app.permanent_session_lifetime.total_seconds()


def login(
    user_id: str,
    *,
    expiration_time: Optional[float] = None,
    absolute_timeout: Optional[float] = None,
) -> str:
    """Logs ``user_id`` in: the session's data moves to a fresh session id
    owned by the user (the old id stops working, against session fixation)
    and the response sets the new cookie. Returns the new id. A session that
    was another user's starts empty instead.

    ``expiration_time`` (idle, seconds; ``PERMANENT_SESSION_LIFETIME`` by
    default) and ``absolute_timeout`` give this session a lifetime of its
    own ("remember me" for 30 days, or 15 minutes on a shared computer):
    either makes the session permanent, with a cookie that lives as long."""
    session = _session()
    if session.state.switches_user(user_id):
        session.clear()
    if expiration_time is not None or absolute_timeout is not None:
        session.permanent = True
    if expiration_time is None:
        expiration_time = _lifetime(current_app)
    return session.state.login(
        session, user_id, expiration_time=expiration_time, absolute_timeout=absolute_timeout
    )


def logout() -> None:
    """Ends the session and empties ``flask.session``; the cookie is deleted."""
    session = _session()
    session.state.end()
    session.clear()


def _visitor_key() -> str:
    """The session id, or the client's address for a visitor without one."""
    session = current_session._get_current_object()  # type: ignore[attr-defined]
    sid = session.sid if isinstance(session, ServerSession) else None
    return visitor_key(sid, request.remote_addr)


def rate_limit(
    limiter: RateLimiter, key: Optional[Callable[[], str]] = None
) -> Callable[[View], View]:
    """Limits a view with ``limiter``: past the limit it answers 429 with a
    ``Retry-After`` header (whole seconds) and a JSON body, without running
    the view. ``key`` names who is limited; by default the session, or the
    client address for visitors without one."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            result = limiter.hit(key() if key is not None else _visitor_key())
            if not result.allowed:
                response = jsonify(error="rate limit exceeded", retry_after=result.retry_after)
                response.status_code = 429
                response.headers["Retry-After"] = retry_after_header(result.retry_after)
                return response
            response = make_response(view(*args, **kwargs))
            response.headers["RateLimit-Remaining"] = str(result.remaining)
            return response

        return limited  # type: ignore[return-value]

    return decorate

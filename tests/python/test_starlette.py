"""End-to-end tests of pysessionmanager.contrib.starlette through Starlette's
TestClient (and httpx2's ASGI transport where two requests must overlap),
on the memory store and on a real SQLite file."""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import httpx2
import pytest
from children import sqlite_write_lock
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from pysessionmanager import SessionManager, UnsupportedDataType
from pysessionmanager.contrib._web import ANONYMOUS_PREFIX, RequestState
from pysessionmanager.contrib.starlette import (
    Session,
    SessionMiddleware,
    alogin,
    alogout,
    login,
    logout,
)
from pysessionmanager.testing import ManualClock

HTTPS = "https://testserver"


def show(request: Request) -> JSONResponse:
    session = request.session
    assert isinstance(session, Session)
    return JSONResponse({"data": session, "sid": session.sid, "user": session.user_id})


async def update(request: Request) -> JSONResponse:
    request.session.update(await request.json())
    return JSONResponse(request.session)


def nothing(request: Request) -> PlainTextResponse:
    return PlainTextResponse("no session here")


def set_then_unset(request: Request) -> PlainTextResponse:
    request.session["tmp"] = 1
    del request.session["tmp"]
    return PlainTextResponse("ok")


def append_unnoted(request: Request) -> PlainTextResponse:
    request.scope["session"]["cart"].append("unnoted")  # bypasses request.session
    return PlainTextResponse("ok")


def reassign_unnoted(request: Request) -> PlainTextResponse:
    cart = request.scope["session"]["cart"]
    cart.append("reassigned")
    request.scope["session"]["cart"] = cart
    return PlainTextResponse("ok")


def copies(request: Request) -> JSONResponse:
    deep, pickled = copy.deepcopy(request.session), pickle.loads(pickle.dumps(request.session))
    deep["cart"].append("only in the copy")
    return JSONResponse({"types": [type(deep).__name__, type(pickled).__name__], "copy": deep})


def setdefault_unnoted(request: Request) -> PlainTextResponse:
    request.scope["session"].setdefault("tags", []).append("defaulted")
    return PlainTextResponse("ok")


def append(request: Request) -> PlainTextResponse:
    request.session["cart"].append(request.path_params["item"])  # no __setitem__: nested
    return PlainTextResponse("ok")


async def update_then_fail(request: Request) -> PlainTextResponse:
    request.session.update(await request.json())
    return PlainTextResponse("broken", status_code=int(request.path_params["status"]))


async def update_then_raise(request: Request) -> PlainTextResponse:
    request.session.update(await request.json())
    raise RuntimeError("boom")


async def clear(request: Request) -> PlainTextResponse:
    request.session.clear()
    return PlainTextResponse("ok")


async def async_login(request: Request) -> PlainTextResponse:
    return PlainTextResponse(await alogin(request, request.path_params["user"]))


def sync_login(request: Request) -> PlainTextResponse:
    return PlainTextResponse(login(request, request.path_params["user"]))


def login_with_a_number(request: Request) -> PlainTextResponse:
    return PlainTextResponse(login(request, 123))  # type: ignore[arg-type]


async def async_logout(request: Request) -> PlainTextResponse:
    await alogout(request)
    return PlainTextResponse("bye")


def sync_logout(request: Request) -> PlainTextResponse:
    logout(request)
    return PlainTextResponse("bye")


async def async_logout_then_flash(request: Request) -> PlainTextResponse:
    await alogout(request)
    request.session["flash"] = "bye"
    return PlainTextResponse("bye")


def sync_logout_then_flash(request: Request) -> PlainTextResponse:
    logout(request)
    request.session["flash"] = "bye"
    return PlainTextResponse("bye")


def store_tuples(request: Request) -> PlainTextResponse:
    request.session["point"] = (1, 2)
    request.session["nested"] = {"path": ("a", ("b", "c"))}
    return PlainTextResponse("ok")


def show_types(request: Request) -> JSONResponse:
    return JSONResponse({key: type(value).__name__ for key, value in request.session.items()})


def store_a_set(request: Request) -> PlainTextResponse:
    request.session["tags"] = {"a", "b"}
    return PlainTextResponse("unreachable")


ROUTES = [
    Route("/show", show),
    Route("/update", update, methods=["POST"]),
    Route("/nothing", nothing),
    Route("/set-then-unset", set_then_unset, methods=["POST"]),
    Route("/append/{item}", append, methods=["POST"]),
    Route("/append-unnoted", append_unnoted, methods=["POST"]),
    Route("/reassign-unnoted", reassign_unnoted, methods=["POST"]),
    Route("/setdefault-unnoted", setdefault_unnoted, methods=["POST"]),
    Route("/copies", copies),
    Route("/fail/{status}", update_then_fail, methods=["POST"]),
    Route("/raise", update_then_raise, methods=["POST"]),
    Route("/clear", clear, methods=["POST"]),
    Route("/alogin/{user}", async_login, methods=["POST"]),
    Route("/login/{user}", sync_login, methods=["POST"]),
    Route("/login-number", login_with_a_number, methods=["POST"]),
    Route("/alogout", async_logout, methods=["POST"]),
    Route("/logout", sync_logout, methods=["POST"]),
    Route("/alogout-then-flash", async_logout_then_flash, methods=["POST"]),
    Route("/logout-then-flash", sync_logout_then_flash, methods=["POST"]),
    Route("/tuples", store_tuples, methods=["POST"]),
    Route("/types", show_types),
    Route("/set", store_a_set, methods=["POST"]),
]


def make_app(manager: SessionManager, **options: Any) -> Starlette:
    return Starlette(
        routes=ROUTES, middleware=[Middleware(SessionMiddleware, manager=manager, **options)]
    )


def client_for(app: Any, **options: Any) -> TestClient:
    return TestClient(app, base_url=HTTPS, **options)


def parse_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """Name, value and lower-cased attributes of one Set-Cookie header."""
    first, *attributes = header.split("; ")
    name, value = first.split("=", 1)
    parsed = {}
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        parsed[key.lower()] = val
    return name, value, parsed


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionManager]:
    url = None if request.param == "memory" else f"sqlite:///{tmp_path / 'sessions.db'}"
    manager = SessionManager(store=url)
    yield manager
    manager.close()


@pytest.fixture
def client(store: SessionManager) -> TestClient:
    return client_for(make_app(store))


# --- cookies and records -------------------------------------------------------------


def test_cookie_is_secure_httponly_lax_by_default(client: TestClient) -> None:
    response = client.post("/update", json={"a": 1})
    name, value, attributes = parse_cookie(response.headers["set-cookie"])
    assert name == "session"
    assert attributes == {
        "path": "/",
        "max-age": str(14 * 24 * 3600),
        "httponly": "",
        "samesite": "lax",
        "secure": "",
    }
    assert "cookie" in response.headers["vary"].lower()


def test_cookie_carries_only_the_id_and_the_data_stays_in_the_store(
    client: TestClient, store: SessionManager
) -> None:
    response = client.post("/update", json={"secret": "not in the cookie"})
    _, sid, _ = parse_cookie(response.headers["set-cookie"])
    assert "secret" not in response.headers["set-cookie"]
    stored = store.get_session(sid)
    assert stored == {"secret": "not in the cookie"}
    assert stored.user_id.startswith(ANONYMOUS_PREFIX)


def test_session_survives_across_requests(client: TestClient, store: SessionManager) -> None:
    client.post("/update", json={"a": 1})
    client.post("/update", json={"b": [1, 2]})
    shown = client.get("/show").json()
    assert shown["data"] == {"a": 1, "b": [1, 2]}
    assert shown["user"] is None  # a visitor, not a logged-in user
    assert store.get_session(shown["sid"]) == {"a": 1, "b": [1, 2]}
    assert store.count() == 1


def test_empty_session_gets_no_record_and_no_cookie(
    client: TestClient, store: SessionManager
) -> None:
    for response in (
        client.get("/show"),
        client.get("/nothing"),
        client.post("/set-then-unset"),
        client.post("/clear"),
    ):
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
    assert store.count() == 0


def test_set_cookie_only_when_the_session_changed(client: TestClient) -> None:
    assert "set-cookie" in client.post("/update", json={"a": 1}).headers
    assert "set-cookie" not in client.get("/show").headers
    assert "set-cookie" not in client.post("/update", json={"a": 1}).headers  # same value
    assert "set-cookie" in client.post("/update", json={"a": 2}).headers
    assert "vary" not in client.get("/nothing").headers


def test_changes_inside_nested_values_are_saved(client: TestClient) -> None:
    client.post("/update", json={"cart": []})
    response = client.post("/append/book")
    assert "set-cookie" in response.headers  # Starlette's would not even notice
    client.post("/append/pen")
    assert client.get("/show").json()["data"] == {"cart": ["book", "pen"]}


def test_a_request_that_never_reads_the_session_skips_the_copy_and_the_save(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post("/update", json={"cart": ["book"], "big": list(range(100))})
    encoded = []
    original = RequestState.encoded
    monkeypatch.setattr(
        RequestState, "encoded", lambda state, data: encoded.append(1) or original(state, data)
    )
    copied = []
    detach = RequestState.detach
    monkeypatch.setattr(RequestState, "detach", lambda state: copied.append(1) or detach(state))
    response = client.get("/nothing")
    assert encoded == [] and copied == [] and "vary" not in response.headers
    client.post("/append/pen")
    assert encoded == [1] and copied == [1]
    assert client.get("/show").json()["data"]["cart"] == ["book", "pen"]


def test_changes_through_scope_session_are_saved_however_they_are_made(
    client: TestClient,
) -> None:
    client.post("/update", json={"cart": ["book"], "tags": ["a"]})
    client.post("/append-unnoted")  # scope["session"]["cart"].append(...), no request.session
    client.post("/reassign-unnoted")  # change in place, then assign the same list back
    client.post("/setdefault-unnoted")  # setdefault on a key that exists, then change it
    assert client.get("/show").json()["data"] == {
        "cart": ["book", "unnoted", "reassigned"],
        "tags": ["a", "defaulted"],
    }


def test_the_session_copies_and_pickles_as_a_plain_dict(client: TestClient) -> None:
    client.post("/update", json={"cart": ["book"]})
    answer = client.get("/copies").json()
    assert answer == {"types": ["dict", "dict"], "copy": {"cart": ["book", "only in the copy"]}}
    assert client.get("/show").json()["data"] == {"cart": ["book"]}


def test_tuples_become_lists_and_other_non_json_is_refused(
    client: TestClient, store: SessionManager
) -> None:
    sid = parse_cookie(client.post("/update", json={"a": 1}).headers["set-cookie"])[1]
    client.post("/tuples")
    lists = {"a": 1, "point": [1, 2], "nested": {"path": ["a", ["b", "c"]]}}
    stored = store.get_session(sid)
    assert stored == lists
    assert type(stored["point"]) is list and type(stored["nested"]["path"][1]) is list
    assert client.get("/show").json()["data"] == lists
    assert client.get("/types").json() == {"a": "int", "point": "list", "nested": "dict"}
    with pytest.raises(UnsupportedDataType) as raised:
        client.post("/set")
    assert raised.value.path == "data['tags']"
    assert client.get("/show").json()["data"] == lists


def test_max_age_is_the_stored_idle_timeout() -> None:
    clock = ManualClock()
    manager = SessionManager(expiration_time=3600, clock=clock)
    client = client_for(make_app(manager, max_age=600))
    sid = parse_cookie(client.post("/update", json={"a": 1}).headers["set-cookie"])[1]
    stored = manager.get_session(sid)
    assert (stored.expires_at - stored.last_active).total_seconds() == 600
    clock.advance(601)
    response = client.get("/show")
    assert response.json()["data"] == {}
    _, value, attributes = parse_cookie(response.headers["set-cookie"])  # dead: deleted
    assert value == "" and attributes["expires"].endswith("1970 00:00:00 GMT")


def test_max_age_none_is_a_browser_session_cookie_on_the_managers_timeout() -> None:
    manager = SessionManager(expiration_time=1800)
    client = client_for(make_app(manager, max_age=None))
    header = client.post("/update", json={"a": 1}).headers["set-cookie"]
    _, sid, attributes = parse_cookie(header)
    assert "max-age" not in attributes and "expires" not in attributes
    stored = manager.get_session(sid)
    assert (stored.expires_at - stored.last_active).total_seconds() == 1800


def test_zero_max_age_turns_sessions_off(store: SessionManager) -> None:
    client = client_for(make_app(store, max_age=0))
    _, value, attributes = parse_cookie(client.post("/update", json={"a": 1}).headers["set-cookie"])
    assert value == "" and attributes["max-age"] == "0"  # the browser drops it at once
    assert store.count() == 0
    with pytest.raises(RuntimeError, match="sessions are off"):
        client.post("/alogin/alice")


def test_cookie_options_are_starlettes() -> None:
    app = make_app(
        SessionManager(),
        session_cookie="sid",
        path="/",
        same_site="strict",
        domain=".example.com",
        partitioned=True,
        max_age=60,
    )
    header = client_for(app).post("/update", json={"a": 1}).headers["set-cookie"]
    name, _, attributes = parse_cookie(header)
    assert name == "sid"
    assert attributes == {
        "path": "/",
        "max-age": "60",
        "httponly": "",
        "samesite": "strict",
        "secure": "",
        "domain": ".example.com",
        "partitioned": "",
    }


@pytest.mark.parametrize(
    ("https_only", "base_url", "secure"),
    [
        (None, "https://testserver", True),  # the default: Secure follows the scheme
        (None, "http://testserver", False),
        (True, "http://testserver", True),
        (False, "https://testserver", False),
    ],
)
def test_secure_follows_the_scheme_unless_https_only_says(
    https_only: Optional[bool], base_url: str, secure: bool
) -> None:
    options = {} if https_only is None else {"https_only": https_only}
    app = make_app(SessionManager(), **options)
    client = TestClient(app, base_url=base_url)
    header = client.post("/update", json={"a": 1}).headers["set-cookie"]
    assert ("secure" in parse_cookie(header)[2]) is secure
    # A client keeps a Secure cookie only over HTTPS, as browsers do.
    kept = not secure or base_url.startswith("https")
    assert client.get("/show").json()["data"] == ({"a": 1} if kept else {})


@pytest.mark.parametrize("options", [{"same_site": "none"}, {"partitioned": True}])
def test_cookies_browsers_accept_only_when_secure_are_always_secure(
    options: dict[str, Any],
) -> None:
    client = TestClient(make_app(SessionManager(), **options), base_url="http://testserver")
    header = client.post("/update", json={"a": 1}).headers["set-cookie"]
    assert "secure" in parse_cookie(header)[2]


# --- invalid cookies -----------------------------------------------------------------


@pytest.mark.parametrize(
    "cookie",
    ["invalid", "", "x" * 100_000, "A" * 43, "null", "%00%ff", "eyJhIjogMX0=.YfQ.sig"],
    ids=["junk", "empty", "huge", "token-shaped", "null", "escapes", "starlette-signed"],
)
def test_invalid_or_forged_cookie_is_no_session(store: SessionManager, cookie: str) -> None:
    client = client_for(make_app(store), cookies={"session": cookie})
    response = client.get("/show")
    assert response.json() == {"data": {}, "sid": None, "user": None}
    assert parse_cookie(response.headers["set-cookie"])[1] == ""  # deleted
    client.cookies.set("session", cookie)
    response = client.get("/nothing")  # even when the view never reads the session
    assert parse_cookie(response.headers["set-cookie"])[1] == ""
    response = client.post("/update", json={"a": 1})  # a write gets a fresh id
    sid = parse_cookie(response.headers["set-cookie"])[1]
    assert sid != cookie and store.get_session(sid) == {"a": 1}


def test_ended_session_cookie_is_no_session(client: TestClient, store: SessionManager) -> None:
    sid = parse_cookie(client.post("/update", json={"a": 1}).headers["set-cookie"])[1]
    store.end_session(sid)
    assert client.get("/show").json()["data"] == {}


# --- failed requests -----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_nothing_saved_when_the_response_is_5xx(
    client: TestClient, store: SessionManager, status: int
) -> None:
    response = client.post(f"/fail/{status}", json={"a": 1})
    assert response.status_code == status
    assert "set-cookie" not in response.headers
    assert store.count() == 0
    sid = parse_cookie(client.post("/update", json={"a": 1}).headers["set-cookie"])[1]
    client.post(f"/fail/{status}", json={"a": 2, "b": 3})
    assert store.get_session(sid) == {"a": 1}


def test_4xx_saves_as_usual(client: TestClient) -> None:
    assert client.post("/fail/404", json={"a": 1}).status_code == 404
    assert client.get("/show").json()["data"] == {"a": 1}


def test_nothing_saved_when_the_endpoint_raises(store: SessionManager) -> None:
    client = client_for(make_app(store), raise_server_exceptions=False)
    sid = parse_cookie(client.post("/update", json={"a": 1}).headers["set-cookie"])[1]
    response = client.post("/raise", json={"a": 2})
    assert response.status_code == 500
    assert store.get_session(sid) == {"a": 1}


# --- login and logout ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["alogin", "login"])
def test_login_rotates_the_id_and_kills_the_old_one(
    client: TestClient, store: SessionManager, how: str
) -> None:
    old = parse_cookie(client.post("/update", json={"cart": ["book"]}).headers["set-cookie"])[1]
    response = client.post(f"/{how}/alice")
    new = parse_cookie(response.headers["set-cookie"])[1]
    assert new == response.text and new != old
    assert not store.is_session_active(old)
    assert store.get_session(new).user_id == "alice"
    assert client.get("/show").json() == {"data": {"cart": ["book"]}, "sid": new, "user": "alice"}
    # Whoever planted or stole the old id gets nothing.
    attacker = client_for(make_app(store), cookies={"session": old})
    assert attacker.get("/show").json()["data"] == {}


@pytest.mark.parametrize("how", ["login", "alogin"])
def test_login_as_another_user_starts_from_empty_data(
    client: TestClient, store: SessionManager, how: str
) -> None:
    client.post(f"/{how}/alice")
    client.post("/update", json={"note": "alice's secret"})
    bob = client.post(f"/{how}/bob").text
    assert client.get("/show").json() == {"data": {}, "sid": bob, "user": "bob"}
    assert dict(store.get_session(bob)) == {}
    # The same user logging in again keeps the session's data.
    client.post("/update", json={"note": "bob's"})
    again = client.post(f"/{how}/bob").text
    assert client.get("/show").json() == {"data": {"note": "bob's"}, "sid": again, "user": "bob"}


def test_login_without_a_prior_session(client: TestClient, store: SessionManager) -> None:
    sid = client.post("/alogin/bob").text
    assert store.get_session(sid).user_id == "bob"
    assert client.get("/show").json()["user"] == "bob"


def test_login_refuses_a_user_id_that_is_not_a_str(client: TestClient) -> None:
    with pytest.raises(TypeError, match="user_id must be a str, got int"):
        client.post("/login-number")


def test_login_refuses_visitor_user_ids(client: TestClient) -> None:
    with pytest.raises(ValueError, match="reserved"):
        client.post(f"/alogin/{ANONYMOUS_PREFIX}x")


@pytest.mark.parametrize("how", ["alogout", "logout"])
def test_logout_ends_the_record_and_deletes_the_cookie(
    client: TestClient, store: SessionManager, how: str
) -> None:
    sid = client.post("/alogin/alice").text
    client.post("/update", json={"a": 1})
    response = client.post(f"/{how}")
    _, value, attributes = parse_cookie(response.headers["set-cookie"])
    assert value == "" and "expires" in attributes
    assert not store.is_session_active(sid)
    assert store.count() == 0
    assert client.get("/show").json() == {"data": {}, "sid": None, "user": None}


@pytest.mark.parametrize("how", ["alogout", "logout"])
def test_data_set_after_logout_goes_to_a_new_visitor_session(
    client: TestClient, store: SessionManager, how: str
) -> None:
    old = client.post("/alogin/alice").text
    response = client.post(f"/{how}-then-flash")
    new = parse_cookie(response.headers["set-cookie"])[1]
    assert new != old and not store.is_session_active(old)
    assert client.get("/show").json() == {"data": {"flash": "bye"}, "sid": new, "user": None}


def test_websocket_reads_the_session_and_cannot_change_it(
    client: TestClient, store: SessionManager
) -> None:
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(websocket.session)
        websocket.session["changed"] = True
        await websocket.close()

    sid = parse_cookie(client.post("/update", json={"a": 1}).headers["set-cookie"])[1]
    app = Starlette(
        routes=[WebSocketRoute("/ws", chat)],
        middleware=[Middleware(SessionMiddleware, manager=store)],
    )
    with client_for(app, cookies={"session": sid}).websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == {"a": 1}
    assert store.get_session(sid) == {"a": 1}


def test_raw_asgi_response_without_headers(store: SessionManager) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["a"] = 1
        await send({"type": "http.response.start", "status": 200})  # no "headers" key
        await send({"type": "http.response.body", "body": b"ok"})

    client = client_for(SessionMiddleware(app, manager=store))
    sid = parse_cookie(client.get("/").headers["set-cookie"])[1]
    assert store.get_session(sid) == {"a": 1}


def test_helpers_need_the_middleware() -> None:
    app = Starlette(routes=ROUTES)  # no SessionMiddleware
    with pytest.raises(AssertionError, match="SessionMiddleware must be installed"):
        client_for(app).post("/update", json={"a": 1})
    with pytest.raises(RuntimeError, match="does not come from"):
        client_for(app).post("/alogin/alice")


# --- concurrency and the event loop --------------------------------------------------


def test_concurrent_requests_changing_different_keys_keep_both(tmp_path: Path) -> None:
    """Request A reads the session, then B reads, writes and returns, then A
    returns: A's save must re-apply its own change on top of B's."""
    manager = SessionManager(store=f"sqlite:///{tmp_path / 'sessions.db'}")
    a_started, b_done = asyncio.Event(), asyncio.Event()

    async def write_a(request: Request) -> PlainTextResponse:
        request.session["a"] = 1
        a_started.set()
        await b_done.wait()
        return PlainTextResponse("a")

    async def write_b(request: Request) -> PlainTextResponse:
        request.session["b"] = 2
        return PlainTextResponse("b")

    app = Starlette(
        routes=[Route("/a", write_a), Route("/b", write_b)],
        middleware=[Middleware(SessionMiddleware, manager=manager)],
    )
    sid = manager.create_session("visitor", {"x": 0})

    async def scenario() -> None:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(
            transport=transport, base_url=HTTPS, cookies={"session": sid}
        ) as http:
            a = asyncio.create_task(http.get("/a"))
            await a_started.wait()
            assert (await http.get("/b")).status_code == 200
            assert manager.get_session(sid) == {"x": 0, "b": 2}
            b_done.set()
            assert (await a).status_code == 200

    asyncio.run(scenario())
    assert manager.get_session(sid) == {"x": 0, "a": 1, "b": 2}
    manager.close()


def test_a_slow_store_call_does_not_hold_the_event_loop(tmp_path: Path) -> None:
    """While one request's save waits for a SQLite write lock held by another
    process, another request on the same event loop completes."""
    path = tmp_path / "sessions.db"
    manager = SessionManager(store=f"sqlite:///{path}")
    app = make_app(manager)
    order: list[str] = []

    async def scenario(release: Callable[[], None]) -> None:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url=HTTPS) as http:
            writer = asyncio.create_task(http.post("/update", json={"a": 1}))
            await asyncio.sleep(0.3)  # the writer is now waiting for the lock
            assert not writer.done()
            assert (await http.get("/nothing")).status_code == 200
            order.append("other request done")
            release()
            response = await writer
            order.append("writer done")
            assert response.status_code == 200 and "set-cookie" in response.headers

    with sqlite_write_lock(path) as release:
        asyncio.run(scenario(release))
    assert order == ["other request done", "writer done"]
    assert manager.count() == 1
    manager.close()


# --- FastAPI and construction --------------------------------------------------------


def test_fastapi_app() -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware)

    @app.post("/login/{user}")
    async def do_login(user: str, request: Request) -> dict[str, Any]:
        await alogin(request, user)
        return {"user": request.session.user_id}  # type: ignore[attr-defined]

    @app.post("/cart/{item}")
    async def add(item: str, request: Request) -> dict[str, Any]:
        request.session.setdefault("cart", []).append(item)
        return request.session

    @app.get("/cart")
    async def cart(request: Request) -> list[str]:
        return request.session.get("cart", [])  # type: ignore[no-any-return]

    client = client_for(app)
    assert client.get("/cart").json() == []
    assert "set-cookie" not in client.get("/cart").headers
    client.post("/cart/book")
    old = client.cookies["session"]
    assert client.post("/login/alice").json() == {"user": "alice"}
    assert client.cookies["session"] != old
    assert client.post("/cart/pen").json() == {"cart": ["book", "pen"]}
    assert client.get("/cart").json() == ["book", "pen"]


def test_secret_key_is_optional_and_accepted_like_starlettes() -> None:
    for middleware in [
        Middleware(SessionMiddleware),
        Middleware(SessionMiddleware, "secret"),  # positional, as Starlette's allows
        Middleware(SessionMiddleware, secret_key=Secret("s")),
    ]:
        client = client_for(Starlette(routes=ROUTES, middleware=[middleware]))
        client.post("/update", json={"a": 1})
        assert client.get("/show").json()["data"] == {"a": 1}


def test_manager_may_be_a_store_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    client = client_for(
        Starlette(routes=ROUTES, middleware=[Middleware(SessionMiddleware, manager=url)])
    )
    sid = parse_cookie(client.post("/update", json={"a": 1}).headers["set-cookie"])[1]
    with SessionManager(store=url) as other:  # another process would see it too
        assert other.get_session(sid) == {"a": 1}


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"session_cookie": "a b"}, ValueError, "session_cookie"),
        ({"session_cookie": "a;b"}, ValueError, "session_cookie"),
        ({"session_cookie": ""}, ValueError, "session_cookie"),
        ({"max_age": "60"}, TypeError, "max_age"),
        ({"max_age": 1.5}, TypeError, "max_age"),
        ({"max_age": True}, TypeError, "max_age"),
        ({"path": "app"}, ValueError, "path must start"),
        ({"path": "/a; secure"}, ValueError, "path"),
        ({"same_site": "sometimes"}, ValueError, "same_site"),
        ({"same_site": None}, ValueError, "same_site"),
        ({"same_site": "none", "https_only": False}, ValueError, "needs a Secure cookie"),
        ({"partitioned": True, "https_only": False}, ValueError, "needs a Secure cookie"),
        ({"https_only": "yes"}, TypeError, "https_only"),
        ({"domain": "a.com; secure"}, ValueError, "domain"),
        ({"manager": 42}, TypeError, "SessionManager or a store URL"),
    ],
)
def test_bad_options_are_refused_at_construction(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SessionMiddleware(_app, **options)


def test_same_site_is_case_insensitive() -> None:
    middleware = SessionMiddleware(_app, same_site="Strict")  # type: ignore[arg-type]
    assert all("samesite=strict" in flags for flags in middleware.flags_by_scheme)


def test_rate_limit_dependency_answers_429_with_retry_after(tmp_path: Path) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient as FastAPIClient

    from pysessionmanager import RateLimiter, RateLimitResult
    from pysessionmanager.contrib.starlette import rate_limit
    from pysessionmanager.testing import ManualClock

    clock = ManualClock()
    memory = RateLimiter("2/minute", clock=clock)
    on_disk = RateLimiter("1/hour", store=f"sqlite:///{tmp_path / 'limits.db'}")
    per_visitor = rate_limit(memory)
    per_user = rate_limit(on_disk, key=lambda request: request.path_params["user"])
    app = FastAPI()
    app.add_middleware(SessionMiddleware)

    @app.get("/api")
    async def api(result: RateLimitResult = Depends(per_visitor)) -> dict[str, int]:
        return {"remaining": result.remaining}

    @app.get("/report/{user}")
    async def report(
        user: str,
        _: RateLimitResult = Depends(per_user),
    ) -> dict[str, str]:
        return {"report": user}

    client = FastAPIClient(app, base_url="https://testserver")
    answers = [client.get("/api") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].json() == {"remaining": 0}
    assert answers[2].headers["retry-after"] == "30"
    assert answers[2].json() == {"detail": "rate limit exceeded"}
    clock.advance(30)
    assert client.get("/api").status_code == 200
    assert client.get("/report/a").status_code == 200
    assert client.get("/report/a").status_code == 429
    assert client.get("/report/b").status_code == 200


def test_of_two_session_cookies_the_first_counts(store: SessionManager) -> None:
    """One rule in every integration: the first session cookie of the header
    (Starlette's own parser keeps the last)."""
    first = store.create_session("first-user", {"cart": ["first"]})
    second = store.create_session("second-user", {"cart": ["second"]})
    client = client_for(make_app(store))
    shown = client.get("/show", headers={"Cookie": f"session={first}; session={second}"})
    assert shown.json()["data"] == {"cart": ["first"]}
    shown = client.get("/show", headers={"Cookie": f"session=forged; session={second}"})
    assert shown.json()["data"] == {}


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
def test_the_middleware_awaits_the_store_without_worker_threads(
    kind: str, url_of: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loads, saves, logins, logouts, appends and rate limits of async
    endpoints never hand a call to a worker thread."""
    import anyio.to_thread
    from fastapi import Depends

    from pysessionmanager import RateLimiter, RateLimitResult
    from pysessionmanager.contrib.starlette import rate_limit

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a store call went to a worker thread")

    manager = SessionManager(store=url_of(kind))
    app = FastAPI()
    app.add_middleware(SessionMiddleware, manager=manager)
    limited = rate_limit(RateLimiter("3/minute", store=manager))

    @app.post("/login/{user}")
    async def log_in(request: Request, user: str) -> dict[str, str]:
        request.session["theme"] = "dark"
        return {"sid": await alogin(request, user)}

    @app.post("/add/{item}")
    async def add(request: Request, item: str) -> dict[str, int]:
        return {"length": await request.session.append("cart", item)}

    @app.get("/me")
    async def me(request: Request, _: RateLimitResult = Depends(limited)) -> dict[str, Any]:
        return dict(request.session)

    @app.post("/logout")
    async def log_out(request: Request) -> dict[str, bool]:
        await alogout(request)
        return {"ok": True}

    client = TestClient(app, base_url=HTTPS)
    with monkeypatch.context() as patched:
        patched.setattr(anyio.to_thread, "run_sync", refuse)
        sid = client.post("/login/alice").json()["sid"]
        assert client.post("/add/book").json() == {"length": 1}
        assert client.post("/add/pen").json() == {"length": 2}
        assert client.get("/me").json() == {"theme": "dark", "cart": ["book", "pen"]}
        assert manager.get_session(sid).user_id == "alice"
        assert [client.get("/me").status_code for _ in range(3)][-1] == 429
        assert client.post("/logout").json() == {"ok": True}
    assert not manager.is_session_active(sid)
    manager.close()


def test_login_may_choose_the_sessions_own_lifetime(store: SessionManager) -> None:
    """ "Remember me": a login with its own idle and absolute timeouts; the
    cookie lives as long as the session, at login and at later writes."""

    async def remember(request: Request) -> PlainTextResponse:
        days = float(request.query_params["days"])
        sid = await alogin(
            request, "alice", expiration_time=days * 86400, absolute_timeout=90 * 86400
        )
        return PlainTextResponse(sid)

    def short(request: Request) -> PlainTextResponse:
        return PlainTextResponse(login(request, "alice", absolute_timeout=900))

    app = Starlette(
        routes=[
            *ROUTES,
            Route("/remember", remember, methods=["POST"]),
            Route("/short", short, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, manager=store)],
    )
    client = client_for(app)
    response = client.post("/remember?days=30")
    _, _, attributes = parse_cookie(response.headers["set-cookie"])
    assert attributes["max-age"] == str(30 * 86400)
    session = store.session_info(response.text)
    assert (session.expires_at - session.last_active).days == 30
    assert (session.absolute_expires_at - session.created_at).days == 90
    later = client.post("/update", json={"theme": "dark"})
    _, _, attributes = parse_cookie(later.headers["set-cookie"])
    assert attributes["max-age"] == str(30 * 86400), "a later write keeps the lifetime"

    response = client.post("/short")
    _, _, attributes = parse_cookie(response.headers["set-cookie"])
    assert attributes["max-age"] == "900", "the absolute timeout is the shorter"

    default = client_for(make_app(store)).post("/login/bob")
    _, _, attributes = parse_cookie(default.headers["set-cookie"])
    assert attributes["max-age"] == str(14 * 24 * 3600), "max_age when the login chose none"

    with pytest.raises(ValueError, match="expiration_time"):
        client.post("/remember?days=-1")
    assert store.is_session_active(response.text), "a refused login ends nothing"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_middleware_works_under_trio(kind: str, url_of: Callable[[str], str]) -> None:
    """On trio, where the engine cannot wake the loop, the middleware calls
    the store from anyio's worker threads; sessions work the same."""
    from fastapi import Depends

    from pysessionmanager import RateLimiter, RateLimitResult
    from pysessionmanager.contrib.starlette import rate_limit

    manager = SessionManager(store=url_of(kind))
    app = FastAPI()
    app.add_middleware(SessionMiddleware, manager=manager)
    limited = rate_limit(RateLimiter("2/minute", store=manager))

    @app.post("/login/{user}")
    async def log_in(request: Request, user: str) -> dict[str, int]:
        await alogin(request, user)
        return {"length": await request.session.append("cart", "book")}

    @app.get("/me")
    async def me(request: Request, _: RateLimitResult = Depends(limited)) -> dict[str, Any]:
        return {"user": request.session.user_id, "cart": request.session["cart"]}

    with TestClient(app, base_url=HTTPS, backend="trio") as client:
        assert client.post("/login/alice").json() == {"length": 1}
        assert client.get("/me").json() == {"user": "alice", "cart": ["book"]}
        assert [client.get("/me").status_code for _ in range(2)] == [200, 429]
    assert manager.list_sessions("alice")[0]["cart"] == ["book"]
    manager.close()

"""Twenty requests of one visitor at once, each adding an item to the cart in
its session: a response that says the change was saved means it was saved.

``session["cart"].append(item)`` in twenty concurrent requests: each either
answers 200 with its item kept, or 409 (``SessionConflict``: a concurrent
request changed the cart first) with nothing written; the stored cart is
exactly the items of the 200s. ``session.append("cart", item)`` appends in
the store, atomically: all twenty answer 200 and all twenty items land.
Flask is served by a real threaded HTTP server; Starlette's requests run as
concurrent tasks whose store calls go to worker threads."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from flask import Flask, session
from ports import free_port
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.serving import make_server

from pysessionmanager import SessionManager
from pysessionmanager.contrib.flask import SessionInterface
from pysessionmanager.contrib.starlette import SessionMiddleware

REQUESTS = 20
STORES = ["memory", "sqlite", "redis", "redis-cluster"]


@pytest.fixture(params=STORES)
def manager(request: pytest.FixtureRequest, url_of: Callable[[str], str]) -> Iterator[Any]:
    m = SessionManager(store=url_of(request.param))
    yield m
    m.close()


def check_outcome(manager: SessionManager, sid: str, answers: dict[str, int]) -> None:
    """Every request answered 200 or 409, and the cart holds exactly the
    items of the 200s, each once."""
    assert set(answers.values()) <= {200, 409}, answers
    saved = sorted(item for item, status in answers.items() if status == 200)
    assert saved, "at least one request saved"
    assert sorted(manager.get_session(sid)["cart"]) == saved


# --- Flask, on a real threaded server ---------------------------------------------------


def flask_app(manager: SessionManager) -> Flask:
    app = Flask(__name__)
    SessionInterface(manager, app, secure=False)

    @app.post("/start")
    def start() -> str:
        session["cart"] = []
        return "started"

    @app.post("/add/<item>")
    def add(item: str) -> str:
        session.setdefault("cart", []).append(item)
        return "added"

    @app.post("/append/<item>")
    def append(item: str) -> str:
        return str(session.append("cart", item))  # type: ignore[attr-defined]

    return app


@pytest.fixture
def flask_server(manager: SessionManager) -> Iterator[str]:
    server = make_server("127.0.0.1", free_port(), flask_app(manager), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def post(url: str, cookie: str = "") -> tuple[int, str]:
    """Status and session cookie value (if set) of a POST to ``url``."""
    request = urllib.request.Request(url, method="POST", headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        status, headers = error.code, error.headers
    set_cookie = headers.get("Set-Cookie", "")
    return status, set_cookie.split(";", 1)[0].partition("=")[2]


def at_once(count: int, call: Callable[[int], tuple[int, str]]) -> dict[str, int]:
    """Runs ``call(i)`` in ``count`` threads released together; the status by item."""
    barrier = threading.Barrier(count)
    answers: dict[str, int] = {}

    def run(i: int) -> None:
        barrier.wait()
        answers[f"item{i}"] = call(i)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_flask_concurrent_cart_changes_are_saved_or_refused_with_409(
    manager: SessionManager, flask_server: str
) -> None:
    status, sid = post(f"{flask_server}/start")
    assert status == 200 and sid
    answers = at_once(REQUESTS, lambda i: post(f"{flask_server}/add/item{i}", f"session={sid}"))
    check_outcome(manager, sid, answers)


def test_flask_session_append_keeps_every_concurrent_item(
    manager: SessionManager, flask_server: str
) -> None:
    status, sid = post(f"{flask_server}/start")
    assert status == 200
    answers = at_once(REQUESTS, lambda i: post(f"{flask_server}/append/item{i}", f"session={sid}"))
    assert set(answers.values()) == {200}
    assert sorted(manager.get_session(sid)["cart"]) == sorted(answers)


def test_flask_append_before_the_session_is_stored_and_on_a_non_list(
    manager: SessionManager, flask_server: str
) -> None:
    # No session yet: the item waits in the session and the save stores it.
    status, sid = post(f"{flask_server}/append/first")
    assert status == 200 and manager.get_session(sid)["cart"] == ["first"]
    manager.update_session(sid, {"cart": "not a list"})
    status, _ = post(f"{flask_server}/append/x", f"session={sid}")
    assert status == 500  # the app's own bug: a clear UnsupportedDataType
    assert manager.get_session(sid)["cart"] == "not a list"


# --- Starlette, as concurrent tasks ------------------------------------------------------


def starlette_app(manager: SessionManager) -> Starlette:
    async def start(request: Request) -> PlainTextResponse:
        request.session["cart"] = []
        return PlainTextResponse("started")

    async def add(request: Request) -> PlainTextResponse:
        request.session.setdefault("cart", []).append(request.path_params["item"])
        return PlainTextResponse("added")

    async def append(request: Request) -> PlainTextResponse:
        length = await request.session.append("cart", request.path_params["item"])
        return PlainTextResponse(str(length))

    return Starlette(
        routes=[
            Route("/start", start, methods=["POST"]),
            Route("/add/{item}", add, methods=["POST"]),
            Route("/append/{item}", append, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, manager=manager, https_only=False)],
    )


def starlette_at_once(manager: SessionManager, route: str) -> tuple[str, dict[str, int]]:
    async def scenario() -> tuple[str, dict[str, int]]:
        transport = httpx2.ASGITransport(app=starlette_app(manager))
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
            started = await c.post("/start")
            sid = started.cookies["session"]
            responses = await asyncio.gather(
                *(
                    c.post(f"/{route}/item{i}", headers={"Cookie": f"session={sid}"})
                    for i in range(REQUESTS)
                )
            )
        return sid, {f"item{i}": r.status_code for i, r in enumerate(responses)}

    return asyncio.run(scenario())


def test_starlette_concurrent_cart_changes_are_saved_or_refused_with_409(
    manager: SessionManager,
) -> None:
    sid, answers = starlette_at_once(manager, "add")
    check_outcome(manager, sid, answers)


def test_starlette_session_append_keeps_every_concurrent_item(manager: SessionManager) -> None:
    sid, answers = starlette_at_once(manager, "append")
    assert set(answers.values()) == {200}
    assert sorted(manager.get_session(sid)["cart"]) == sorted(answers)

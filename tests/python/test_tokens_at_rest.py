"""No store ever holds a usable session id: after web traffic with logins,
logouts and rate limits on every server store, the whole of each store (a
SQLite file with its WAL, every Redis key and value, every PostgreSQL table)
is searched for every id a cookie carried."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import flask
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pysessionmanager import RateLimiter, SessionManager
from pysessionmanager.contrib import flask as flask_sessions
from pysessionmanager.contrib import starlette as starlette_sessions

KINDS = ["sqlite", "redis", "redis-cluster", "postgres"]
COOKIE = re.compile(r"(?:^|,\s*)session=([^;]*)")


def flask_traffic(manager: SessionManager) -> set[str]:
    """Drives a Flask app through visits, logins and rate-limited calls;
    returns every session id a response set."""
    app = flask.Flask(__name__)
    flask_sessions.init_app(app, manager)
    limiter = RateLimiter("100/minute", store=manager)

    @app.post("/visit")
    def visit() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return "ok"

    @app.post("/login/<user>")
    def login(user: str) -> str:
        flask_sessions.login(user)
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        flask_sessions.logout()
        return "ok"

    @app.get("/api")
    @flask_sessions.rate_limit(limiter)
    def api() -> str:
        return "ok"

    issued: set[str] = set()
    for n in range(3):
        client = app.test_client()
        for method, path in [
            ("post", "/visit"),
            ("get", "/api"),
            ("post", f"/login/user{n}"),
            ("get", "/api"),
            ("post", "/visit"),
            ("get", "/api"),
            ("post", "/logout") if n == 0 else ("get", "/api"),
        ]:
            response = getattr(client, method)(path, base_url="https://localhost")
            assert response.status_code == 200, response.text
            issued.update(COOKIE.findall(response.headers.get("Set-Cookie", "")))
    return {token for token in issued if token}


def starlette_traffic(manager: SessionManager) -> set[str]:
    """The same through the Starlette middleware and its rate-limit dependency."""
    limiter = RateLimiter("100/minute", store=manager)
    check = starlette_sessions.rate_limit(limiter)

    async def visit(request: Request) -> PlainTextResponse:
        request.session["n"] = request.session.get("n", 0) + 1
        return PlainTextResponse("ok")

    async def login(request: Request) -> PlainTextResponse:
        await starlette_sessions.alogin(request, request.path_params["user"])
        return PlainTextResponse("ok")

    async def api(request: Request) -> PlainTextResponse:
        await check(request)
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/visit", visit, methods=["POST"]),
            Route("/login/{user}", login, methods=["POST"]),
            Route("/api", api),
        ],
        middleware=[Middleware(starlette_sessions.SessionMiddleware, manager=manager)],
    )
    issued: set[str] = set()
    for n in range(3):
        client = TestClient(app, base_url="https://testserver")
        for method, path in [
            ("post", "/visit"),
            ("get", "/api"),
            ("post", f"/login/user{n}"),
            ("get", "/api"),
            ("post", "/visit"),
        ]:
            response = getattr(client, method)(path)
            assert response.status_code == 200, response.text
            for header in response.headers.get_list("set-cookie"):
                issued.update(COOKIE.findall(header))
    return {token for token in issued if token}


def sqlite_contents(path: Path) -> bytes:
    """The database file and its WAL and shared-memory files, as stored."""
    return b"".join(
        file.read_bytes() for file in path.parent.iterdir() if file.name.startswith(path.name)
    )


def redis_contents(redis_server) -> bytes:  # type: ignore[no-untyped-def]
    """Every key name and value of the server, whatever their type."""
    client = redis_server.client()
    out: list[bytes] = []
    for key in client.keys("*"):
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                out += [field, value]
        elif kind == b"zset":
            out += client.zrange(key, 0, -1)
        elif kind == b"set":
            out += list(client.smembers(key))
        elif kind == b"list":
            out += client.lrange(key, 0, -1)
        elif kind == b"none":
            continue  # expired since KEYS listed it
        else:
            pytest.fail(f"a key of unexpected type {kind!r}: {key!r}")
    return b"\n".join(out)


def postgres_contents(url: str, postgres_server) -> bytes:  # type: ignore[no-untyped-def]
    """Every row of every table of the store's database, as text."""
    database = urlsplit(url).path.lstrip("/")
    tables = postgres_server.psql(
        "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
        "FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', "
        "'information_schema')",
        database,
    ).split()
    assert tables, "the store made no table"
    rows = [postgres_server.psql(f"SELECT t::text FROM {table} t", database) for table in tables]
    return "\n".join(rows).encode()


def forms(text: str) -> list[bytes]:
    """How a store may hold ``text``: as it is, or hex-encoded (PostgreSQL
    prints ``bytea`` columns that way)."""
    return [text.encode(), text.encode().hex().encode()]


@pytest.fixture(params=KINDS)
def store(
    request: pytest.FixtureRequest, url_of: Callable[[str], str]
) -> Iterator[tuple[SessionManager, Callable[[], bytes]]]:
    kind = request.param
    url = url_of(kind)
    manager = SessionManager(store=url)
    if kind == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        yield manager, lambda: sqlite_contents(path)
    elif kind == "redis":
        server = request.getfixturevalue("redis_server")
        yield manager, lambda: redis_contents(server)
    elif kind == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        nodes = [cluster.node(port) for port in cluster.masters()]
        yield manager, lambda: b"\n".join(redis_contents(node) for node in nodes)
    else:
        server = request.getfixturevalue("postgres_server")
        yield manager, lambda: postgres_contents(url, server)
    manager.close()


@pytest.mark.parametrize("traffic", [flask_traffic, starlette_traffic])
def test_no_store_holds_a_session_id(
    store: tuple[SessionManager, Callable[[], bytes]],
    traffic: Callable[[SessionManager], set[str]],
) -> None:
    manager, contents = store
    issued = traffic(manager)
    assert len(issued) >= 6  # a visit's id and a login's new one, per client
    held = contents()
    assert held, "the scan found nothing: it reads the wrong place"
    # The scan does see what the store holds as given: the id of a user still logged in.
    assert any(form in held for form in forms("user1"))
    leaked = [token for token in issued if any(form in held for form in forms(token))]
    assert leaked == [], f"{len(leaked)} session ids are stored as they are"

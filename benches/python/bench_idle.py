"""What a request costs whose view never reads its session, when the session
holds 20 keys: Flask (through its test client) and Starlette (the ASGI app
called directly), both on the memory store. Best of 5 runs of 2,000 requests.

    .venv/bin/python benches/python/bench_idle.py

To compare two builds, run it once with each (alternating a few times).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import flask
from bench_starlette import BIG, fill, idle  # this folder: the same endpoints
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.testclient import TestClient

from pysessionmanager import SessionManager
from pysessionmanager.contrib.flask import init_app
from pysessionmanager.contrib.starlette import SessionMiddleware

REQUESTS, RUNS = 2000, 5


def best_us(one_request: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            one_request()
        best = min(best, (time.perf_counter() - start) / REQUESTS * 1e6)
    return best


def flask_idle() -> float:
    app = flask.Flask(__name__)
    init_app(app, SessionManager(), secure=False)

    @app.post("/fill")
    def fill() -> str:
        flask.session.update(BIG)
        return "ok"

    @app.get("/idle")
    def idle() -> str:
        return "the session is not read"

    client = app.test_client()
    client.post("/fill")
    return best_us(lambda: client.get("/idle"))


async def starlette_idle() -> float:
    app = Starlette(
        routes=[Route("/fill", fill, methods=["POST"]), Route("/idle", idle)],
        middleware=[Middleware(SessionMiddleware, https_only=False)],
    )
    with TestClient(app) as client:
        client.post("/fill")
        cookie = client.cookies["session"]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/idle",
        "headers": [(b"cookie", f"session={cookie}".encode())],
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            await app(dict(scope), receive, send)
        best = min(best, (time.perf_counter() - start) / REQUESTS * 1e6)
    return best


if __name__ == "__main__":
    print(f"Flask, idle request, 20-key session: {flask_idle():.0f} µs")
    print(f"Starlette, idle request, 20-key session: {asyncio.run(starlette_idle()):.0f} µs")

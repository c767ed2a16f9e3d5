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
from bench_starlette import BIG, Visitor, ours  # this folder: its app and client

from pysessionmanager import SessionManager
from pysessionmanager.contrib.flask import init_app

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
    app, visitor = ours(None, offload=False), Visitor()
    await visitor.request(app, "/fill")
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            await visitor.request(app, "/idle")
        best = min(best, (time.perf_counter() - start) / REQUESTS * 1e6)
    return best


if __name__ == "__main__":
    print(f"Flask, idle request, 20-key session: {flask_idle():.0f} µs")
    print(f"Starlette, idle request, 20-key session: {asyncio.run(starlette_idle()):.0f} µs")

"""What the Starlette middleware costs per request, and how long it holds the
event loop, with the store awaited (the default) or called from a worker
thread.

The ASGI app is called directly (no HTTP client, no server), so the figures
are the middleware's and the store's, against two peers measured in the
same run: no session middleware at all, and Starlette's own signed-cookie
``SessionMiddleware`` (needs ``itsdangerous``; skipped without it).

    .venv/bin/python benches/python/bench_starlette.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pysessionmanager import SessionManager
from pysessionmanager.contrib.starlette import SessionMiddleware, ThreadedStore

ASGIApp = Callable[..., Any]


async def read(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(request.session.get("n")))


async def write(request: Request) -> PlainTextResponse:
    request.session["n"] = request.session.get("n", 0) + 1
    return PlainTextResponse("ok")


#: A session of 20 keys, each a small nested value, for the idle requests.
BIG = {f"key{i}": {"items": list(range(5)), "name": f"value {i}"} for i in range(20)}


async def fill(request: Request) -> PlainTextResponse:
    request.session.update(BIG)
    return PlainTextResponse("ok")


async def idle(request: Request) -> PlainTextResponse:
    return PlainTextResponse("the session is not read")


ENDPOINTS = Starlette(
    routes=[
        Route("/read", read),
        Route("/write", write),
        Route("/fill", fill),
        Route("/idle", idle),
    ]
)


async def no_sessions(scope: Any, receive: Any, send: Any) -> None:
    """The floor: a plain dict as the session, nothing loaded or saved."""
    scope["session"] = {}
    await ENDPOINTS(scope, receive, send)


def ours(store: str | None, thread_hop: bool = False) -> ASGIApp:
    middleware = SessionMiddleware(ENDPOINTS, manager=SessionManager(store=store))
    if thread_hop:
        middleware.amanager = ThreadedStore(middleware.manager)  # type: ignore[assignment]
    return middleware


def variants(folder: Path) -> dict[str, ASGIApp]:
    sqlite = f"sqlite:///{folder / 'sessions.db'}"
    found: dict[str, ASGIApp] = {"no session middleware": no_sessions}
    try:
        from starlette.middleware.sessions import SessionMiddleware as Signed

        found["starlette signed cookie"] = Signed(ENDPOINTS, secret_key="bench")
    except ImportError:  # itsdangerous is not installed
        pass
    found["ours memory (default)"] = ours(None)
    found["ours memory, thread hop"] = ours(None, thread_hop=True)
    found["ours sqlite, awaited (default)"] = ours(sqlite)
    found["ours sqlite, thread hop"] = ours(sqlite.replace(".db", "-hop.db"), thread_hop=True)
    return found


class Visitor:
    """One browser: keeps the cookie the app sets."""

    def __init__(self) -> None:
        self.cookie: bytes | None = None

    async def request(self, app: ASGIApp, path: str) -> None:
        headers = [(b"cookie", self.cookie)] if self.cookie else []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "server": ("testserver", 443),
            "client": ("127.0.0.1", 50000),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message
                for name, value in message.get("headers", []):
                    if name == b"set-cookie":
                        self.cookie = value.split(b";", 1)[0]

        await app(scope, receive, send)


async def sequential(app: ASGIApp, path: str, requests: int, first: str = "/write") -> list[float]:
    """µs of each request of one visitor, one after the other, after a
    request to ``first`` (which makes the session exist)."""
    visitor = Visitor()
    await visitor.request(app, first)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        await visitor.request(app, path)
        times.append((time.perf_counter() - start) * 1e6)
    return times


async def loop_held(app: ASGIApp, requests: int) -> list[float]:
    """µs of each event-loop step (one callback run) while one visitor
    writes: how long a request keeps the loop from serving anybody else."""
    steps: list[float] = []
    run = asyncio.events.Handle._run

    def timed_run(handle: asyncio.Handle) -> None:
        start = time.perf_counter()
        run(handle)
        steps.append((time.perf_counter() - start) * 1e6)

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]
    try:
        visitor = Visitor()
        for _ in range(requests):
            await visitor.request(app, "/write")
            await asyncio.sleep(0)  # a server yields between requests
    finally:
        asyncio.events.Handle._run = run  # type: ignore[method-assign]
    return steps


async def concurrent(app: ASGIApp, visitors: int, requests: int) -> float:
    """Writes per second from many visitors at once."""

    async def visit() -> None:
        visitor = Visitor()
        for _ in range(requests):
            await visitor.request(app, "/write")

    start = time.perf_counter()
    await asyncio.gather(*(visit() for _ in range(visitors)))
    return visitors * requests / (time.perf_counter() - start)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def main(requests: int, rounds: int, visitors: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        apps = variants(Path(folder))
        runs: dict[str, dict[str, list[float]]] = {name: {} for name in apps}
        for _ in range(rounds):  # interleaved, so drift hits every variant alike
            for name, app in apps.items():
                run = runs[name]
                run.setdefault("read", []).extend(await sequential(app, "/read", requests))
                run.setdefault("write", []).extend(await sequential(app, "/write", requests))
                idle = await sequential(app, "/idle", requests, first="/fill")
                run.setdefault("idle", []).extend(idle)
                run.setdefault("held", []).extend(await loop_held(app, requests))
                rate = await concurrent(app, visitors, requests // visitors)
                run.setdefault("rate", []).append(rate)
        print(f"{requests} requests x {rounds} rounds; µs per request (median, p99);")
        print("idle: a request that does not read its 20-key session;")
        print(f"held: longest event-loop steps, p99 and max; writes/s: {visitors} visitors at once")
        header = ("read p50", "p99", "write p50", "p99", "idle p50")
        header += ("held p99", "max", "writes/s")
        print(f"{'':31}" + "".join(f"{h:>10}" for h in header))
        for name, run in runs.items():
            row = (
                statistics.median(run["read"]),
                p99(run["read"]),
                statistics.median(run["write"]),
                p99(run["write"]),
                statistics.median(run["idle"]),
                p99(run["held"]),
                max(run["held"]),
                statistics.median(run["rate"]),
            )
            print(f"{name:31}" + "".join(f"{v:10.0f}" for v in row))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--visitors", type=int, default=8)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds, arguments.visitors))

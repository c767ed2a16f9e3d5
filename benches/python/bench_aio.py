"""The asyncio front against what it replaces and against its peers.

    .venv/bin/pip install -r benches/python/requirements-bench.txt
    taskset -c 0 .venv/bin/python benches/python/bench_aio.py

Starts its own redis-server (no persistence) and PostgreSQL on loopback,
pinned to CPU 0 like this process (design notes, section 5: a wakeup that
crosses vCPUs costs more than a Redis command). Peers are measured in the
same run, interleaved over rounds; each figure is the median of the rounds.

1. Redis, 1,000 tasks at once each doing ``get_session`` in turn: awaited
   (``AsyncSessionManager``), through a worker thread per call
   (``anyio.to_thread``, what Starlette integrations did), and raw
   ``redis.asyncio`` GETs (a pool of up to 100 connections that callers
   wait for); on asyncio's loop and on uvloop.
2. A Starlette app with the middleware on Redis, 50 visitors at once (3 reads
   to 1 write), the ASGI app called directly: Starlette's signed cookie (no
   store: the ceiling), ours awaited, ours through worker threads, and
   starsessions with its RedisStore.
3. The longest event-loop step while 1,000 ``get_session`` calls are in
   flight, on every store.
4. The memory store: an awaited call against the synchronous one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio.to_thread
import redis.asyncio
import uvloop
from bench_memory import cpu_name
from bench_starlette import ENDPOINTS, Visitor

from pysessionmanager import SessionManager
from pysessionmanager.aio import AsyncSessionManager
from pysessionmanager.contrib.starlette import SessionMiddleware, ThreadedStore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from servers_postgres import PostgresServer, require_postgres  # noqa: E402
from servers_redis import RedisServer  # noqa: E402

CPU = 0
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run(loop: str, main: Callable[[], Awaitable[Any]]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(main())


async def rate(tasks: int, each: int, call: Callable[[], Awaitable[Any]]) -> float:
    """Calls per second of ``tasks`` tasks at once, each making ``each`` calls in turn."""

    async def task() -> None:
        for _ in range(each):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(tasks)))
    return tasks * each / (time.perf_counter() - start)


def redis_gets(url: str, port: int, loop: str, each: int) -> dict[str, float]:
    async def main() -> dict[str, float]:
        am = AsyncSessionManager(store=url)
        sid = await am.create_session("bench", {"theme": "dark", "n": 1})
        sync = am.manager
        # Its default pool refuses the 101st connection; this one waits instead.
        pool = redis.asyncio.BlockingConnectionPool(port=port, max_connections=100)
        raw = redis.asyncio.Redis(connection_pool=pool)
        await raw.set("bench:raw", '{"theme": "dark", "n": 1}')
        figures = {
            "awaited": await rate(1000, each, lambda: am.get_session(sid)),
            "thread hop": await rate(
                1000, each, lambda: anyio.to_thread.run_sync(sync.get_session, sid)
            ),
            "redis.asyncio GET": await rate(1000, each, lambda: raw.get("bench:raw")),
        }
        await raw.aclose()
        return figures

    return run(loop, main)


def starlette_apps(url: str) -> dict[str, Any]:
    from starlette.middleware.sessions import SessionMiddleware as Signed
    from starsessions import SessionAutoloadMiddleware
    from starsessions import SessionMiddleware as StarSessions
    from starsessions.stores.redis import RedisStore

    hop = SessionMiddleware(ENDPOINTS, manager=SessionManager(store=url + "&prefix=hop:"))
    hop.amanager = ThreadedStore(hop.manager)  # type: ignore[assignment]
    return {
        "starlette signed cookie": Signed(ENDPOINTS, secret_key="bench"),
        "ours, awaited": SessionMiddleware(ENDPOINTS, manager=url + "&prefix=ours:"),
        "ours, thread hop": hop,
        "starsessions RedisStore": StarSessions(
            SessionAutoloadMiddleware(ENDPOINTS),
            store=RedisStore(url.split("?")[0]),
            lifetime=3600,
        ),
    }


async def visitors(app: Any, count: int, rounds: int) -> float:
    """Requests per second of ``count`` visitors at once, each making
    ``rounds`` times 3 reads and a write after a first write."""

    async def visit() -> None:
        visitor = Visitor()
        await visitor.request(app, "/write")
        for _ in range(rounds):
            for path in ("/read", "/read", "/read", "/write"):
                await visitor.request(app, path)

    start = time.perf_counter()
    await asyncio.gather(*(visit() for _ in range(count)))
    return count * (1 + 4 * rounds) / (time.perf_counter() - start)


async def longest_step(am: AsyncSessionManager, in_flight: int) -> tuple[float, float, float]:
    """µs of the p99 and longest event-loop steps while ``in_flight`` calls
    run, and the most CPU time the loop's thread spent in one step (the rest
    of a long step is the OS running the store's threads and server on the
    same CPU): clients waiting at a start line each make one call, and only
    the steps after the start are timed (not the bench's own set-up)."""
    sid = await am.create_session("bench", {"theme": "dark"})
    start_line, finished = asyncio.Event(), asyncio.Event()
    left = in_flight

    async def client() -> None:
        nonlocal left
        await start_line.wait()
        await am.get_session(sid)
        left -= 1
        if not left:
            finished.set()

    clients = [asyncio.ensure_future(client()) for _ in range(in_flight)]
    await asyncio.sleep(0)  # every client waits at the start line
    steps: list[float] = []
    cpu: list[float] = []
    run_handle = asyncio.events.Handle._run

    def timed_run(handle: asyncio.Handle) -> None:
        start, start_cpu = time.perf_counter(), time.thread_time()
        run_handle(handle)
        steps.append((time.perf_counter() - start) * 1e6)
        cpu.append((time.thread_time() - start_cpu) * 1e6)

    start_line.set()
    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]
    try:
        await finished.wait()
    finally:
        asyncio.events.Handle._run = run_handle  # type: ignore[method-assign]
    # This step, timed, also ran the rest of this function: no more work here.
    del clients
    return statistics.quantiles(steps, n=100)[98], max(steps), max(cpu)


def pin_threads(loop_cpu: int, others_cpu: int) -> None:
    """This (the loop's) thread on ``loop_cpu``, every other thread of the
    process (the engine's) on ``others_cpu``."""
    me = threading.get_native_id()
    for task in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(task), {loop_cpu if int(task) == me else others_cpu})


def memory_costs(calls: int) -> dict[str, float]:
    """µs per get_session on the memory store, synchronous and awaited."""
    am = AsyncSessionManager()
    sync = am.manager
    sid = sync.create_session("bench", {"theme": "dark", "n": 1})
    start = time.perf_counter()
    for _ in range(calls):
        sync.get_session(sid)
    sync_us = (time.perf_counter() - start) / calls * 1e6

    async def awaited() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await am.get_session(sid)
        return (time.perf_counter() - start) / calls * 1e6

    return {"sync": sync_us, "awaited": run("asyncio", awaited)}


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}


def main(quick: bool) -> None:
    os.sched_setaffinity(0, {CPU})
    scale = 10 if quick else 1
    folder = Path(tempfile.mkdtemp(prefix="bench-aio-"))
    (folder / "redis").mkdir()
    server = RedisServer(folder / "redis", launcher=["taskset", "-c", str(CPU)])
    server.start()
    postgres = PostgresServer(require_postgres())  # inherits this process's CPU
    postgres.start()
    redis_url = f"redis://127.0.0.1:{server.port}/0?prefix=bench:"
    try:
        rounds = 3
        print(f"# asyncio front, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
        print(f"# {cpu_name()}, {os.cpu_count()} vCPUs, Linux {platform.release()},")
        print(
            f"# Python {platform.python_version()}, uvloop {version('uvloop')}, "
            f"redis-py {version('redis')}, starsessions {version('starsessions')}, "
            f"Starlette {version('starlette')}; everything on CPU {CPU}"
        )
        print("\n## 1,000 tasks doing get_session on Redis (calls/s)")
        for loop in LOOPS:
            figures = median_of(
                [redis_gets(redis_url, server.port, loop, 40 // scale) for _ in range(rounds)]
            )
            ours = figures["awaited"]
            print(
                f"{loop:8} awaited {ours:8.0f}  thread hop {figures['thread hop']:8.0f} "
                f"({ours / figures['thread hop']:.2f}x)  redis.asyncio GET "
                f"{figures['redis.asyncio GET']:8.0f} ({ours / figures['redis.asyncio GET']:.2f}x)"
            )

        print("\n## Starlette on Redis, 50 visitors, 3 reads : 1 write (requests/s)")

        async def part2() -> dict[str, list[float]]:
            # One loop for all rounds: starsessions' client is bound to its first loop.
            apps = starlette_apps(redis_url)
            results: dict[str, list[float]] = {name: [] for name in apps}
            for _ in range(rounds):
                for name, app in apps.items():
                    results[name].append(await visitors(app, 50, 20 // scale))
            return results

        results = run("uvloop", part2)
        ours = statistics.median(results["ours, awaited"])
        for name, figures in results.items():
            value = statistics.median(figures)
            print(f"{name:26} {value:8.0f}  ours awaited is {ours / value:.2f}x")

        print("\n## Longest event-loop steps with 1,000 get_session in flight (us)")
        urls = {
            "memory": "memory://",
            "sqlite": f"sqlite:///{folder / 'sessions.db'}",
            "redis": redis_url,
            "postgres": postgres.url(postgres.fresh_database()),
        }
        other_cpu = max(os.sched_getaffinity(0) - {CPU}, default=CPU)
        for kind, url in urls.items():
            am = AsyncSessionManager(store=url)
            for label, loop_cpu in (("all on one CPU", CPU), ("loop on its own", other_cpu)):
                run("asyncio", lambda am=am: longest_step(am, 10))  # starts the engine's threads
                pin_threads(loop_cpu, CPU)
                held = [run("asyncio", lambda am=am: longest_step(am, 1000)) for _ in range(rounds)]
                pin_threads(CPU, CPU)
                p99 = statistics.median(h[0] for h in held)
                longest = statistics.median(h[1] for h in held)
                own = statistics.median(h[2] for h in held)
                print(
                    f"{kind:9} {label:15} p99 {p99:6.0f}  longest {longest:6.0f}  "
                    f"loop's own CPU {own:6.0f}"
                )
            am.manager.close()

        print("\n## Memory store: us per get_session (5 rounds, each sync then awaited)")
        costs = [memory_costs(200_000 // scale) for _ in range(5)]
        ratio = statistics.median(c["awaited"] / c["sync"] for c in costs)
        sync_us = statistics.median(c["sync"] for c in costs)
        awaited_us = statistics.median(c["awaited"] for c in costs)
        print(f"sync {sync_us:.2f}  awaited {awaited_us:.2f}  (median ratio {ratio:.2f}x)")
    finally:
        server.stop()
        postgres.remove()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the calls")
    main(parser.parse_args().quick)

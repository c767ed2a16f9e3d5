"""Nanoseconds per synchronous call on the memory store: what the binding
adds around the engine's cheapest calls. Run it under two builds (one
virtualenv each) to compare them.

    taskset -c 0 .venv/bin/python benches/python/bench_call_overhead.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pysessionmanager import RateLimiter, SessionManager

CALLS = 200_000


def per_call_ns(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        call()
    return (time.perf_counter() - start) / CALLS * 1e9


def best_of(rounds: int, call: Callable[[], object]) -> float:
    return min(per_call_ns(call) for _ in range(rounds))


def main() -> None:
    manager = SessionManager()
    sid = manager.create_session("u", {"a": 1})
    limiter = RateLimiter("1000000000/second")
    figures = {
        "get_session": best_of(5, lambda: manager.get_session(sid)),
        "RateLimiter.hit": best_of(5, lambda: limiter.hit("k")),
        "is_session_active": best_of(5, lambda: manager.is_session_active(sid)),
    }
    print("  ".join(f"{name} {ns:.0f} ns" for name, ns in figures.items()))


if __name__ == "__main__":
    main()

"""What counting costs: memory-store create and get with metrics on and
off, interleaved in one run so the machine's drift hits both alike. The
target is at most 10% on either.

    taskset -c 0 .venv/bin/python benches/python/bench_metrics.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from pysessionmanager import SessionManager

CALLS = 100_000
ROUNDS = 21


def per_call_ns(calls: int, call: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e9


def measure(metrics: bool) -> dict[str, float]:
    manager = SessionManager(metrics=metrics, store="memory://?sweep_interval_ms=0")
    sid = manager.create_session("u", {"a": 1})
    create = manager.create_session
    figures = {
        "create": per_call_ns(CALLS // 4, lambda: create("u", {"a": 1})),
        "get": per_call_ns(CALLS, lambda: manager.get_session(sid)),
    }
    manager.close()
    return figures


def main() -> None:
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for n in range(ROUNDS):
        # Each side goes first in every other round, so neither is always warmer.
        for metrics in (False, True) if n % 2 else (True, False):
            runs[metrics].append(measure(metrics))
    for op in ("create", "get"):
        off = statistics.median(r[op] for r in runs[False])
        on = statistics.median(r[op] for r in runs[True])
        print(f"{op:7} metrics off {off:6.0f} ns  on {on:6.0f} ns  on/off {on / off:.3f}")


if __name__ == "__main__":
    main()

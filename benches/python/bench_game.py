"""Game stats: atomic ``increment`` updates per second for 1,000 players.

    .venv/bin/python benches/python/bench_game.py [--seconds 3] [store URL ...]

Each player is a session (as in examples/game.py); threads pick players at
random and bump their score. Defaults to the memory store; pass more URLs
(``redis://...``) to compare stores in the same run.
"""

from __future__ import annotations

import argparse
import platform
import random
from collections.abc import Callable
from datetime import datetime, timezone

from threaded import ops_per_second

from pysessionmanager import SessionManager

PLAYERS = 1000


def rate(store: str, threads: int, seconds: float) -> float:
    with SessionManager(store=store) as m:
        players = [
            m.create_session("match:bench", {"player": f"p{i}", "score": 0}) for i in range(PLAYERS)
        ]

        def bumping(n: int) -> Callable[[], None]:
            pick = random.Random(n).choice
            return lambda: m.increment(pick(players), "score")

        per_second, done = ops_per_second(threads, seconds, bumping)
        assert sum(m.get_session(p)["score"] for p in players) == done, "lost updates"
        return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("stores", nargs="*", default=["memory://"])
    args = parser.parse_args()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# increments per second, {PLAYERS} players ({platform.python_version()}, {now})\n")
    print("| store | 1 thread | 8 threads |")
    print("|---|---:|---:|")
    for store in args.stores:
        one, eight = rate(store, 1, args.seconds), rate(store, 8, args.seconds)
        print(f"| {store} | {one:,.0f} | {eight:,.0f} |")


if __name__ == "__main__":
    main()

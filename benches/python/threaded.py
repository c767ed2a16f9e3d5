"""Operations per second from several threads calling one operation at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def ops_per_second(
    threads: int, seconds: float, make_op: Callable[[int], Callable[[], None]]
) -> tuple[float, int]:
    """Runs ``make_op(n)()`` in a loop on each of ``threads`` threads for
    ``seconds``, all starting together; returns the rate and the total count."""
    counts = [0] * threads
    stop = threading.Event()
    start = threading.Barrier(threads + 1)

    def work(n: int) -> None:
        op = make_op(n)
        start.wait()
        while not stop.is_set():
            op()
            counts[n] += 1

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - began), sum(counts)

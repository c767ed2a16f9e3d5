"""Waiting for something a background actor does (a sweeper, a server), by
polling against a deadline instead of sleeping a fixed time that a slow
machine may overrun."""

from __future__ import annotations

import time
from typing import Callable


def wait_until(condition: Callable[[], object], *, timeout: float, what: str) -> None:
    """Returns once ``condition()`` is true; fails the test, naming ``what``,
    if it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.02)

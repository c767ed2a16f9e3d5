"""Running Python code in a child process, as a second application would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def run_python(code: str, *args: str, timeout: float = 120) -> str:
    """Runs ``code`` (dedented) with ``args`` in a fresh interpreter; returns
    what it printed, or fails the test with what it wrote to stderr."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


HOLD_WRITE_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
"""


@contextmanager
def sqlite_write_lock(path: Path) -> Iterator[Callable[[], None]]:
    """Holds the write lock of the SQLite file at ``path`` from another
    process (POSIX locks do not exclude each other within one process, so a
    connection here would not block the store) until the block ends or the
    ``release`` it yields is called."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    stdin = child.stdin

    def release() -> None:
        if not stdin.closed:
            stdin.close()  # the child reads end of input and commits

    try:
        assert child.stdout.readline() == "locked\n"
        yield release
    finally:
        release()
        child.wait(timeout=30)
        child.stdout.close()

"""Running Python code in a child process, as a second application would."""

from __future__ import annotations

import subprocess
import sys
import textwrap


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

"""The runnable examples run, and say what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_quickstart_runs_every_step() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "6 calls at once: [True, True, True, True, True, False]" in done.stdout
    assert done.stdout.rstrip().endswith("closed cleanly after 1 session(s)")

"""Every Python block of the README runs verbatim and prints what its comments say.

A line `print(...)  # text` promises that the print writes `text`.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
PROMISE = re.compile(r"^\s*print\(.*\)\s+#\s?(.*)$")


def blocks() -> list[str]:
    """The runnable blocks; a Django settings fragment is not one (it edits
    the settings a project already has: test_django_settings.py applies it
    to a new project)."""
    return [b for b in all_blocks() if not b.startswith("# settings.py")]


def all_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_the_seed_example() -> None:
    assert any('m.create_session(user_id="12345")' in block for block in blocks())


@pytest.mark.parametrize("block", blocks(), ids=lambda b: b.strip().splitlines()[-1][:40])
def test_readme_block_runs_and_prints_what_it_says(block: str) -> None:
    promised = [m.group(1).rstrip() for m in map(PROMISE.match, block.splitlines()) if m]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
    assert out.getvalue().splitlines() == promised

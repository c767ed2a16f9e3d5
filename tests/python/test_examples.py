"""The runnable examples run, and say what they promise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from pysessionmanager import SessionManager

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


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-cluster", "postgres"])
def store(request: pytest.FixtureRequest, url_of: Callable[[str], str]) -> str:
    """Each store the examples run on, one test each."""
    return url_of(request.param)


def run_example(name: str, store: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), store],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_cart_keeps_every_item_on_every_store(store: str) -> None:
    assert run_example("cart.py", store) == [
        "laptop cart: {'tea': 3, 'mug': 1}",
        "stickers added by 8 threads x 25: 200",
        "phone cart after restore: {'tea': 3}",
    ], store


def test_game_on_every_store(store: str) -> None:
    assert run_example("game.py", store) == [
        "roster: ['ada', 'bo', 'cy', 'dee']",
        "scores: {'ada': 250, 'bo': 250, 'cy': 250, 'dee': 250}",
        "log entries: 4",
        "after dee's session expired: ['ada', 'bo', 'cy']",
        "players ended with the match: 3",
        "roster now: {}",
    ], store


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cart_refuses_bad_quantities_and_changes_nothing() -> None:
    cart = load("cart")
    with SessionManager() as m:
        sid = m.create_session("alice")
        cart.add(m, sid, "tea", 2)
        with pytest.raises(ValueError, match="at least 1, got 0"):
            cart.add(m, sid, "tea", 0)
        with pytest.raises(ValueError, match="0 or more, got -1"):
            cart.set_quantity(m, sid, "tea", -1)
        assert cart.items(m, sid) == {"tea": 2}
        cart.set_quantity(m, sid, "tea", 0)
        assert cart.items(m, sid) == {}

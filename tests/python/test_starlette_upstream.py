"""Starlette's own SessionMiddleware tests, run against ours.

The tests ship in Starlette's source distribution, not in its wheel: the
sdist of the installed version is downloaded once (into ``upstream.fetch``'s
cache), and ``tests/middleware/test_session.py`` is read from it.
Two of its import lines are replaced, each of which must be found exactly
once, so that a changed upstream file fails loudly here rather than
testing something else: ``Session`` and ``SessionMiddleware`` come from
``pysessionmanager.contrib.starlette``, and the type-only ``tests.types``
import becomes a local alias. No test is excluded.

Each test runs three ways: our middleware built exactly as the upstream
tests build Starlette's, with their client's default ``http://testserver``
(the cookie is ``Secure`` only over HTTPS by default, so plain HTTP works as
with Starlette's); the same over HTTPS; and on the SQLite store, whose calls
go through worker threads.
"""

from __future__ import annotations

import functools
import tarfile
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Literal

import pytest
from starlette.testclient import TestClient
from upstream.fetch import sdist

from pysessionmanager.contrib import starlette as ours

STARLETTE_VERSION = version("starlette")
UPSTREAM_FILE = "tests/middleware/test_session.py"
REPLACED_LINES = {
    "from starlette.middleware.sessions import Session, SessionMiddleware": (
        "from pysessionmanager.contrib.starlette import Session, SessionMiddleware"
    ),
    "from tests.types import TestClientFactory": (
        "from collections.abc import Callable\nTestClientFactory = Callable[..., TestClient]"
    ),
}


def _upstream_module() -> ModuleType:
    with tarfile.open(sdist("starlette")) as archive:
        member = archive.extractfile(f"starlette-{STARLETTE_VERSION}/{UPSTREAM_FILE}")
        assert member is not None
        source = member.read().decode()
    for line, replacement in REPLACED_LINES.items():
        found = source.splitlines().count(line)
        if found != 1:
            raise RuntimeError(f"{UPSTREAM_FILE} has {found} lines {line!r}; review this runner")
        source = source.replace(line, replacement)
    module = ModuleType("starlette_upstream_test_session")
    module.__file__ = UPSTREAM_FILE
    exec(compile(source, f"starlette-{STARLETTE_VERSION}/{UPSTREAM_FILE}", "exec"), vars(module))
    return module


upstream = _upstream_module()
assert upstream.SessionMiddleware is ours.SessionMiddleware
for _name, _test in vars(upstream).items():
    if _name.startswith("test_") and callable(_test):
        globals()[_name] = _test
UPSTREAM_TESTS = sorted(name for name in globals() if name.startswith("test_"))


@pytest.fixture(params=["as-upstream", "https", "sqlite"])
def variant(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Callable[..., Any], str]:
    """Our middleware as the upstream tests will build it, and the base URL
    their client uses when a test names none."""
    if request.param == "as-upstream":
        return ours.SessionMiddleware, "http://testserver"
    if request.param == "https":
        return ours.SessionMiddleware, "https://testserver"
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    return functools.partial(ours.SessionMiddleware, manager=store), "https://testserver"


@pytest.fixture(autouse=True)
def _use_variant(variant: tuple[Callable[..., Any], str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "SessionMiddleware", variant[0])


@pytest.fixture
def test_client_factory(
    variant: tuple[Callable[..., Any], str],
    anyio_backend_name: Literal["asyncio", "trio"],
    anyio_backend_options: dict[str, Any],
) -> Callable[..., TestClient]:
    """Starlette's fixture of the same name (tests/conftest.py), with the
    variant's base URL as the default."""
    return functools.partial(
        TestClient,
        base_url=variant[1],
        backend=anyio_backend_name,
        backend_options=anyio_backend_options,
    )


def test_runner_found_the_upstream_tests() -> None:
    # Guards against a runner that silently collects nothing.
    assert len(UPSTREAM_TESTS) >= 10, UPSTREAM_TESTS
    assert "test_session" in UPSTREAM_TESTS

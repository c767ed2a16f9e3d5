"""Shared fixtures: managers on a hand-moved clock, so expiry needs no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pysessionmanager import SessionManager
from pysessionmanager.testing import ManualClock

# Fixtures that start real servers: redis_server, redis_url, own_redis;
# redis_cluster, own_redis_cluster; postgres_server, postgres_url, own_postgres.
pytest_plugins = ["servers_redis", "servers_redis_cluster", "servers_postgres"]


@pytest.fixture
def url_of(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """The URL of a store by kind: memory, sqlite (a file of the test's own),
    redis, redis-cluster or postgres (their servers start only when a test
    asks for them)."""

    def url(kind: str) -> str:
        if kind in ("redis", "postgres"):
            return str(request.getfixturevalue(f"{kind}_url"))
        if kind == "redis-cluster":
            # Imported here: a plugin module imported before pytest loads it
            # would miss pytest's assertion rewriting.
            from servers_redis import fresh_prefix

            return str(request.getfixturevalue("redis_cluster").url(prefix=fresh_prefix()))
        return "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'store.db'}"

    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def manager(clock: ManualClock) -> SessionManager:
    m = SessionManager(expiration_time=60, clock=clock)
    yield m
    m.close()

"""Shared fixtures: managers on a hand-moved clock, so expiry needs no sleeping."""

from __future__ import annotations

import pytest

from pysessionmanager import SessionManager
from pysessionmanager.testing import ManualClock

# Fixtures that start real servers: redis_server, redis_url, own_redis;
# postgres_server, postgres_url, own_postgres.
pytest_plugins = ["servers_redis", "servers_postgres"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def manager(clock: ManualClock) -> SessionManager:
    m = SessionManager(expiration_time=60, clock=clock)
    yield m
    m.close()

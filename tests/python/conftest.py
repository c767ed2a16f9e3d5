"""Shared fixtures: managers on a hand-moved clock, so expiry needs no sleeping."""

from __future__ import annotations

import pytest

# Fixtures of the PostgreSQL test servers (postgres_server, postgres_url, own_postgres).
from servers_postgres import own_postgres, postgres_server, postgres_url  # noqa: F401

from pysessionmanager import SessionManager
from pysessionmanager.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def manager(clock: ManualClock) -> SessionManager:
    m = SessionManager(expiration_time=60, clock=clock)
    yield m
    m.close()

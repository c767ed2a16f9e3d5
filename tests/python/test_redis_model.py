"""The hypothesis model of test_model.py, run against a real redis-server.

The model's clock is moved by hand from a day ahead of the server's clock:
Redis removes records a minute past their deadlines by its own clock, so the
manager's clock must never run behind it (see the store's documentation).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import test_model
from hypothesis import settings
from servers_redis import RedisServer, fresh_prefix

_server: RedisServer | None = None


@pytest.fixture(autouse=True, scope="module")
def _model_server(redis_server: RedisServer) -> Iterator[None]:
    """Hands the shared server to the model (unittest-style classes take no
    fixtures); each example keeps to a key prefix of its own."""
    global _server
    _server = redis_server
    yield
    _server = None


class RedisModel(test_model.SessionModel):
    limit = 2
    default_absolute = 150.0
    # Writes trim their user's indexes of expired sessions but leave the
    # records for a sweep (turned off here), which reports them.
    expired_left_for_sweeps = True

    def __init__(self) -> None:
        super().__init__()
        shift_s = int(time.time()) + 86_400 - test_model.START_MS // 1000
        self.clock.advance(shift_s)
        self.now += shift_s * 1000

    def store_url(self) -> str:
        assert _server is not None
        # Sweeps by creates would remove expired records before purge_expired
        # counts them, as the memory and SQLite models turn their sweepers off.
        return _server.url(prefix=fresh_prefix(), sweep_on_create="0")


class UnlimitedRedisModel(RedisModel):
    limit = None
    default_absolute = None


TestRedis = RedisModel.TestCase
TestRedis.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestRedisUnlimited = UnlimitedRedisModel.TestCase
TestRedisUnlimited.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)

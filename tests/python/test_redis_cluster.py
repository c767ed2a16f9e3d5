"""The Redis store on a real Redis Cluster (three masters with a replica
each, on loopback): the hypothesis model of test_model.py, what a cluster
adds to the URL, and moving a standalone deployment onto a cluster."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pytest
import redis
import test_redis_model
from hypothesis import settings
from ports import free_port
from redis_layout import session_key
from servers_redis import RedisServer, fresh_prefix
from servers_redis_cluster import RedisCluster

from pysessionmanager import SessionManager, StoreError, StoreUnavailable
from pysessionmanager.cli import main

_cluster: RedisCluster | None = None


@pytest.fixture(autouse=True, scope="module")
def _model_cluster(redis_cluster: RedisCluster) -> Iterator[None]:
    """Hands the shared cluster to the model (unittest-style classes take no fixtures)."""
    global _cluster
    _cluster = redis_cluster
    yield
    _cluster = None


class ClusterModel(test_redis_model.RedisModel):
    def store_url(self) -> str:
        assert _cluster is not None
        return _cluster.url(prefix=fresh_prefix(), sweep_on_create="0")


TestCluster = ClusterModel.TestCase
TestCluster.settings = settings(max_examples=20, stateful_step_count=30, deadline=None)


def test_sessions_spread_over_the_masters_and_every_call_finds_them(
    redis_cluster: RedisCluster,
) -> None:
    prefix = fresh_prefix()
    with SessionManager(store=redis_cluster.url(prefix=prefix)) as m:
        sids = {m.create_session(f"user{i}", {"i": i}): i for i in range(90)}
        assert all(len(sid) == 46 for sid in sids)
        for sid, i in sids.items():
            assert m.get_session(sid) == {"i": i}
            m.increment(sid, "n")
        assert m.count() == 90
        some = next(iter(sids))
        new = m.rotate_session(some)
        assert m.get_session(new)["n"] == 1 and not m.is_session_active(some)
        assert [s.key for s in m.list_sessions(f"user{sids[some]}")] == [session_key(new)]
        assert m.end_user_sessions("user1") == 1
    for port in redis_cluster.masters():
        held = redis.Redis(port=port).keys(f"{prefix}s:*")
        assert len(held) > 10, f"master {port} holds a share of the sessions"


def test_bad_cluster_settings_name_the_problem(
    redis_cluster: RedisCluster, redis_server: RedisServer
) -> None:
    for prefix in ("app{", "{app}:"):
        with pytest.raises(ValueError, match="hash tag"):
            SessionManager(store=redis_cluster.url(prefix=prefix))
    with pytest.raises(ValueError, match="database 0 only"):
        SessionManager(store=redis_cluster.url().rstrip("/") + "/3")
    dead = free_port()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{dead}"):
        SessionManager(store=f"redis+cluster://127.0.0.1:{dead}?timeout_ms=500")
    assert time.monotonic() - started < 5
    with pytest.raises(StoreError, match="not in cluster mode"):
        SessionManager(store=f"redis+cluster://127.0.0.1:{redis_server.port}")


def test_a_standalone_deployment_moves_onto_a_cluster_with_everyone_logged_in(
    redis_server: RedisServer, redis_cluster: RedisCluster
) -> None:
    source = redis_server.url(prefix=fresh_prefix())
    target = redis_cluster.url(prefix=fresh_prefix())
    with SessionManager(store=source) as m:
        sids = {m.create_session(f"u{i % 13}", {"i": i}): i for i in range(400)}
    out = io.StringIO()
    assert main(["migrate", source, target], out) == 0, out.getvalue()
    assert "verified" in out.getvalue()
    with SessionManager(store=target) as m:
        assert m.count() == 400
        for sid, i in sids.items():
            assert m.get_session(sid) == {"i": i}
        assert len(m.list_sessions("u3")) == len([i for i in sids.values() if i % 13 == 3])
        assert m.end_user_sessions("u4") == len([i for i in sids.values() if i % 13 == 4])

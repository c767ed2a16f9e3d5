"""The Redis store through Sentinel: a master, a replica and three real
sentinels started by the test. The model-based store test through the
sentinels, a failover forced while threads write, and clear errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_redis_model
from hypothesis import settings
from ports import free_port
from servers_redis import (
    SENTINEL_SERVICE,
    RedisServer,
    SentinelTopology,
    fresh_prefix,
    require_redis_server,
)
from tls_pki import Pki

from pysessionmanager import SessionManager, StoreError, StoreUnavailable

_topology: SentinelTopology | None = None


@pytest.fixture(autouse=True, scope="module")
def _model_topology(sentinel_topology: SentinelTopology) -> Iterator[None]:
    global _topology
    _topology = sentinel_topology
    yield
    _topology = None


class SentinelModel(test_redis_model.RedisModel):
    def store_url(self) -> str:
        assert _topology is not None
        return _topology.url(prefix=fresh_prefix(), sweep_on_create="0")


TestSentinelModel = SentinelModel.TestCase
TestSentinelModel.settings = settings(
    max_examples=15, stateful_step_count=30, deadline=None, database=None
)


@pytest.fixture
def own_topology(tmp_path: Path) -> Iterator[SentinelTopology]:
    """A topology of the test's own, for a test that fails it over."""
    require_redis_server()
    topology = SentinelTopology(tmp_path)
    yield topology
    topology.stop()


def test_a_failover_under_writes_loses_nothing_acknowledged_after_the_switch(
    own_topology: SentinelTopology,
) -> None:
    timeout_ms, prefix = 2000, fresh_prefix()
    manager = SessionManager(store=own_topology.url(prefix=prefix, timeout_ms=str(timeout_ms)))
    acknowledged: list[tuple[float, str]] = []  # (when, session token)
    failures: list[tuple[float, BaseException]] = []
    stop = threading.Event()

    def write(n: int) -> None:
        while not stop.is_set():
            try:
                sid = manager.create_session(f"user{n}", {"n": n})
                acknowledged.append((time.monotonic(), sid))
            except (StoreError, StoreUnavailable) as e:
                failures.append((time.monotonic(), e))

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for w in writers:
        w.start()
    time.sleep(0.5)
    old_master = own_topology.master_port()
    started = time.monotonic()
    assert own_topology.sentinel_client().sentinel_failover(SENTINEL_SERVICE)
    while own_topology.master_port() == old_master:
        assert time.monotonic() - started < 30, "the sentinels did not fail over"
        time.sleep(0.02)
    switched = time.monotonic()
    failover_s = switched - started
    time.sleep(3)
    stop.set()
    for w in writers:
        w.join(timeout=30)

    assert own_topology.master_port() == own_topology.known_port[own_topology.replica.port]
    after = [sid for when, sid in acknowledged if when > switched + 0.5]
    assert len(after) > 100, "the writers went on after the failover"
    # Read from the new master itself, with a manager that never saw the old one.
    with SessionManager(store=own_topology.url(prefix=prefix)) as fresh:
        lost = [sid for sid in after if not fresh.is_session_active(sid)]
    assert lost == [], f"{len(lost)} of {len(after)} writes acknowledged after the switch are lost"
    late = [(when - switched, e) for when, e in failures if when > switched]
    assert all(delay < failover_s + timeout_ms / 1000 for delay, _ in late), late
    manager.close()


def test_an_unknown_service_or_dead_sentinels_are_clear_errors(
    sentinel_topology: SentinelTopology,
) -> None:
    url = sentinel_topology.url().replace(f"/{SENTINEL_SERVICE}/", "/no-such-master/")
    with pytest.raises(StoreError, match='knows no master "no-such-master"'):
        SessionManager(store=url)
    dead = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/m?timeout_ms=300"
    with pytest.raises(StoreUnavailable, match="no sentinel named a master"):
        SessionManager(store=dead)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1,h2", "names the master's service"),
        ("redis+sentinel://h1,/m", "no host"),
        ("redis://h1,h2/0", r"write redis\+sentinel://"),
        ("redis://h/0?sentinel_password=hunter2", "for the sentinels"),
        ("redis+sentinel://h/m?sentinel_password=%zzhunter2", "sentinel_password"),
    ],
)
def test_bad_sentinel_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        SessionManager(store=url)
    assert "hunter2" not in str(caught.value)


def test_sentinels_with_a_password_of_their_own(
    sentinel_topology: SentinelTopology, tmp_path: Path
) -> None:
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {sentinel_topology.master.port} 2\n"
        "requirepass watch-s3cret\n"
    )
    guarded = RedisServer(tmp_path, "--sentinel", config_file=conf, password="watch-s3cret")
    guarded.start()
    try:
        base = f"redis+sentinel://127.0.0.1:{guarded.port}/{SENTINEL_SERVICE}/0?prefix={fresh_prefix()}"
        with SessionManager(store=f"{base}&sentinel_password=watch-s3cret") as m:
            sid = m.create_session("alice", {"a": 1})
            assert m.get_session(sid) == {"a": 1}
        for wrong in ("", "&sentinel_password=wrong-pw"):
            with pytest.raises(StoreError, match="sentinel_password") as caught:
                SessionManager(store=f"{base}{wrong}&timeout_ms=500")
            assert "wrong-pw" not in str(caught.value)
    finally:
        guarded.stop()


def test_tls_to_the_sentinels_and_the_master(tmp_path: Path) -> None:
    require_redis_server()
    topology = SentinelTopology(tmp_path / "servers", tls=Pki.make(tmp_path / "pki"))
    try:
        with SessionManager(store=topology.url(prefix=fresh_prefix())) as m:
            sid = m.create_session("alice", {"cart": ["tea"]})
            m.append(sid, "cart", "mug")
            assert m.get_session(sid) == {"cart": ["tea", "mug"]}
        assert topology.master.client().dbsize() >= 1, "written to the master"
        other_ca = topology.url(prefix=fresh_prefix()).replace(
            str(topology.tls.ca), str(topology.tls.other_ca)
        )
        started = time.monotonic()
        with pytest.raises(StoreError, match="not signed by a CA this store trusts") as caught:
            SessionManager(store=other_ca + "&timeout_ms=5000")
        assert not isinstance(caught.value, StoreUnavailable), "a setting to fix, not a wait"
        assert time.monotonic() - started < 4, "a refused certificate is not retried"
    finally:
        topology.stop()

"""`SessionManager.stats()` and the Prometheus collector, on every store:
the figures match the operations done, sweeps are counted as expiry, and a
running app's `/metrics` says the same in Prometheus' text format."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pysessionmanager import AsyncSessionManager, SessionManager, SessionNotFound
from pysessionmanager.contrib.prometheus import SessionCollector, exposition
from pysessionmanager.testing import ManualClock

STORES = ["memory", "sqlite", "redis", "postgres"]


def do_some_work(m: SessionManager) -> None:
    """3 created, 1 logout, 1 rotation, 2 reads, 1 not found, 1 bad input."""
    a = m.create_session("alice", {"n": 1})
    b = m.create_session("alice")
    m.create_session("bob")
    m.get_session(a)
    m.end_session(b)
    m.rotate_session(a)
    with pytest.raises(SessionNotFound):
        m.get_session(a)
    with pytest.raises(ValueError):
        m.create_session("")


@pytest.mark.parametrize("kind", STORES)
def test_stats_count_the_operations_done(kind: str, url_of: Callable[[str], str]) -> None:
    with SessionManager(store=url_of(kind)) as m:
        do_some_work(m)
        stats = m.stats()
        assert stats is not None
        assert stats["created"] == 3
        assert stats["ended"] == {"logout": 1, "evicted": 0, "ended_with_user": 0}
        assert stats["rotated"] == 1
        assert stats["errors"]["invalid_input"] == 1
        assert sum(stats["errors"].values()) == 1, "not found is an answer, not an error"
        get = stats["latency"]["get"]
        assert get["count"] == 2
        assert get["buckets"][-1] == (float("inf"), 2)
        counts = [n for _, n in get["buckets"]]
        assert counts == sorted(counts), "buckets are cumulative"
        assert 0 < get["sum_seconds"] < 5
        assert get["p50_seconds"] is not None and get["p50_seconds"] <= get["p99_seconds"]
        assert stats["latency"]["increment"] == {
            "count": 0,
            "sum_seconds": 0.0,
            "buckets": [(b, 0) for b, _ in get["buckets"]],
            "p50_seconds": None,
            "p99_seconds": None,
        }


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_sessions_the_sweeper_removes_count_as_expired(
    kind: str, url_of: Callable[[str], str]
) -> None:
    clock = ManualClock(time.time())
    url = url_of(kind)
    url += ("&" if "?" in url else "?") + "sweep_interval_ms=20"
    with SessionManager(expiration_time=60, store=url, clock=clock) as m:
        for _ in range(3):
            m.create_session("alice")
        m.create_session("bob", expiration_time=600)
        clock.advance(61)
        deadline = time.monotonic() + 10
        while m.stats()["expired"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert m.stats()["expired"] == 3
        assert m.purge_expired() == 0, "the sweeper removed them already"
        assert m.count() == 1


def test_purges_count_as_expired_on_redis(url_of: Callable[[str], str]) -> None:
    clock = ManualClock(time.time())
    with SessionManager(expiration_time=60, store=url_of("redis"), clock=clock) as m:
        m.create_session("alice")
        m.create_session("alice")
        clock.advance(61)
        assert m.purge_expired() == 2
        assert m.stats()["expired"] == 2


def test_metrics_off_counts_nothing() -> None:
    with SessionManager(metrics=False) as m:
        m.create_session("alice")
        assert m.stats() is None
        assert "pysessionmanager_sessions_created_total" not in exposition(m)
        assert 'pysessionmanager_live_sessions{store="memory://"} 1' in exposition(m)
    with pytest.raises(TypeError, match="metrics"):
        SessionManager(metrics="yes")  # type: ignore[arg-type]


def test_an_async_manager_shares_its_stores_counters() -> None:
    with SessionManager() as m:
        am = AsyncSessionManager(store=m)
        m.create_session("alice")
        asyncio.run(am.create_session("bob"))
        assert m.stats()["created"] == am.stats()["created"] == 2


def test_collector_rejects_what_is_not_a_manager() -> None:
    with pytest.raises(TypeError, match="expected a SessionManager"):
        SessionCollector("redis://localhost")  # type: ignore[arg-type]


@pytest.fixture
def serve() -> Iterator[Callable[[Callable], str]]:
    """Serves a WSGI app on a loopback port; yields a starter returning its URL."""
    servers = []

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    def start(app: Callable) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize("renderer", ["prometheus_client", "exposition"])
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_running_app_exposes_the_figures_of_what_it_did(
    kind: str, renderer: str, url_of: Callable[[str], str], serve: Callable[[Callable], str]
) -> None:
    manager = SessionManager(store=url_of(kind))
    registry = CollectorRegistry()
    registry.register(SessionCollector(("web", manager)))

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/login":
            sid = manager.create_session(environ["QUERY_STRING"])
            body = sid.encode()
        elif path == "/logout":
            manager.end_session(environ["QUERY_STRING"])
            body = b"bye"
        elif renderer == "prometheus_client":
            body = generate_latest(registry)
        else:
            body = exposition(("web", manager)).encode()
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
        return [body]

    url = serve(app)
    before = scrape(url)
    store = (("store", "web"),)
    assert before[("pysessionmanager_live_sessions", store)] == 0
    sids = []
    for user in ["ann", "ann", "ben", "cat"]:
        with urllib.request.urlopen(f"{url}/login?{user}", timeout=10) as r:
            sids.append(r.read().decode())
    urllib.request.urlopen(f"{url}/logout?{sids[0]}", timeout=10).read()
    after = scrape(url)
    assert after[("pysessionmanager_sessions_created_total", store)] == 4
    logout = (("reason", "logout"), ("store", "web"))
    assert after[("pysessionmanager_sessions_ended_total", logout)] == 1
    assert after[("pysessionmanager_live_sessions", store)] == 3
    create = (("operation", "create"), ("store", "web"))
    assert after[("pysessionmanager_operation_duration_seconds_count", create)] == 4
    inf = (("le", "+Inf"), ("operation", "create"), ("store", "web"))
    assert after[("pysessionmanager_operation_duration_seconds_bucket", inf)] == 4
    assert 0 < after[("pysessionmanager_operation_duration_seconds_sum", create)] < 10
    manager.close()

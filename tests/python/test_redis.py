"""The Redis store against real redis-server processes: its keys, Redis's own
expiry, bounded indexes, one shared connection, two processes on one store,
faults (down, killed, hung, restarted, durability) and bad URLs.

Every test that takes ``redis_url`` or ``redis_server`` runs three times: on
a server named by its address, on a master the store finds through three
sentinels, and on a Redis Cluster (three masters with a replica each)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis
from ports import free_port
from redis_layout import (
    bucket,
    expiry_index,
    rate_name,
    session_key,
    session_name,
    user_index,
)
from servers_redis import RedisServer, SentinelTopology, ServerFactory, fresh_prefix
from servers_redis_cluster import RedisCluster
from waiting import wait_until

from pysessionmanager import (
    RateLimiter,
    SessionError,
    SessionManager,
    SessionNotFound,
    StoreError,
    StoreUnavailable,
)
from pysessionmanager.testing import ManualClock

Deployment = SentinelTopology | RedisCluster | None


class ClusterAsServer:
    """A cluster as these tests use a server: ``url()``, and a ``client()``
    that answers bytes and follows slots."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster

    def url(self, **options: str) -> str:
        return self.cluster.url(**options)

    def client(self) -> redis.RedisCluster:
        return self.cluster.client(decode_responses=False)


@pytest.fixture(params=["address", "sentinel", "cluster"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """How the store finds the server: by its address, through Sentinel, or
    as a cluster."""
    if request.param == "sentinel":
        return request.getfixturevalue("sentinel_topology")
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster")
    return None


@pytest.fixture
def redis_server(redis_server: RedisServer, deployment: Deployment) -> RedisServer:
    """What the test reads the store's keys from: the server (through
    Sentinel, the master), or the cluster, whose ``client()`` follows slots."""
    if isinstance(deployment, SentinelTopology):
        return deployment.master
    if isinstance(deployment, RedisCluster):
        return ClusterAsServer(deployment)  # type: ignore[return-value]
    return redis_server


@pytest.fixture
def redis_url(redis_server: RedisServer, deployment: Deployment) -> str:
    prefix = fresh_prefix()
    return deployment.url(prefix=prefix) if deployment else redis_server.url(prefix=prefix)


def ahead_clock() -> ManualClock:
    """A hand-moved clock a day ahead of the server's: Redis removes records at
    their deadlines by its own clock, so a test clock must never run behind it."""
    return ManualClock(float(int(time.time()) + 86_400))


def ms(moment: object) -> int:
    return round(moment.timestamp() * 1000)  # type: ignore[attr-defined]


# --- keys -----------------------------------------------------------------------


def test_keys_are_the_prefix_and_the_token_hash_never_the_token(
    redis_server: RedisServer,
) -> None:
    prefix = fresh_prefix()
    with SessionManager(store=redis_server.url(prefix=prefix)) as m:
        tokens = [m.create_session("alice", {"n": 1}), m.create_session("bob")]
        RateLimiter("5/minute", store=m).hit("api:alice")
    r = redis_server.client()
    keys = sorted(k.decode() for k in r.scan_iter(match=f"{prefix}*"))
    for token, user in zip(tokens, ("alice", "bob"), strict=True):
        assert session_name(prefix, token, user) in keys
        assert user_index(prefix, user) in keys and user_index(prefix, user, "uc") in keys
        assert expiry_index(prefix, user) in keys
    assert rate_name(prefix, "api:alice") in keys, "the limited key's state, apart"
    assert len(keys) == 9, keys
    # Each key is the prefix, a tag, a bucket, then hex digits (a hash, a user
    # id): nothing else.
    tags = ("s", "ue", "uc", "r", "x")
    for k in keys:
        tag, rest = k.split(prefix, 1)[1].split(":", 1)
        assert tag in tags and rest.startswith("{"), k
        number, digits = rest[1:].split("}")
        assert int(number) < 1024 and all(c in "0123456789abcdef" for c in digits), k
    everything = (
        b"".join(b"".join(r.hgetall(k).values()) if r.type(k) == b"hash" else b"" for k in keys)
        + "".join(keys).encode()
    )
    for token in tokens:
        assert token.encode() not in everything


def test_other_data_in_the_same_database_is_left_alone(redis_server: RedisServer) -> None:
    prefix = fresh_prefix()
    r = redis_server.client()
    foreign = {
        "s:" + "0" * 64: "a",
        prefix[:-1]: "b",
        f"other{prefix}s:x": "c",
        "u:alice": "d",
    }
    for key, value in foreign.items():
        r.set(key, value)
    clock = ahead_clock()
    with (
        SessionManager(expiration_time=60, clock=clock, store=redis_server.url(prefix=prefix)) as m,
        SessionManager(clock=clock, store=redis_server.url(prefix=fresh_prefix())) as other,
    ):
        sid = m.create_session("alice")
        other.create_session("alice")
        assert m.count() == 1 and other.count() == 1
        assert [s.key for s in m.list_sessions("alice")] == [session_key(sid)]
        m.end_user_sessions("alice")
        m.create_session("alice")
        clock.advance(61)
        assert m.purge_expired() == 1
        assert other.count() == 1, "a purge only touches its own prefix"
    assert [r.get(k) for k in foreign] == [v.encode() for v in foreign.values()]


# --- expiry ----------------------------------------------------------------------

#: How long past its expiry Redis keeps a record for a sweep to report it.
KEPT_MS = 60_000


def test_redis_removes_an_expired_record_by_itself_and_nothing_revives_it(
    redis_url: str, redis_server: RedisServer
) -> None:
    r = redis_server.client()
    prefix = redis_url.split("prefix=")[1]
    # A clock 58 s behind the server's: the record expires at once by it, and
    # Redis's own removal, KEPT_MS on, comes a few seconds from now.
    clock = ManualClock(time.time() - 58)
    with SessionManager(expiration_time=2, clock=clock, store=redis_url) as m:
        sid = m.create_session("alice", {"a": 1})
        key = session_name(prefix, sid, "alice")
        info = m.session_info(sid)
        assert r.pexpiretime(key) == ms(info.expires_at) + KEPT_MS
        assert r.exists(user_index(prefix, "alice")) == 0, "gone at its expiry by Redis's clock"
        clock.advance(2)
        with pytest.raises(SessionNotFound):
            m.touch(sid)
        with pytest.raises(SessionNotFound):
            m.update_session(sid, {"b": 2})
        assert m.count() == 0 and m.list_sessions("alice") == []
        assert r.pexpiretime(key) == ms(info.expires_at) + KEPT_MS, "nothing moved it"
        wait_until(lambda: r.exists(key) == 0, timeout=15, what="Redis to remove the record")
        with pytest.raises(SessionNotFound):
            m.touch(sid)
        assert r.exists(key) == 0, "nothing brought it back"


def test_activity_moves_the_ttls_forward_never_back(
    redis_url: str, redis_server: RedisServer
) -> None:
    r = redis_server.client()
    prefix = redis_url.split("prefix=")[1]
    clock = ahead_clock()
    with SessionManager(expiration_time=60, clock=clock, store=redis_url) as m:
        sid = m.create_session("alice")
        long = m.create_session("alice", expiration_time=600)
        key = session_name(prefix, sid, "alice")
        first = ms(m.session_info(sid).expires_at)
        assert r.pexpiretime(key) == first + KEPT_MS
        clock.advance(40)
        m.touch(sid)
        moved = ms(m.session_info(sid).expires_at)
        assert moved == first + 40_000 and r.pexpiretime(key) == moved + KEPT_MS
        assert r.pexpiretime(user_index(prefix, "alice")) == ms(m.session_info(long).expires_at), (
            "the user index lives as long as the user's longest session"
        )
        assert r.zscore(expiry_index(prefix, "alice"), session_key(sid)) == moved
        assert r.zscore(user_index(prefix, "alice"), session_key(sid)) == moved


# --- bounded indexes ---------------------------------------------------------------


#: Idle timeout of the sessions made to expire below: long enough that making
#: a batch of them never outlasts it, short enough to wait out.
TTL = 1.0


def sleep_past_ttl() -> None:
    """Sleeps until every session made before the call has expired."""
    time.sleep(TTL + 0.1)


def test_the_user_index_is_trimmed_on_writes_and_expires_with_its_last_session(
    redis_url: str, redis_server: RedisServer
) -> None:
    r = redis_server.client()
    prefix = redis_url.split("prefix=")[1]
    index = user_index(prefix, "alice")
    with SessionManager(expiration_time=TTL, store=redis_url) as m:
        for _ in range(20):
            m.create_session("alice")
        assert r.zcard(index) == 20
        wait_until(lambda: r.exists(index) == 0, timeout=10, what="the abandoned index to expire")

        keeper = m.create_session("alice", expiration_time=600)
        for _ in range(20):
            m.create_session("alice")
        sleep_past_ttl()
        assert r.zcard(index) == 21, "nothing trimmed it yet: no write since"
        newest = m.create_session("alice", expiration_time=600)
        assert sorted(x.decode() for x in r.zrange(index, 0, -1)) == sorted(
            [session_key(keeper), session_key(newest)]
        ), "the next write trimmed the expired members"


def test_the_expiry_index_is_swept_by_creates(redis_url: str, redis_server: RedisServer) -> None:
    r = redis_server.client()
    prefix = redis_url.split("prefix=")[1]
    # Each bucket has its own index, which its creates sweep: users who share one.
    users = [u for u in (f"user{i}" for i in range(200_000)) if bucket(u) == bucket("user0")]
    index = expiry_index(prefix, "user0")
    with SessionManager(expiration_time=TTL, store=redis_url) as m:
        for user in users[:100]:
            m.create_session(user)
        sleep_past_ttl()
        assert r.zcard(index) == 100, "expired entries wait for a sweep"
        assert m.count() == 0
        for user in users[:20]:
            m.create_session(user, expiration_time=600)
        assert r.zcard(index) == 20, "each create swept a few expired entries"
        assert m.count() == 20


def test_count_counts_like_the_memory_store(redis_url: str) -> None:
    clocks = [ahead_clock(), ahead_clock()]
    managers = [
        SessionManager(expiration_time=60, clock=clocks[0], store="memory://?sweep_interval_ms=0"),
        SessionManager(expiration_time=60, clock=clocks[1], store=redis_url),
    ]
    seen: list[list[int]] = []
    for m, clock in zip(managers, clocks, strict=True):
        limiter = RateLimiter("10/minute", store=m)
        counts = [m.count()]
        sid = m.create_session("alice")
        m.create_session("bob", expiration_time=10)
        m.create_session("carol", expiration_time=600)
        assert limiter.hit("api:alice")
        counts.append(m.count())
        m.end_session(sid)
        counts.append(m.count())
        clock.advance(11)
        counts.append(m.count())
        m.purge_expired()
        counts.append(m.count())
        clock.advance(3600)
        counts.append(m.count())
        seen.append(counts)
        m.close()
    assert seen[0] == seen[1]
    # The rate-limit state is no session: it never counts.
    assert seen[1] == [0, 3, 2, 1, 1, 0]


def test_no_command_walks_the_keyspace(own_redis: ServerFactory) -> None:
    server = own_redis()
    server.start()
    clock = ahead_clock()
    with SessionManager(expiration_time=60, clock=clock, store=server.url()) as m:
        sids = [m.create_session(f"user{i % 3}", {"i": i}) for i in range(30)]
        m.update_session(sids[0], {"x": 1})
        m.increment(sids[1], "n")
        m.rotate_session(sids[2])
        m.list_sessions("user0")
        m.end_user_sessions("user1")
        m.count()
        clock.advance(61)
        m.purge_expired()
        m.count()
        RateLimiter("1/second", store=m).hit("k")
    stats = server.client().info("commandstats")
    assert "cmdstat_evalsha" in stats
    assert not [name for name in stats if name in ("cmdstat_keys", "cmdstat_scan")]


# --- one multiplexed connection, the GIL released ------------------------------------


def test_threads_share_one_connection(own_redis: ServerFactory) -> None:
    server = own_redis()
    server.start()
    with SessionManager(store=server.url()) as m:
        sid = m.create_session("alice", {"n": 0})
        errors: list[BaseException] = []

        def work(k: int) -> None:
            try:
                for i in range(200):
                    m.increment(sid, "n")
                    assert m.get_session(m.create_session(f"u{k}", {"i": i}))["i"] == i
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert m.get_session(sid)["n"] == 1600
        clients = server.client().client_list()
        ours = [c for c in clients if c["cmd"] != "client|list"]
        assert len(ours) == 1, clients


def test_the_gil_is_released_while_waiting_and_a_hung_server_times_out(
    own_redis: ServerFactory,
) -> None:
    server = own_redis()
    server.start()
    m = SessionManager(store=server.url(timeout_ms="1000"))
    sid = m.create_session("alice")
    outcome: list[object] = []

    def call() -> None:
        started = time.monotonic()
        try:
            m.get_session(sid)
            outcome.append("answered")
        except BaseException as e:  # noqa: BLE001 - checked below
            outcome.append(e)
        outcome.append(time.monotonic() - started)

    os.kill(server.pid(), signal.SIGSTOP)
    try:
        waiter = threading.Thread(target=call)
        waiter.start()
        spins = 0
        while waiter.is_alive():
            spins += 1
        waiter.join()
    finally:
        os.kill(server.pid(), signal.SIGCONT)
    error, elapsed = outcome
    assert isinstance(error, StoreUnavailable), error
    assert "did not answer within 1000 ms" in str(error)
    assert 0.9 < elapsed < 3.0
    assert spins > 10_000, "this thread ran while the other waited on the server"
    assert m.get_session(sid) == {}, "the same manager works once the server answers again"
    m.close()


# Two processes on one store: tests/python/test_shared_stores.py, for every shared store.


# --- faults ---------------------------------------------------------------------------


def test_a_server_that_is_not_running_is_unavailable_within_the_timeout() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        SessionManager(store=f"redis://127.0.0.1:{port}/0?timeout_ms=2000")
    assert time.monotonic() - started < 2.5
    assert isinstance(caught.value, ConnectionError) and isinstance(caught.value, SessionError)
    assert f"cannot connect to Redis at 127.0.0.1:{port}/0" in str(caught.value)


def test_killed_mid_load_fails_fast_and_the_same_manager_works_after_a_restart(
    own_redis: ServerFactory,
) -> None:
    server = own_redis("--appendonly", "yes", "--appendfsync", "always")
    server.start()
    m = SessionManager(store=server.url(timeout_ms="1000"))
    acknowledged: list[str] = []
    failures: list[tuple[BaseException, float]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                sid = m.create_session("alice", {"n": len(acknowledged)})
                acknowledged.append(sid)
            except BaseException as e:  # noqa: BLE001 - checked below
                failures.append((e, time.monotonic() - started))
                time.sleep(0.01)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acknowledged) >= 200, timeout=30, what="200 creates")
    server.kill()
    time.sleep(1.5)
    assert failures, "calls failed while the server was down"
    assert all(isinstance(e, StoreUnavailable) for e, _ in failures), failures[:3]
    assert max(took for _, took in failures) < 1.5, "no call hung past the timeout"
    down_count = len(acknowledged)
    server.start()
    wait_until(
        lambda: len(acknowledged) > down_count, timeout=30, what="creates to work after the restart"
    )
    stop.set()
    for t in threads:
        t.join(timeout=5)
        assert not t.is_alive(), "a store call hung"
    assert len(acknowledged) > down_count, "the same manager worked again after the restart"
    missing = [sid for sid in acknowledged if not m.is_session_active(sid)]
    assert not missing, f"{len(missing)} acknowledged creates lost"
    m.close()


def test_a_restart_while_the_manager_sat_idle_goes_unnoticed(own_redis: ServerFactory) -> None:
    server = own_redis("--appendonly", "yes", "--appendfsync", "always")
    server.start()
    with SessionManager(store=server.url()) as m:
        sid = m.create_session("alice", {"a": 1})
        for n in range(1, 4):
            server.kill()
            server.start()
            # The first call after the restart already works: the store saw
            # the old connection closed before sending anything on it.
            assert m.get_session(sid) == {"a": n}
            m.update_session(sid, {"a": n + 1})


CREATOR = """
import sys
from pysessionmanager import SessionManager, StoreError
m = SessionManager(store=sys.argv[1])
i = 0
while True:
    try:
        sid = m.create_session("alice", {"i": i, "pad": "x" * 200})
    except StoreError:
        break
    print(sid, i, flush=True)
    i += 1
"""


def test_no_acknowledged_create_is_lost_when_the_server_is_killed(
    own_redis: ServerFactory,
) -> None:
    server = own_redis("--appendonly", "yes", "--appendfsync", "always")
    server.start()
    url = server.url(timeout_ms="2000")
    creator = subprocess.Popen(
        [sys.executable, "-c", CREATOR, url], stdout=subprocess.PIPE, text=True
    )
    assert creator.stdout is not None
    lines = [creator.stdout.readline() for _ in range(300)]
    server.kill()
    out, _ = creator.communicate(timeout=60)
    lines += out.splitlines()
    acknowledged = dict(line.split() for line in lines if line.strip())
    assert len(acknowledged) >= 300
    server.start()
    with SessionManager(store=url) as m:
        for sid, i in acknowledged.items():
            assert m.get_session(sid)["i"] == int(i)
        assert m.count() >= len(acknowledged)


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://", "no host"),
        ("redis://127.0.0.1:notaport/0", "port must be a number"),
        ("redis://127.0.0.1:6379/zero", "database after the host must be a number like /0"),
        ("redis://127.0.0.1:6379/0?colour=blue", 'unknown redis:// option "colour"'),
        ("redis://127.0.0.1:6379/0?timeout_ms=-5", "timeout_ms"),
        ("redis://127.0.0.1:6379/0?prefix=", "prefix must not be empty"),
        ("redis://127.0.0.1:6379/0?sweep_interval_ms=soon", "must be a whole number"),
        ("redis://127.0.0.1:6379/0?sweep_interval_ms=60000", "must be at most 30000"),
        ("redis://:hunter2@127.0.0.1:6379/0?password=hunter2", "not read from the query"),
        ("rediss://:hunter2@127.0.0.1:6380/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        SessionManager(store=url)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_wrong_or_missing_password_is_a_clear_error_that_never_shows_it(
    own_redis: ServerFactory,
) -> None:
    server = own_redis(password="right-horse-battery")
    server.start()
    with pytest.raises(StoreError) as caught:
        SessionManager(store=server.url(password="wrong-horse-staple"))
    assert not isinstance(caught.value, StoreUnavailable), "retrying would not help"
    assert "refused the user name or password" in str(caught.value)
    assert "wrong-horse-staple" not in str(caught.value)
    with pytest.raises(StoreError) as caught:
        SessionManager(store=server.url())
    assert "requires a password and none was given" in str(caught.value)
    url = server.url(password="right-horse-battery")
    with SessionManager(store=url) as m:
        assert m.get_session(m.create_session("alice", {"a": 1})) == {"a": 1}
        assert "right-horse-battery" not in repr(m)
        assert ":***@" in repr(m)


def test_a_database_that_does_not_exist_is_a_clear_error(own_redis: ServerFactory) -> None:
    redis_server = own_redis()
    redis_server.start()
    with pytest.raises(StoreError) as caught:
        SessionManager(store=redis_server.url(db=99))
    assert f"Redis at 127.0.0.1:{redis_server.port}/99 has no database 99" in str(caught.value)
    with SessionManager(store=redis_server.url(db=3, prefix=fresh_prefix())) as m:
        sid = m.create_session("alice")
        assert m.is_session_active(sid)

"""The PostgreSQL store through the Python package: URLs, two processes on one
database, the sweeper, schema versions, and clear errors for bad input."""

from __future__ import annotations

import threading
import time

import pytest
from servers_postgres import PASSWORD, PostgresServer

from pysessionmanager import (
    RateLimiter,
    SessionConflict,
    SessionLimitExceeded,
    SessionManager,
    SessionNotFound,
    StoreError,
)
from pysessionmanager.testing import ManualClock


def rows(server: PostgresServer, url: str) -> int:
    """Rows in the sessions table, live or not, as PostgreSQL counts them."""
    database = url.rsplit("/", 1)[1].split("?")[0]
    return int(server.psql("SELECT count(*) FROM pysessionmanager_sessions", database))


def test_every_operation_round_trips(postgres_url: str) -> None:
    data = {"z": 1, "a": [1.5, -0.0, 1e-07, 2**63 - 1], "é": {"nested": None}, "t": True}
    with SessionManager(store=postgres_url) as m:
        sid = m.create_session("alice", data)
        s = m.get_session(sid)
        assert s == data and list(s) == ["z", "a", "é", "t"], "data and key order kept"
        assert repr(s["a"][2]) == "1e-07" and str(s["a"][1]) == "-0.0", "numbers kept exactly"
        assert s.user_id == "alice" and s.version == 1
        m.update_session(sid, {"z": 2})
        assert m.increment(sid, "hits") == 1
        with pytest.raises(SessionConflict):
            m.set_session_data(sid, {"x": 1}, expected_version=1)
        version = m.get_session(sid).version
        assert m.set_session_data(sid, {"x": 1}, expected_version=version) == version + 1
        new = m.rotate_session(sid)
        assert not m.is_session_active(sid)
        assert m.get_session(new) == {"x": 1}
        other = m.create_session("alice")
        assert [s.user_id for s in m.list_sessions("alice")] == ["alice", "alice"]
        assert m.end_user_sessions("alice", except_session=other) == 1
        assert m.count() == 1
        m.end_session(other)
        with pytest.raises(SessionNotFound):
            m.get_session(other)
        assert m.count() == 0


def test_nul_in_data_and_rate_limits(postgres_url: str) -> None:
    """NUL survives in data (JSON escapes it) and in the rate limiter's records,
    whose reserved user ids hold NUL (kept as bytes: text columns cannot)."""
    with SessionManager(store=postgres_url) as m:
        sid = m.create_session("alice", {"k\x00": "v\x00"})
        assert m.get_session(sid) == {"k\x00": "v\x00"}
        limiter = RateLimiter("2/minute", store=m)
        assert [limiter.hit("api:alice").allowed for _ in range(3)] == [True, True, False]


def test_user_limit_holds_across_managers(postgres_url: str) -> None:
    """Two managers (as two processes would) share one per-user limit: rounds of
    8 threads creating at the same moment never leave more than the limit."""
    with (
        SessionManager(store=postgres_url, max_sessions_per_user=2, on_limit="reject") as a,
        SessionManager(store=postgres_url, max_sessions_per_user=2, on_limit="reject") as b,
    ):
        managers = [a, b] * 4
        # Timeouts: a failing round must fail the test, never hang it.
        start = threading.Barrier(len(managers) + 1, timeout=60)
        done = threading.Barrier(len(managers) + 1, timeout=60)
        rejected: list[int] = []
        failures: list[BaseException] = []

        def create(m: SessionManager) -> None:
            for _ in range(20):
                try:
                    start.wait()
                except threading.BrokenBarrierError:
                    return
                try:
                    m.create_session("alice")
                except SessionLimitExceeded:
                    rejected.append(1)
                except Exception as e:  # reported below
                    failures.append(e)
                done.wait()

        threads = [threading.Thread(target=create, args=(m,)) for m in managers]
        for t in threads:
            t.start()
        for _ in range(20):
            start.wait()
            done.wait()
            live = len(a.list_sessions("alice"))
            a.end_user_sessions("alice")
            if live != 2 or failures:
                start.abort()  # release the threads
                break
        for t in threads:
            t.join()
        assert not failures, failures[:3]
        assert live == 2, f"{live} sessions under a limit of 2"
        assert len(rejected) == 20 * (len(managers) - 2)


def test_eight_threads_share_one_manager(postgres_url: str) -> None:
    with SessionManager(store=postgres_url) as m:
        sid = m.create_session("alice")
        failures: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(50):
                    m.increment(sid, "n")
                    m.get_session(sid)
            except BaseException as e:  # reported below
                failures.append(e)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
        assert m.get_session(sid)["n"] == 400


def test_expired_rows_are_swept_by_the_store_on_the_managers_clock(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    clock = ManualClock(1_700_000_000.0)
    url = postgres_url + "?sweep_interval_ms=50"
    with SessionManager(expiration_time=60, store=url, clock=clock) as m:
        for i in range(30):
            m.create_session(f"u{i}")
        keep = m.create_session("keeper", expiration_time=600)
        time.sleep(0.3)
        assert rows(postgres_server, url) == 31, "nothing is swept before it expires"
        clock.advance(61)
        deadline = time.monotonic() + 10
        while rows(postgres_server, url) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows(postgres_server, url) == 1, "the sweeper removed the expired rows"
        assert m.get_session(keep).user_id == "keeper"


def test_an_expired_session_is_never_returned_before_the_sweep(postgres_url: str) -> None:
    clock = ManualClock(1_700_000_000.0)
    url = postgres_url + "?sweep_interval_ms=0"
    with SessionManager(expiration_time=60, sliding=False, store=url, clock=clock) as m:
        sid = m.create_session("alice")
        clock.advance(60)
        with pytest.raises(SessionNotFound):
            m.get_session(sid)
        assert m.count() == 0 and m.purge_expired() == 1


def test_tables_from_a_newer_version_are_refused(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    SessionManager(store=postgres_url).close()
    database = postgres_url.rsplit("/", 1)[1]
    postgres_server.psql(
        "UPDATE pysessionmanager_meta SET value = 99 WHERE name = 'schema_version'", database
    )
    with pytest.raises(StoreError, match=r"newer pysessionmanager \(schema version 99"):
        SessionManager(store=postgres_url)
    postgres_server.psql(
        "UPDATE pysessionmanager_meta SET value = 3 WHERE name = 'schema_version'", database
    )
    SessionManager(store=postgres_url).close()


# Back from this release's tables (version 3) to version 2: rate-limit
# state kept as session rows, and user ids as bytes.
TO_VERSION_2 = (
    "DROP TABLE pysessionmanager_rate_limits; "
    "ALTER TABLE pysessionmanager_sessions ALTER COLUMN user_id TYPE bytea "
    "USING convert_to(user_id, 'UTF8'); "
    "UPDATE pysessionmanager_meta SET value = 2 WHERE name = 'schema_version'; "
)
# Version 1 is version 2 without the index of a user's sessions by expiry.
TO_VERSION_1 = (
    "DROP INDEX pysessionmanager_sessions_by_user_expiry; "
    "UPDATE pysessionmanager_meta SET value = 1 WHERE name = 'schema_version'; "
)


@pytest.mark.parametrize("version", [1, 2])
def test_tables_of_earlier_versions_are_migrated_forward(
    postgres_server: PostgresServer, postgres_url: str, version: int
) -> None:
    with SessionManager(store=postgres_url) as m:
        sid = m.create_session("alice", {"keep": True})
        m.create_session("bob")
    database = postgres_url.rsplit("/", 1)[1]
    # A rate-limit record as version 2 kept it: a session whose user id starts with NUL.
    rate_row = (
        "INSERT INTO pysessionmanager_sessions SELECT decode(repeat('ab', 32), 'hex'), "
        "'\\x00726174650061'::bytea, data, version, created_at_ms, last_active_ms, "
        "expires_at_ms, idle_timeout_ms, sliding, absolute_expires_at_ms "
        "FROM pysessionmanager_sessions LIMIT 1; "
    )
    postgres_server.psql(TO_VERSION_2 + rate_row + (TO_VERSION_1 if version == 1 else ""), database)
    assert postgres_server.psql("SELECT count(*) FROM pysessionmanager_sessions", database) == "3"
    with SessionManager(store=postgres_url) as m:
        assert m.get_session(sid) == {"keep": True}
        assert m.count() == 2, "the rate-limit row is gone, the sessions stay"
        assert [s.user_id for s in m.list_sessions("bob")] == ["bob"]
    found = postgres_server.psql(
        "SELECT value FROM pysessionmanager_meta WHERE name = 'schema_version'; "
        "SELECT indexname FROM pg_indexes WHERE indexname LIKE '%by_user_expiry'; "
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'pysessionmanager_sessions' AND column_name = 'user_id'; "
        "SELECT to_regclass('pysessionmanager_rate_limits') IS NOT NULL",
        database,
    )
    assert found.split() == ["3", "pysessionmanager_sessions_by_user_expiry", "text", "t"]


def test_a_foreign_sessions_table_is_refused_untouched(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    postgres_server.psql(
        "CREATE TABLE pysessionmanager_sessions (id int); INSERT INTO pysessionmanager_sessions "
        "VALUES (7)",
        database,
    )
    with pytest.raises(StoreError, match="not pysessionmanager's"):
        SessionManager(store=postgres_url)
    assert postgres_server.psql("SELECT id FROM pysessionmanager_sessions", database) == "7"


def test_a_schema_of_its_own_via_options(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_schema_url()
    with SessionManager(store=url) as m:
        m.create_session("alice")
    schema = url.split("search_path%3D")[1]
    assert postgres_server.psql(f"SELECT count(*) FROM {schema}.pysessionmanager_sessions") == "1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://app:hunter2@127.0.0.1:notaport/app", "invalid PostgreSQL store URL"),
        ("postgresql://app:hunter2@127.0.0.1/app?pool=3", 'unknown postgresql:// option "pool"'),
        ("postgresql://app:hunter2@127.0.0.1/app?timeout_ms=0", "timeout_ms must be milliseconds"),
        ("postgresql://127.0.0.1/app", "names no user"),
        ("postgresql://app:hunter2@127.0.0.1/app?sslmode=verify", "sslmode must be"),
    ],
)
def test_malformed_urls_are_clear_value_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        SessionManager(store=url)
    assert "hunter2" not in str(info.value)


def test_a_wrong_password_names_the_user_never_the_password(
    postgres_server: PostgresServer,
) -> None:
    postgres_server.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN "
        "CREATE ROLE app LOGIN; END IF; END $$; ALTER ROLE app PASSWORD 'right-pw'"
    )
    url = f"postgresql://app:wrong-pw-123@127.0.0.1:{postgres_server.port}/postgres"
    with pytest.raises(StoreError, match='password authentication failed for user "app"') as info:
        SessionManager(store=url)
    assert "wrong-pw-123" not in str(info.value) and "right-pw" not in str(info.value)
    no_password = f"postgresql://app@127.0.0.1:{postgres_server.port}/postgres"
    with pytest.raises(StoreError, match="password missing"):
        SessionManager(store=no_password)
    right = f"postgresql://app:right-pw@127.0.0.1:{postgres_server.port}/postgres"
    with pytest.raises(StoreError, match="permission denied for schema public") as info:
        SessionManager(store=right)  # PostgreSQL 15+: only the owner creates in public
    assert "right-pw" not in str(info.value)


def test_a_missing_database_is_named(postgres_server: PostgresServer) -> None:
    url = postgres_server.url("no_such_db")
    with pytest.raises(StoreError, match='database "no_such_db" does not exist') as info:
        SessionManager(store=url)
    assert PASSWORD not in str(info.value)


def test_the_manager_shows_the_url_without_its_password(postgres_url: str) -> None:
    with SessionManager(store=postgres_url) as m:
        assert PASSWORD not in repr(m) and PASSWORD not in m.store
        assert "postgres:***@127.0.0.1" in m.store
    # libpq also takes the password as an option.
    user_part, rest = postgres_url.split("://", 1)[1].split("@", 1)
    as_option = f"postgresql://{user_part.split(':')[0]}@{rest}"
    as_option += ("&" if "?" in as_option else "?") + f"password={PASSWORD}"
    with SessionManager(store=as_option) as m:
        assert PASSWORD not in repr(m) and PASSWORD not in m.store
        assert "password=***" in m.store

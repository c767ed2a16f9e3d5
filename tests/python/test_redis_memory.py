"""A Redis server out of memory (``maxmemory`` with the default
``noeviction``): writes that add data are refused with a clear error and
leave nothing half-written, while logging out and sweeping still work."""

from __future__ import annotations

import pytest
from servers_redis import ServerFactory

from pysessionmanager import RateLimiter, SessionManager, StoreError

PAYLOAD = {"blob": "x" * 2000}


def fill(manager: SessionManager, attempts: int = 20_000) -> tuple[list[str], StoreError]:
    """Creates 2 kB sessions until the server refuses; returns those created
    and the refusal."""
    created: list[str] = []
    for i in range(attempts):
        try:
            created.append(manager.create_session(f"user{i % 50}", PAYLOAD))
        except StoreError as refused:
            return created, refused
    pytest.fail(f"{attempts} creates of 2 kB were all acknowledged under maxmemory 3mb")


def test_a_full_server_refuses_writes_clearly_and_keeps_logout(own_redis: ServerFactory) -> None:
    server = own_redis("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    server.start()
    client = server.client()
    with SessionManager(store=server.url()) as m:
        created, refused = fill(m)
        assert "out of memory" in str(refused)
        used = int(client.info("memory")["used_memory"])
        assert used < 4 * 1024 * 1024, used  # stopped near the limit, not at 64 MB

        # Nothing half-written: every acknowledged session is whole and
        # counted, and no record exists beyond them.
        assert m.count() == len(created)
        assert len(client.keys("sessionmanager:s:*")) == len(created)
        assert m.get_session(created[-1])["blob"] == PAYLOAD["blob"]

        # Other writes that add data are refused too, changing nothing.
        for write in (
            lambda: m.update_session(created[0], {"more": "y" * 2000}),
            lambda: m.set_session_data(created[0], {"blob": "z" * 4000}),
            lambda: m.rotate_session(created[0]),
        ):
            with pytest.raises(StoreError, match="out of memory"):
                write()
        assert m.get_session(created[0])["blob"] == PAYLOAD["blob"]

        # Logging out frees memory, and works on a full server.
        for sid in created[: len(created) // 2]:
            m.end_session(sid)
        m.end_user_sessions("user1")
        assert not m.is_session_active(created[0])
        # ...after which creating works again.
        m.create_session("after", PAYLOAD)


def test_a_full_server_refuses_rate_limit_state_without_corrupting_it(
    own_redis: ServerFactory,
) -> None:
    server = own_redis("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    server.start()
    with SessionManager(store=server.url()) as m:
        limiter = RateLimiter("5/minute", store=m)
        assert limiter.hit("k").allowed
        fill(m)
        # A key it already tracks is a compare-and-set of a small record; a
        # refusal is an error, never a silent "allowed".
        try:
            result = limiter.hit("k")
        except StoreError as e:
            assert "out of memory" in str(e)
        else:
            assert result.remaining == 3

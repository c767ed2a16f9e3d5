"""Export and import from Python: how a memory store's sessions move to a
durable store (and back), and what bad input to an import gets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from pysessionmanager import AsyncSessionManager, SessionManager


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_a_memory_store_moves_out_and_back_by_export_and_import(
    kind: str, url_of: Callable[[str], str]
) -> None:
    with SessionManager() as memory, SessionManager(store=url_of(kind)) as durable:
        sids = {memory.create_session(f"u{i % 7}", {"i": i}): {"i": i} for i in range(250)}
        memory.update_session(next(iter(sids)), {"i": -1})
        sids[next(iter(sids))] = {"i": -1}
        cursor, exported = None, []
        while True:
            page, cursor = memory.export_sessions(cursor, 40)
            exported += page
            if cursor is None:
                break
        assert len({s["key"] for s in exported}) == 250
        assert all(sid not in str(exported) for sid in sids), "ids are never exported"
        assert durable.import_sessions(exported) == {
            "created": 250,
            "updated": 0,
            "unchanged": 0,
            "expired": 0,
        }
        for sid, data in sids.items():
            assert durable.get_session(sid) == data
        assert durable.session_info(next(iter(sids))).version == 2

        back = SessionManager()
        page, _ = durable.export_sessions(None, 10_000)
        assert asyncio.run(AsyncSessionManager(store=back).import_sessions(page))["created"] == 250
        assert len(back.list_sessions("u3")) == len(durable.list_sessions("u3"))


def test_bad_imports_name_the_problem_and_write_nothing() -> None:
    with SessionManager() as source, SessionManager() as target:
        source.create_session("alice", {"a": 1})
        (good,), _ = source.export_sessions()
        cases = [
            ({**good, "key": "zz"}, "64 hex digits"),
            ({k: v for k, v in good.items() if k != "user_id"}, 'missing "user_id"'),
            ({**good, "version": 0}, "at least 1"),
            ({**good, "data": {"x": {1, 2}}}, "data"),
            ({**good, "data": {"big": "x" * 70_000}}, "data"),
            ({**good, "sliding": "yes"}, '"sliding" must be a bool'),
            ({**good, "idle_timeout_ms": 0}, "must be positive"),
            ({**good, "user_id": ""}, "user_id must not be empty"),
            ({**good, "expires_at_ms": good["created_at_ms"] - 1}, "out of order"),
            ("not a dict", "must be a dict"),
        ]
        for bad, message in cases:
            fresh = {**good, "key": "ab" * 32}
            with pytest.raises(ValueError, match=message):
                target.import_sessions([fresh, bad])
            assert target.count() == 0, f"nothing of a batch with {bad!r} is written"
        with pytest.raises(ValueError, match="1 to 10000"):
            source.export_sessions(None, 0)
        with pytest.raises(ValueError, match="not an export cursor"):
            source.export_sessions("garbage")

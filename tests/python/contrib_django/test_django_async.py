"""Django's async session methods await the engine: none of them falls back
to the synchronous methods on a worker thread (Django's default), on any
store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.test import override_settings

from pysessionmanager.contrib import django as ours
from pysessionmanager.contrib.django import SessionStore, close_managers

SYNC_METHODS = ("load", "save", "create", "exists", "delete", "cycle_key", "clear_expired")


@pytest.fixture
def no_sync_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> Callable[..., None]:
        def called(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"the async path called the synchronous {name}()")

        return called

    for name in SYNC_METHODS:
        monkeypatch.setattr(SessionStore, name, refuse(name))


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
def test_async_methods_await_the_store(
    kind: str, url_of: Callable[[str], str], no_sync_calls: None
) -> None:
    async def main() -> None:
        s = SessionStore()
        await s.aset("cart", ["book"])
        await s.asave()
        key = s.session_key
        assert key is not None and await s.aexists(key)

        again = SessionStore(key)
        assert await again.aget("cart") == ["book"]
        await again.aset("theme", "dark")
        await again.asave()
        await again.acycle_key()
        assert not await again.aexists(key), "the old key ends at once"
        await again.asave()
        new = again.session_key
        assert new is not None and new != key

        third = SessionStore(new)
        assert dict(await third.aitems()) == {"cart": ["book"], "theme": "dark"}
        stale = SessionStore(new)
        await stale.aset("late", 1)  # loads the record first
        await third.adelete()
        assert not await third.aexists(new)
        with pytest.raises(UpdateError):
            await stale.asave()  # ended meanwhile: not brought back
        await SessionStore.aclear_expired()

    with override_settings(PYSESSIONMANAGER_STORE=url_of(kind)):
        try:
            asyncio.run(main())
        finally:
            close_managers()


def test_the_async_manager_is_shared_per_store() -> None:
    with override_settings(PYSESSIONMANAGER_STORE="memory://"):
        try:
            first = ours.get_async_manager()
            assert ours.get_async_manager() is first
            assert first.manager is ours.get_manager()
        finally:
            close_managers()

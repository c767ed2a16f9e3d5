"""The dict that ``SessionManager.get_session`` returns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Optional

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _utc(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


class Session(dict):  # type: ignore[type-arg]
    """A session's data, as a ``dict``, plus read-only metadata attributes.

    It is a copy: changing it changes nothing stored. Write through the manager
    (``update_session``, ``set_session_data``, ``increment``).
    """

    __slots__ = ("_meta",)
    _meta: Any

    @property
    def session_id(self) -> Optional[str]:
        """The session id it was read with.

        ``None`` in ``list_sessions`` results: stores keep only hashes of ids.
        """
        return self._meta.session_id  # type: ignore[no-any-return]

    @property
    def key(self) -> str:
        """SHA-256 of the session id, in hex: a public, non-secret name for the session."""
        return self._meta.key  # type: ignore[no-any-return]

    @property
    def user_id(self) -> str:
        """The user the session belongs to."""
        return self._meta.user_id  # type: ignore[no-any-return]

    @property
    def version(self) -> int:
        """Data version, bumped by every write; pass it as ``expected_version=``."""
        return self._meta.version  # type: ignore[no-any-return]

    @property
    def created_at(self) -> datetime:
        """When the session was created (aware, UTC)."""
        return _utc(self._meta.created_at_ms)

    @property
    def last_active(self) -> datetime:
        """Last recorded activity (aware, UTC): a write, or a sliding refresh,
        which reads record at most once per half idle window."""
        return _utc(self._meta.last_active_ms)

    @property
    def expires_at(self) -> datetime:
        """When the session expires unless activity extends it (aware, UTC)."""
        return _utc(self._meta.expires_at_ms)

    @property
    def absolute_expires_at(self) -> Optional[datetime]:
        """The deadline nothing extends, if the session has one (aware, UTC)."""
        ms = self._meta.absolute_expires_at_ms
        return None if ms is None else _utc(ms)

    def __reduce__(self) -> Any:
        # Pickles and copies as a plain dict: the metadata is a snapshot of the store.
        return (dict, (dict(self),))


__all__ = ["Session"]

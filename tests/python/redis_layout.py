"""Where the Redis store keeps things (crates/sessionmanager-redis/src/keys.rs),
for tests that read the server directly."""

from __future__ import annotations

import base64
import hashlib

#: Buckets the store files sessions in (``BUCKETS`` in keys.rs).
BUCKETS = 1024


def session_key(token: str) -> str:
    """A session's key in hex, as ``Session.key`` shows it: the SHA-256 of the
    token, whose first two bytes a routed (46-character) token replaces with
    its route."""
    digest = hashlib.sha256(token.encode()).digest()
    if len(token) == 46:
        digest = base64.urlsafe_b64decode(token + "==")[32:34] + digest[2:]
    return digest.hex()


def bucket(user: str) -> int:
    """The bucket where ``user``'s sessions and indexes live."""
    return int.from_bytes(hashlib.sha256(user.encode()).digest()[:2], "big") % BUCKETS


def key_bucket(key_hex: str) -> int:
    """The bucket a key routes to (where its link is, if its session is elsewhere)."""
    return int(key_hex[:4], 16) % BUCKETS


def session_name(prefix: str, token: str, user: str) -> str:
    """The hash of session ``token`` of ``user``."""
    return f"{prefix}s:{{{bucket(user)}}}{session_key(token)}"


def user_index(prefix: str, user: str, tag: str = "ue") -> str:
    """A user's index by expiry (``uc``: by creation): the hex of the user id."""
    return f"{prefix}{tag}:{{{bucket(user)}}}{user.encode().hex()}"


def expiry_index(prefix: str, user: str) -> str:
    """The expiry index of ``user``'s bucket."""
    return f"{prefix}x:{{{bucket(user)}}}"


def rate_name(prefix: str, limited: str) -> str:
    """The state of the rate-limited key ``limited``."""
    digest = hashlib.sha256(limited.encode()).hexdigest()
    return f"{prefix}r:{{{key_bucket(digest)}}}{digest}"

"""No message, repr or store name ever shows a password from a store URL,
however the URL is mangled: one rule for every store (the last ``@`` ends
the user info), checked with generated URLs around a marker password."""

from __future__ import annotations

import os

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pysessionmanager import RateLimiter, SessionManager

MARKER = "Mk7pSECRET"

# Characters a careless URL puts around or inside a password.
NOISE = st.text(alphabet="ab@?/#:%&=. ", max_size=4)


@st.composite
def mangled_urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["redis", "valkey", "postgresql", "postgres", "rediss", "x"]))
    separator = draw(st.sampled_from(["://", ":/", "//", ":", "", ":///"]))
    user = draw(st.sampled_from(["app", "", "u%40x", "postgres"]))
    colon = draw(st.sampled_from([":", ":", ""]))
    # (Noise ending in '@' right before the marker would make it the host,
    # by the rule itself: "redis://u:@host".)
    password = draw(NOISE.filter(lambda t: not t.endswith("@"))) + MARKER + draw(NOISE)
    # Port 1 on loopback refuses at once, so a URL that parses fails fast.
    host = draw(
        st.sampled_from(["@127.0.0.1:1", "@127.0.0.1:1/0", "@[::1]:1/db", "@", "", "@@127.0.0.1:1"])
    )
    query = draw(st.sampled_from(["", "?timeout_ms=200", "?connect_timeout=1", "?x=1&y"]))
    return f"{scheme}{separator}{user}{colon}{password}{host}{query}"


def assert_hidden(text: str, url: str) -> None:
    assert MARKER not in text, f"{url!r} showed its password in: {text}"


@pytest.mark.parametrize(
    "url",
    [
        f"redis//:{MARKER}@host/0",
        f"postgresql:/app:{MARKER}@host/db",
        f"postgresql://app:pa?{MARKER}@127.0.0.1:1/db",
        f"postgresql://app:pa@{MARKER}@127.0.0.1:1/db",
        f"postgresql://postgres:{MARKER}",
        f"redis://127.0.0.1:{MARKER}/0",
    ],
)
def test_the_reported_urls_hide_their_password(url: str) -> None:
    with pytest.raises(Exception) as raised:
        SessionManager(store=url)
    assert_hidden(str(raised.value), url)
    assert_hidden(repr(raised.value), url)


def reads_as_a_password(url: str) -> bool:
    """Whether the marker stands where a password may be. In a URL with a
    well-formed "scheme://": in the user info after its ':' (the user info
    runs to the last '@', the rule for every store URL), or after the host's
    ':' where a port should be (a password whose "@host" was forgotten). In
    a URL whose "://" is mangled: before the last '@' or after the first ':'.
    Elsewhere it is a user name, host, path or option by any reading."""
    at = url.index(MARKER)
    scheme, separator, rest = url.partition("://")
    mangled = not separator or not scheme.isalnum()
    if mangled or (rest.startswith("/") and any(c in rest for c in ":@")):
        first_colon = url.find(":")
        return "@" in url[at:] or ":" in url[first_colon + 1 : at]
    start = len(scheme) + 3
    userinfo, _, host = rest.rpartition("@")
    if at < start + len(userinfo):
        return ":" in userinfo[: at - start]
    return ":" in host[: at - start - len(userinfo) - 1]


@settings(max_examples=int(os.environ.get("PYSM_FUZZ_EXAMPLES", "200")), deadline=None)
@given(url=mangled_urls())
def test_no_mangled_url_shows_its_password(url: str) -> None:
    assume(reads_as_a_password(url))
    for open_with in (lambda: SessionManager(store=url), lambda: RateLimiter("1/s", store=url)):
        try:
            opened = open_with()
        except Exception as e:  # any error: its text must not show the password
            assert_hidden(str(e), url)
            assert_hidden(repr(e), url)
            if e.__cause__ is not None:
                assert_hidden(str(e.__cause__), url)
        else:  # pragma: no cover - a loopback port 1 refuses connections
            assert_hidden(repr(opened), url)
            assert_hidden(opened.store, url)

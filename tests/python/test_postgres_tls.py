"""The PostgreSQL store over TLS, against a real server with ``ssl=on`` and
certificates made by the test: the model-based store test with
``sslmode=verify-full``, SCRAM channel binding, and a clear error when the
server's certificate is not trusted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import pytest
import test_model
from hypothesis import settings
from servers_postgres import PostgresServer, tls_server
from tls_pki import Pki

from pysessionmanager import SessionManager, StoreError

_server: Optional[PostgresServer] = None
_pki: Optional[Pki] = None


@pytest.fixture(autouse=True, scope="module")
def _tls_server() -> Iterator[None]:
    global _server, _pki
    _server, _pki = tls_server()
    _server.start()
    yield
    _server.remove()
    _server = _pki = None


def tls_url(**options: object) -> str:
    assert _server is not None and _pki is not None
    return _server.fresh_schema_url(sslmode="verify-full", sslrootcert=_pki.ca, **options)


class PostgresTlsModel(test_model.SessionModel):
    limit = 2
    default_absolute = 150.0

    def store_url(self) -> str:
        return tls_url(sweep_interval_ms=0)


TestPostgresTls = PostgresTlsModel.TestCase
TestPostgresTls.settings = settings(max_examples=15, stateful_step_count=30, deadline=None)


def test_sessions_work_over_tls_with_channel_binding() -> None:
    with SessionManager(store=tls_url(channel_binding="require")) as m:
        sid = m.create_session("alice", {"n": 1})
        assert m.increment(sid, "n") == 2
        assert m.count() == 1


def test_a_server_certificate_from_an_unknown_ca_is_a_clear_store_error() -> None:
    assert _server is not None and _pki is not None
    url = _server.url(sslmode="verify-full", sslrootcert=_pki.other_ca)
    with pytest.raises(StoreError, match="not signed by a CA this store trusts") as raised:
        SessionManager(store=url)
    assert "sslrootcert" in str(raised.value)
    assert "PRIVATE KEY" not in str(raised.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sslmode": "verify"}, "sslmode must be disable"),
        ({"sslmode": "disable", "sslrootcert": "/tmp/ca.pem"}, "need TLS"),
        ({"sslcert": "/tmp/c.pem"}, "go together"),
    ],
)
def test_bad_tls_options_say_what_is_wrong(options: dict[str, str], message: str) -> None:
    assert _server is not None
    with pytest.raises(ValueError, match=message):
        SessionManager(store=_server.url(**options))

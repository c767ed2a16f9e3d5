"""The Redis store over TLS (``rediss://``), against a real redis-server with
a TLS port and certificates made by the test: the model-based store test,
client certificates, and clear errors when a certificate is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import test_redis_model
from hypothesis import settings
from ports import free_port
from servers_redis import RedisServer, fresh_prefix, require_redis_server
from tls_pki import Pki

from pysessionmanager import SessionManager, StoreError


class TlsServer:
    """A redis-server that also listens with TLS on ``tls_port``."""

    def __init__(self, folder: Path, pki: Pki, *, client_auth: bool) -> None:
        self.pki, self.tls_port = pki, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.server = RedisServer(
            folder,
            *("--tls-port", str(self.tls_port), "--tls-cert-file", str(pki.server_cert)),
            *("--tls-key-file", str(pki.server_key), "--tls-ca-cert-file", str(pki.ca)),
            *("--tls-auth-clients", "yes" if client_auth else "no"),
        )
        self.server.start()

    def url(self, **options: object) -> str:
        query = "&".join([f"ssl_ca_certs={self.pki.ca}", *(f"{k}={v}" for k, v in options.items())])
        return f"rediss://127.0.0.1:{self.tls_port}/0?{query}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    require_redis_server()
    server = TlsServer(tmp_path_factory.mktemp("redis-tls"), pki, client_auth=False)
    yield server
    server.server.stop()


_server: TlsServer | None = None


@pytest.fixture(autouse=True, scope="module")
def _model_server(tls_server: TlsServer) -> Iterator[None]:
    global _server
    _server = tls_server
    yield
    _server = None


class RedisTlsModel(test_redis_model.RedisModel):
    def store_url(self) -> str:
        assert _server is not None
        return _server.url(prefix=fresh_prefix(), sweep_on_create="0")


TestRedisTlsModel = RedisTlsModel.TestCase
TestRedisTlsModel.settings = settings(
    max_examples=15, stateful_step_count=30, deadline=None, database=None
)


def test_sessions_work_over_tls(tls_server: TlsServer) -> None:
    with SessionManager(store=tls_server.url(prefix=fresh_prefix())) as m:
        sid = m.create_session("alice", {"cart": ["tea"]})
        m.append(sid, "cart", "mug")
        assert m.get_session(sid) == {"cart": ["tea", "mug"]}
        assert [s["cart"] for s in m.list_sessions("alice")] == [["tea", "mug"]]
        m.end_user_sessions("alice")
        assert m.count() == 0


def test_a_certificate_from_an_unknown_ca_is_a_clear_store_error(
    tls_server: TlsServer, pki: Pki
) -> None:
    url = f"rediss://:hunter2@127.0.0.1:{tls_server.tls_port}/0?ssl_ca_certs={pki.other_ca}"
    with pytest.raises(StoreError, match="not signed by a CA this store trusts") as raised:
        SessionManager(store=url)
    assert "hunter2" not in str(raised.value)
    assert "PRIVATE KEY" not in str(raised.value)


def test_a_server_that_requires_client_certificates(pki: Pki, tmp_path: Path) -> None:
    require_redis_server()
    server = TlsServer(tmp_path / "redis", pki, client_auth=True)
    try:
        with pytest.raises(StoreError, match="client certificate"):
            SessionManager(store=server.url())
        url = server.url(ssl_certfile=pki.client_cert, ssl_keyfile=pki.client_key)
        with SessionManager(store=url) as m:
            sid = m.create_session("bob")
            assert m.get_session(sid).user_id == "bob"
    finally:
        server.server.stop()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ssl_cert_reqs=sometimes", "ssl_cert_reqs must be required"),
        ("ssl_certfile=/tmp/c.pem", "go together"),
        ("ssl_ca_certs=/no/such/ca.pem", "/no/such/ca.pem"),
    ],
)
def test_bad_tls_options_say_what_is_wrong(tls_server: TlsServer, query: str, message: str) -> None:
    with pytest.raises((ValueError, StoreError), match=message):
        SessionManager(store=f"rediss://127.0.0.1:{tls_server.tls_port}/0?{query}")


def test_ssl_options_need_rediss(tls_server: TlsServer, pki: Pki) -> None:
    with pytest.raises(ValueError, match="write rediss://"):
        SessionManager(store=f"redis://127.0.0.1:{tls_server.server.port}/0?ssl_ca_certs={pki.ca}")

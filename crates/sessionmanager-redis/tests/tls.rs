//! The store over TLS (`rediss://`) against a real redis-server with a TLS
//! port and certificates made by the tests: the conformance suite, client
//! certificates, and each way a handshake can be refused.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use sessionmanager_core::{Error, ManualClock};
use sessionmanager_redis::{RedisConfig, RedisStore};

fn tls_store(_clock: ManualClock) -> RedisStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!("&prefix=tls-{}:", NEXT.fetch_add(1, Ordering::Relaxed));
    RedisStore::open_url(&support::shared_tls().url(&prefix)).expect("the store opens over TLS")
}

sessionmanager_core::conformance_tests!(tls_store);

fn open_err(url: &str) -> Error {
    match RedisStore::open_url(url) {
        Ok(_) => panic!("{url} opened"),
        Err(err) => err,
    }
}

#[test]
fn a_server_certificate_from_an_unknown_ca_is_refused() {
    let server = support::shared_tls();
    let url = format!(
        "rediss://127.0.0.1:{}/0?ssl_ca_certs={}",
        server.tls_port,
        server.pki.other_ca.display()
    );
    let err = open_err(&url);
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("not signed by a CA this store trusts"),
        "{err}"
    );
    assert!(err.driver_error::<rustls::Error>().is_some(), "{err:?}");
}

/// A server whose TLS port serves the certificate `name` (`pki.rs` made it
/// and its key), the `rediss://` URL of that port (no options), and the
/// CA file that signed it.
fn serving(name: &str) -> (support::Server, String, String) {
    let tls_port = free_port();
    let mut ca = None;
    let server = support::Server::start_with(|dir| {
        let pki = support::pki::Pki::make(&dir.join("pki"));
        let (cert, key) = (
            dir.join(format!("pki/{name}.pem")),
            dir.join(format!("pki/{name}.key")),
        );
        ca = Some(pki.ca.display().to_string());
        pki.redis_args_with(tls_port, false, &cert, &key)
    });
    let url = format!("rediss://127.0.0.1:{tls_port}/0");
    (server, url, ca.expect("certificates made"))
}

#[test]
fn certificates_for_another_host_or_expired_are_refused() {
    let (_server, url, ca) = serving("wrong-host");
    let err = open_err(&format!("{url}?ssl_ca_certs={ca}"));
    assert!(err.to_string().contains("for another host name"), "{err}");

    let (_server, url, ca) = serving("expired");
    let err = open_err(&format!("{url}?ssl_ca_certs={ca}"));
    assert!(err.to_string().contains("has expired"), "{err}");

    // Unverified, as asked: the same server is reached.
    RedisStore::open_url(&format!("{url}?ssl_cert_reqs=none"))
        .expect("ssl_cert_reqs=none skips verification");
}

#[test]
fn a_server_that_requires_client_certificates_admits_ours_only() {
    let server = support::TlsServer::start(true);
    let err = open_err(&server.url(""));
    assert!(err.to_string().contains("client certificate"), "{err}");
    let url = server.url(&format!(
        "&ssl_certfile={}&ssl_keyfile={}",
        server.pki.client_cert.display(),
        server.pki.client_key.display()
    ));
    let store = RedisStore::open_url(&url).expect("our client certificate is accepted");
    drop(store);
}

#[test]
fn bad_tls_settings_say_what_is_wrong() {
    let server = support::shared_tls();
    let cases = [
        (
            format!(
                "redis://127.0.0.1:{}/0?ssl_ca_certs=/x.pem",
                server.server.port
            ),
            "is for TLS connections",
        ),
        (
            server.url("&ssl_cert_reqs=maybe"),
            "ssl_cert_reqs must be required",
        ),
        (server.url("&ssl_certfile=/tmp/x.pem"), "go together"),
        (
            server.url(&format!(
                "&ssl_certfile={}&ssl_keyfile=/no/such/key.pem",
                server.pki.client_cert.display()
            )),
            "/no/such/key.pem",
        ),
        (
            format!(
                "rediss://127.0.0.1:{}/0?ssl_ca_certs=/no/such/ca.pem",
                server.tls_port
            ),
            "/no/such/ca.pem",
        ),
        (
            format!(
                "rediss://127.0.0.1:{}/0?ssl_ca_certs={}",
                server.tls_port,
                server.pki.server_key.display()
            ),
            "holds no PEM certificate",
        ),
        (
            // The plain-text port: the server waits for the rest of a command.
            format!(
                "rediss://127.0.0.1:{}/0?ssl_ca_certs={}&timeout_ms=300",
                server.server.port,
                server.pki.ca.display()
            ),
            "did not answer within 300 ms",
        ),
    ];
    for (url, expected) in cases {
        let err = match RedisConfig::from_url(&url) {
            Err(err) => err,
            Ok(config) => match RedisStore::open(config) {
                Ok(_) => panic!("{url} opened"),
                Err(err) => err,
            },
        };
        assert!(err.to_string().contains(expected), "{url}: {err}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

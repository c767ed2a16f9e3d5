//! The store over TLS against a real PostgreSQL with `ssl=on` and
//! certificates made by the tests: the conformance suite with
//! `sslmode=verify-full`, libpq's other modes, client-certificate login
//! (`hostssl … cert`), SCRAM channel binding, and each refusal.

mod support;

// The Redis store's test certificates: one maker for every TLS test.
#[path = "../../sessionmanager-redis/tests/support/pki.rs"]
#[allow(dead_code)] // the Redis server arguments and the unused bad certificates
mod pki;

use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessionmanager_core::{Error, ManualClock};
use sessionmanager_postgres::{PostgresConfig, PostgresStore};

/// A server with TLS on, and its certificates; `hba`, if given, replaces
/// its client authentication rules.
fn start(hba: Option<&str>) -> (support::Server, pki::Pki) {
    start_serving("server", hba)
}

/// Like [`start`], serving the certificate `name` that `pki.rs` made.
fn start_serving(name: &str, hba: Option<&str>) -> (support::Server, pki::Pki) {
    let bin = support::bin_dir().expect("PostgreSQL is installed");
    let mut made = None;
    let server = support::Server::start_with(&bin, |dir| {
        let pki = pki::Pki::make(&dir.join("pki"));
        let (cert, key) = (
            dir.join(format!("pki/{name}.pem")),
            dir.join(format!("pki/{name}.key")),
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut settings = vec![
            "-c".to_owned(),
            "fsync=off".into(),
            "-c".into(),
            "ssl=on".into(),
            "-c".into(),
            format!("ssl_cert_file={}", cert.display()),
            "-c".into(),
            format!("ssl_key_file={}", key.display()),
            "-c".into(),
            format!("ssl_ca_file={}", pki.ca.display()),
        ];
        if let Some(rules) = hba {
            let file = dir.join("hba.conf");
            std::fs::write(&file, rules).unwrap();
            settings.extend(["-c".into(), format!("hba_file={}", file.display())]);
        }
        made = Some(pki);
        settings
    });
    (server, made.expect("certificates made"))
}

fn shared() -> &'static (support::Server, pki::Pki) {
    static SERVER: OnceLock<(support::Server, pki::Pki)> = OnceLock::new();
    SERVER.get_or_init(|| start(None))
}

fn url(query: &str) -> String {
    let (server, pki) = shared();
    server.url(
        "postgres",
        &format!("sslrootcert={}&{query}", pki.ca.display()),
    )
}

fn open(url: &str) -> Result<PostgresStore, Error> {
    let config = PostgresConfig {
        sweep_interval: None,
        ..PostgresConfig::from_url(url)?
    };
    PostgresStore::open(config)
}

fn tls_store(_clock: ManualClock) -> PostgresStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let (server, _) = shared();
    let schema = format!("tls_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    server.sql("postgres", &format!("CREATE SCHEMA {schema}"));
    let options = format!("sslmode=verify-full&options=-c%20search_path%3D{schema}");
    open(&url(&options)).expect("the store opens over TLS")
}

sessionmanager_core::conformance_tests!(tls_store);

fn message(result: Result<PostgresStore, Error>) -> String {
    match result {
        Ok(_) => panic!("the store opened"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn libpq_modes_and_their_checks() {
    let (server, pki) = shared();
    for mode in ["prefer", "require", "verify-ca", "verify-full"] {
        open(&url(&format!("sslmode={mode}"))).unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
    // A CA that did not sign the server's certificate.
    let other = server.url(
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={}", pki.other_ca.display()),
    );
    let err = message(open(&other));
    assert!(
        err.contains("not signed by a CA this store trusts"),
        "{err}"
    );
    assert!(err.contains("sslrootcert"), "{err}");
    // Another host name than the certificate's: verify-full refuses,
    // verify-ca (the chain only) accepts.
    let renamed = |mode: &str| {
        format!(
            "postgresql://postgres:{}@wrong.example:{}/postgres?hostaddr=127.0.0.1\
             &sslmode={mode}&sslrootcert={}",
            support::PASSWORD,
            server.port,
            pki.ca.display()
        )
    };
    let err = message(open(&renamed("verify-full")));
    assert!(err.contains("for another host name"), "{err}");
    open(&renamed("verify-ca")).expect("verify-ca does not check the name");
    assert!(!err.contains(support::PASSWORD), "{err}");
}

#[test]
fn an_expired_server_certificate_is_refused() {
    let (server, pki) = start_serving("expired", None);
    let query = format!("sslmode=verify-full&sslrootcert={}", pki.ca.display());
    let err = message(open(&server.url("postgres", &query)));
    assert!(err.contains("has expired"), "{err}");
    assert!(!err.contains(support::PASSWORD), "{err}");
    open(&server.url("postgres", "sslmode=require")).expect("require checks no certificate");
}

#[test]
fn verify_full_against_a_server_without_tls_is_refused() {
    let (_, pki) = shared();
    let plain = support::server().url(
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", pki.ca.display()),
    );
    let err = message(open(&plain));
    assert!(err.contains("does not support TLS"), "{err}");
    assert!(!err.contains(support::PASSWORD), "{err}");
}

#[test]
fn scram_channel_binding_over_tls() {
    open(&url("sslmode=verify-full&channel_binding=require")).expect("channel binding over TLS");
    let (server, _) = shared();
    let plain = server.url("postgres", "sslmode=disable&channel_binding=require");
    let err = message(open(&plain));
    assert!(err.to_lowercase().contains("channel binding"), "{err}");
}

#[test]
fn a_certificate_login_admits_our_client_certificate_only() {
    let hba = "local all all trust\nhostssl all postgres 127.0.0.1/32 cert\n";
    let (server, pki) = start(Some(hba));
    let base = format!("sslmode=verify-full&sslrootcert={}", pki.ca.display());
    let err = message(open(&server.url("postgres", &base)));
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let with_cert = format!(
        "{base}&sslcert={}&sslkey={}",
        pki.client_cert.display(),
        pki.client_key.display()
    );
    open(&server.url("postgres", &with_cert)).expect("our client certificate logs in");
    // Signed by the right CA, but expired: the server refuses it.
    let expired = format!(
        "{base}&sslcert={}&sslkey={}",
        pki.expired_cert.display(),
        pki.expired_cert.with_extension("key").display()
    );
    let err = message(open(&server.url("postgres", &expired)));
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn bad_tls_options_say_what_is_wrong() {
    let (server, _) = shared();
    for (query, expected) in [
        ("sslmode=sometimes", "sslmode must be disable"),
        ("sslcert=/tmp/c.pem", "go together"),
        ("sslmode=disable&sslrootcert=/tmp/ca.pem", "need TLS"),
        (
            "sslmode=verify-full&sslrootcert=/no/such/ca.pem",
            "/no/such/ca.pem",
        ),
    ] {
        let err = message(open(&server.url("postgres", query)));
        assert!(err.contains(expected), "{query}: {err}");
    }
    let (_, pki) = shared();
    for (query, expected) in [
        (
            format!(
                "sslmode=require&sslcert={}&sslkey=/no/such/key.pem",
                pki.client_cert.display()
            ),
            "/no/such/key.pem".to_owned(),
        ),
        (
            format!(
                "sslmode=require&sslcert={}&sslkey={}",
                pki.client_cert.display(),
                pki.ca.display()
            ),
            pki.ca.display().to_string(),
        ),
    ] {
        let err = message(open(&server.url("postgres", &query)));
        assert!(err.contains(&expected), "{query}: {err}");
    }
}

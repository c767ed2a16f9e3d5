//! Certificates for TLS tests, made with the `openssl` command: a CA, a
//! server certificate for 127.0.0.1 and localhost, a client certificate,
//! and the bad ones (another CA's, another host's, an expired one).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Paths of the PEM files made in one folder.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
    /// Signed by the CA, for `wrong.example` only.
    pub wrong_host_cert: PathBuf,
    /// Signed by the CA, for 127.0.0.1, expired yesterday.
    pub expired_cert: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let done = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (apt-get install openssl)");
    assert!(
        done.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// A P-256 key in `name.key` and a request for `cn` in `name.csr`.
fn request(dir: &Path, name: &str, cn: &str) {
    let (key, csr, subject) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("/CN={cn}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subject,
        ],
    );
}

/// `name.pem`, signed by `ca` with `extensions`, valid for `days`.
fn sign(dir: &Path, name: &str, ca: &str, extensions: &str, days: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(dir.join(&ext), extensions).unwrap();
    let (csr, pem, ca_pem, ca_key) = (
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{ca}.pem"),
        format!("{ca}.key"),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            days,
            "-extfile",
            &ext,
        ],
    );
}

fn self_signed_ca(dir: &Path, name: &str) {
    let (key, pem, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-subj",
            &subject,
            "-days",
            "30",
        ],
    );
}

impl Pki {
    pub fn make(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        self_signed_ca(dir, "ca");
        self_signed_ca(dir, "other-ca");
        let server = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
        request(dir, "server", "127.0.0.1");
        sign(dir, "server", "ca", server, "30");
        request(dir, "expired", "127.0.0.1");
        sign(dir, "expired", "ca", server, "-1");
        request(dir, "wrong-host", "wrong.example");
        let wrong = "subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n";
        sign(dir, "wrong-host", "ca", wrong, "30");
        // Named as the PostgreSQL user it logs in as (`cert` authentication).
        request(dir, "client", "postgres");
        sign(dir, "client", "ca", "extendedKeyUsage=clientAuth\n", "30");
        let path = |file: &str| dir.join(file);
        Self {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
            other_ca: path("other-ca.pem"),
            wrong_host_cert: path("wrong-host.pem"),
            expired_cert: path("expired.pem"),
        }
    }

    /// `redis-server` arguments for a TLS port serving `cert` (with its key
    /// from the same request) signed by this CA.
    pub fn redis_args(&self, tls_port: u16, client_auth: bool) -> Vec<String> {
        self.redis_args_with(tls_port, client_auth, &self.server_cert, &self.server_key)
    }

    pub fn redis_args_with(
        &self,
        tls_port: u16,
        client_auth: bool,
        cert: &Path,
        key: &Path,
    ) -> Vec<String> {
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-ca-cert-file".into(),
            self.ca.display().to_string(),
            "--tls-auth-clients".into(),
            if client_auth { "yes" } else { "no" }.into(),
        ]
    }
}

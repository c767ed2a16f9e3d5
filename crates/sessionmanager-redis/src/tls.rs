//! TLS to the server (`rediss://`): rustls, verifying the server's
//! certificate and host name against the system's trust store or the CA
//! file given, with a client certificate when one is given.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sessionmanager_core::{Error, Result};

use crate::config::RedisTls;

/// The rustls client settings for `tls`. Reads the files it names now, so a
/// missing or unreadable file fails the store's opening, naming the file.
pub(crate) fn client_config(tls: &RedisTls) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::store("cannot set up TLS", e))?;
    let builder = if tls.verify {
        builder.with_root_certificates(roots(tls.ca_certs.as_deref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain = certificates(cert_file, "ssl_certfile")?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                Error::store(
                    format!(
                        "cannot read a private key from ssl_keyfile {}: {e}",
                        key_file.display()
                    ),
                    e,
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::store(
                    format!("ssl_certfile and ssl_keyfile do not make a client certificate: {e}"),
                    e,
                )
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::InvalidArgument(
                "ssl_certfile and ssl_keyfile go together: give both, or neither".into(),
            ));
        }
    };
    Ok(Arc::new(config))
}

/// The CAs to trust: those of `ca_file`, or the system's.
fn roots(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs = match ca_file {
        Some(file) => certificates(file, "ssl_ca_certs")?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        let from = ca_file.map_or_else(
            || "the system's trust store".to_owned(),
            |file| format!("ssl_ca_certs {}", file.display()),
        );
        return Err(Error::InvalidArgument(format!(
            "no usable CA certificate in {from}: the server's certificate could never be verified"
        )));
    }
    Ok(roots)
}

/// Every certificate of the PEM file `file` (the option `option` named it).
fn certificates(file: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>> {
    let read = |e: rustls_pki_types::pem::Error| {
        Error::store(
            format!(
                "cannot read certificates from {option} {}: {e}",
                file.display()
            ),
            e,
        )
    };
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(read)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{option} {} holds no PEM certificate",
            file.display()
        )));
    }
    Ok(certs)
}

/// The name the server's certificate must carry: the URL's host name, or
/// its IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).map_err(|_| {
        Error::InvalidArgument(format!(
            "{host:?} cannot be checked against a certificate (not a DNS name or an IP address)"
        ))
    })
}

/// `ssl_cert_reqs=none`: any certificate, any name. Only the handshake's
/// signatures are still checked, so the session is at least encrypted.
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

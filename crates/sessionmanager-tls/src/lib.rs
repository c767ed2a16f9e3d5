//! TLS client settings for the server stores (Redis, PostgreSQL), on rustls
//! with the ring provider: the server's certificate verified against the
//! system's trust store or a CA file, its host name checked, a client
//! certificate when one is given. Each store names the settings with its
//! users' option names ([`OptionNames`]), so messages speak their language.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sessionmanager_core::{Error, Result};

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Signed by a trusted CA and issued for the host connected to.
    Full,
    /// Signed by a trusted CA, for any host (libpq's `verify-ca`).
    ChainOnly,
    /// Not at all: encrypted, but anyone in the middle can pose as the server.
    Nothing,
}

/// The files and checks of one store's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CAs to trust; `None`: the system's trust store.
    pub ca_certs: Option<PathBuf>,
    /// PEM files of a client certificate chain and its private key.
    pub client: Option<(PathBuf, PathBuf)>,
    /// What is checked of the server's certificate.
    pub verify: Verify,
}

/// What a store's users call each setting, for messages.
#[derive(Clone, Copy, Debug)]
pub struct OptionNames {
    /// The CA file's option (`ssl_ca_certs`, `sslrootcert`).
    pub ca_certs: &'static str,
    /// The client certificate's option (`ssl_certfile`, `sslcert`).
    pub cert: &'static str,
    /// The client key's option (`ssl_keyfile`, `sslkey`).
    pub key: &'static str,
}

/// The rustls client settings for `files`. Reads the files now, so a
/// missing or unreadable one fails the store's opening, naming it.
pub fn client_config(files: &TlsFiles, names: OptionNames) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::store("cannot set up TLS", e))?;
    let builder = match files.verify {
        Verify::Full => builder.with_root_certificates(roots(files.ca_certs.as_deref(), names)?),
        Verify::ChainOnly => {
            let roots = Arc::new(roots(files.ca_certs.as_deref(), names)?);
            let chain = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| Error::store(format!("cannot set up TLS: {e}"), e))?;
            let lenient = Lenient {
                chain: Some(chain),
                provider,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(lenient))
        }
        Verify::Nothing => {
            let lenient = Lenient {
                chain: None,
                provider,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(lenient))
        }
    };
    let config = match &files.client {
        Some((cert_file, key_file)) => {
            let chain = certificates(cert_file, names.cert)?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                let message = format!(
                    "cannot read a private key from {} {}: {e}",
                    names.key,
                    key_file.display()
                );
                Error::store(message, e)
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                let message = format!(
                    "{} and {} do not make a client certificate: {e}",
                    names.cert, names.key
                );
                Error::store(message, e)
            })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The CAs to trust: those of `ca_file`, or the system's.
fn roots(ca_file: Option<&Path>, names: OptionNames) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs = match ca_file {
        Some(file) => certificates(file, names.ca_certs)?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        let from = ca_file.map_or_else(
            || "the system's trust store".to_owned(),
            |file| format!("{} {}", names.ca_certs, file.display()),
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
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).map_err(|_| {
        Error::InvalidArgument(format!(
            "{host:?} cannot be checked against a certificate (not a DNS name or an IP address)"
        ))
    })
}

/// The verifier of `Verify::ChainOnly` (with `chain`: the certificate must be
/// signed by a trusted CA, for any host name) and `Verify::Nothing`
/// (without: any certificate). Either way the handshake's signatures are
/// checked, so the session is at least encrypted with the holder of the
/// certificate's key.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What went wrong in a TLS handshake, in words that say what to check.
pub fn describe(err: &rustls::Error, names: OptionNames) -> String {
    use rustls::AlertDescription;

    match err {
        rustls::Error::InvalidCertificate(problem) => match problem {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the server's certificate is not signed by a CA \
                 this store trusts (name the CA's PEM file in {})",
                names.ca_certs
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate is for another host name than the URL's".to_owned()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (is this machine's clock right?)"
                    .to_owned()
            }
            CertificateError::Revoked => "the server's certificate was revoked".to_owned(),
            other => format!("the server's certificate was refused: {other:?}"),
        },
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::HandshakeFailure),
        ) => format!(
            "the server refused the handshake ({alert:?}): it may require \
             a client certificate ({} and {}) or not trust the one given",
            names.cert, names.key
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server did not answer in TLS (is this its TLS port?)".to_owned()
        }
        other => format!("the TLS handshake failed: {other}"),
    }
}

//! Settings of a [`RedisStore`](crate::RedisStore), and the `redis://` URL that spells them.

mod url;

use std::fmt;
use std::time::Duration;

use sessionmanager_core::{Error, Result};
#[cfg(doc)]
use sessionmanager_tls::Verify;
use sessionmanager_tls::{OptionNames, TlsFiles};

/// Settings of a Redis (or Valkey) store.
///
/// Build one with [`RedisConfig::new`] or from a URL with [`RedisConfig::from_url`]:
/// `redis://[user[:password]@]host[:port][/db][?prefix=...&timeout_ms=...&sweep_on_create=...]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The server's host name or IP address.
    pub host: String,
    /// The server's TCP port.
    pub port: u16,
    /// The logical database (`SELECT`), 0 unless set.
    pub db: i64,
    /// The ACL user name, if the server uses ACL users.
    pub username: Option<String>,
    /// The password (`AUTH`); never shown by `Debug` or in error messages.
    pub password: Option<String>,
    /// What every key of this store starts with, so sessions share a database
    /// with other data without colliding with it.
    pub prefix: String,
    /// The longest one operation may take, reconnecting included; past it the
    /// operation fails with [`Error::Unavailable`](sessionmanager_core::Error::Unavailable).
    pub timeout: Duration,
    /// How many expired sessions each create removes (with their index
    /// entries) on its way, so the expiry index stays bounded with no
    /// background job: more than one, so it keeps up when creates slow down.
    /// Redis removes expired records by itself; this clears what indexes
    /// them. 0 leaves all of it to [`purge_expired`](sessionmanager_core::SessionStore::purge_expired).
    pub sweep_on_create: u32,
    /// TLS settings (`rediss://`): the server's certificate and host name
    /// are checked ([`Verify::Full`]) unless `ssl_cert_reqs=none`
    /// ([`Verify::Nothing`]); `None` connects in plain text.
    pub tls: Option<TlsFiles>,
}

/// The TLS settings' names in `rediss://` URLs (redis-py's), for messages.
pub(crate) const TLS_OPTION_NAMES: OptionNames = OptionNames {
    ca_certs: "ssl_ca_certs",
    cert: "ssl_certfile",
    key: "ssl_keyfile",
};

impl RedisConfig {
    /// The key prefix used when none is given: every key the store writes starts with it.
    pub const DEFAULT_PREFIX: &str = "sessionmanager:";

    /// How long one operation may take, reconnecting included, when no timeout is given.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

    /// Expired entries each create clears from the expiry index when none is given.
    pub const DEFAULT_SWEEP_ON_CREATE: u32 = 8;

    /// The port Redis and Valkey listen on by default.
    pub const DEFAULT_PORT: u16 = 6379;

    /// Defaults for the server at `host:port`: database 0, no credentials,
    /// [`Self::DEFAULT_PREFIX`], [`Self::DEFAULT_TIMEOUT`] and
    /// [`Self::DEFAULT_SWEEP_ON_CREATE`].
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            db: 0,
            username: None,
            password: None,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            sweep_on_create: Self::DEFAULT_SWEEP_ON_CREATE,
            tls: None,
        }
    }

    /// Reads `redis://[user[:password]@]host[:port][/db][?options]` (or
    /// `valkey://`; `rediss://` and `valkeys://` for TLS). Options: `prefix`
    /// (the key prefix, percent-encoded), `timeout_ms` (each operation's
    /// limit) and `sweep_on_create` (expired sessions each create clears; 0
    /// for none); over TLS also `ssl_ca_certs`, `ssl_certfile`,
    /// `ssl_keyfile` (PEM files) and `ssl_cert_reqs` (`required` or `none`),
    /// as [`TlsFiles`] holds them. User name, password and prefix
    /// are percent-decoded. Errors are [`Error::InvalidArgument`] naming the
    /// part that is wrong, never containing the password.
    pub fn from_url(url: &str) -> Result<Self> {
        url::parse(url).map_err(|url::UrlError(message)| {
            let message = sessionmanager_core::scrub(&message, url);
            Error::InvalidArgument(format!("bad Redis store URL: {message}"))
        })
    }

    /// `host:port/db`, for messages: no credentials.
    pub fn address(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{host}:{}/{}", self.port, self.db)
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("sweep_on_create", &self.sweep_on_create)
            .field("tls", &self.tls)
            .finish()
    }
}

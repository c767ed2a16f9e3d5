//! Settings of a [`PostgresStore`](crate::PostgresStore).

mod url;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sessionmanager_core::{Clock, SystemClock};
use sessionmanager_tls::{OptionNames, TlsFiles, Verify};

use crate::target::Target;

/// Settings of a PostgreSQL store.
///
/// Build one with [`PostgresConfig::new`] from a [`tokio_postgres::Config`],
/// or parse a URL with [`PostgresConfig::from_url`].
#[derive(Clone)]
pub struct PostgresConfig {
    /// Where and as whom to connect (host, port, user, password, database, options).
    pub connection: tokio_postgres::Config,
    /// Connections the pool keeps open at most.
    pub pool_size: usize,
    /// How long one store call may take in all (waiting for a pooled
    /// connection, connecting, the queries) before it fails as unavailable.
    pub timeout: Duration,
    /// How often the background sweeper removes expired rows; `None` for never.
    pub sweep_interval: Option<Duration>,
    /// The clock the sweeper judges expiry by; must be the manager's.
    pub clock: Arc<dyn Clock>,
    /// The certificates of TLS connections, and what is checked of the
    /// server's. Whether TLS is used at all is the connection's `ssl_mode`
    /// (libpq's `sslmode`: `disable`, `prefer`, `require`; `verify-ca` and
    /// `verify-full` are `require` with [`Verify::ChainOnly`] and
    /// [`Verify::Full`] here).
    pub tls: TlsFiles,
}

/// The TLS settings' names in `postgresql://` URLs (libpq's), for messages.
pub(crate) const TLS_OPTION_NAMES: OptionNames = OptionNames {
    ca_certs: "sslrootcert",
    cert: "sslcert",
    key: "sslkey",
};

impl PostgresConfig {
    /// The default pool size: enough for a threaded server's workers on a small machine.
    pub const DEFAULT_POOL_SIZE: usize = 8;
    /// The default time limit of one store call.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default interval of the expiry sweeper.
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

    /// Defaults for the server `connection` names.
    pub fn new(connection: tokio_postgres::Config) -> Self {
        Self {
            connection,
            pool_size: Self::DEFAULT_POOL_SIZE,
            timeout: Self::DEFAULT_TIMEOUT,
            sweep_interval: Some(Self::DEFAULT_SWEEP_INTERVAL),
            clock: Arc::new(SystemClock),
            // libpq's `prefer`: encrypted when the server offers it, unverified.
            tls: TlsFiles {
                ca_certs: None,
                client: None,
                verify: Verify::Nothing,
            },
        }
    }

    /// Parses a `postgresql://user:password@host:port/database?option=value&…`
    /// URL (or `postgres://`). Errors name what is wrong and never show the
    /// password.
    ///
    /// The store's own options:
    ///
    /// | option | default | meaning |
    /// |---|---|---|
    /// | `pool_size` | 8 | connections kept open at most |
    /// | `timeout_ms` | 5000 | time limit of one store call (and of connecting) |
    /// | `sweep_interval_ms` | 1000 | how often expired rows are swept; 0 turns the sweeper off |
    ///
    /// and these of libpq's, handled by tokio-postgres: `host`, `hostaddr`,
    /// `port`, `user`, `password`, `dbname`, `options` (e.g.
    /// `options=-c%20search_path%3Dmyschema` to keep the tables in a schema),
    /// `application_name`, `connect_timeout`, `tcp_user_timeout`, `keepalives`,
    /// `keepalives_idle`, `keepalives_interval`, `keepalives_retries`,
    /// `target_session_attrs`, `channel_binding` (`require` needs TLS),
    /// `load_balance_hosts`; and TLS as libpq names it: `sslmode` (`disable`,
    /// `prefer` (the default: TLS when the server offers it, certificate
    /// unchecked), `require` (TLS, certificate unchecked unless `sslrootcert`
    /// is given, then as `verify-ca`), `verify-ca` (signed by a trusted CA),
    /// `verify-full` (and issued for the host)), `sslrootcert` (PEM file of
    /// the CAs to trust; the system's trust store without it), `sslcert` and
    /// `sslkey` (a client certificate).
    pub fn from_url(url: &str) -> sessionmanager_core::Result<Self> {
        url::parse(url).map_err(|err| sessionmanager_core::scrub_error(err, url))
    }

    /// What the store connects to, for messages: host, port, database and user, never the password.
    pub fn describe(&self) -> String {
        Target::of(&self.connection).to_string()
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("server", &self.describe())
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("sweep_interval", &self.sweep_interval)
            .finish_non_exhaustive()
    }
}

//! Settings of a [`RedisStore`](crate::RedisStore), and the `redis://` URL that spells them.

mod url;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sessionmanager_core::{Clock, Error, Result, SystemClock};
#[cfg(doc)]
use sessionmanager_tls::Verify;
use sessionmanager_tls::{OptionNames, TlsFiles};

/// Settings of a Redis (or Valkey) store.
///
/// Build one with [`RedisConfig::new`] (one server), [`RedisConfig::sentinel`]
/// (the master Sentinel names), [`RedisConfig::cluster`] (a Redis Cluster),
/// or from a URL with [`RedisConfig::from_url`]:
/// `redis://[user[:password]@]host[:port][/db][?prefix=...&timeout_ms=...&sweep_on_create=...]`.
#[derive(Clone)]
pub struct RedisConfig {
    /// Where the server is: one address, or the sentinels that know it.
    pub server: Server,
    /// The logical database (`SELECT`), 0 unless set.
    pub db: i64,
    /// The ACL user name, if the server uses ACL users (the sentinels' own
    /// credentials are in [`SentinelConfig`]).
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
    /// them. 0 leaves all of it to
    /// [`purge_expired`](sessionmanager_core::SessionStore::purge_expired).
    pub sweep_on_create: u32,
    /// How many replicas must have each write before the store answers it
    /// (`WAIT`, for at most half of [`Self::timeout`]): 0, the default,
    /// answers once the master has it. Redis replicates asynchronously, so
    /// a master that fails before its replicas have a write loses it when a
    /// replica takes over; with 1 a write that returned is on a replica too
    /// (unless that replica fails as well), and one that no replica
    /// acknowledged in time fails with
    /// [`Error::Unavailable`](sessionmanager_core::Error::Unavailable), though
    /// the master has it.
    pub wait_replicas: u32,
    /// How often the store sweeps every bucket for expired sessions once a
    /// manager watches for expiry events (`None`: never; creates still
    /// sweep a few, see [`Self::sweep_on_create`]). Redis keeps an expired
    /// session's record for [`Self::KEEP_EXPIRED`] so that a sweep removes
    /// and reports it; hence at most [`Self::MAX_SWEEP_INTERVAL`].
    pub sweep_interval: Option<Duration>,
    /// The clock the sweeper judges expiry by; must be the manager's.
    pub clock: Arc<dyn Clock>,
    /// TLS settings (`rediss://`): the server's certificate and host name
    /// are checked ([`Verify::Full`]) unless `ssl_cert_reqs=none`
    /// ([`Verify::Nothing`]); `None` connects in plain text.
    pub tls: Option<TlsFiles>,
}

/// Where a store finds its server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Server {
    /// One server (a standalone Redis or Valkey, or a fixed primary).
    Standalone(Address),
    /// The master that Redis Sentinel names for a service: asked when the
    /// store connects, and again when the sentinels announce a failover.
    Sentinel(SentinelConfig),
    /// A Redis (or Valkey) Cluster, found from these nodes (any of its
    /// nodes will do; the store asks the first that answers for the rest).
    Cluster(Vec<Address>),
}

/// A host and TCP port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// A host name or IP address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl Address {
    /// `host` at `port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The sentinels that watch a master, and how to talk to them.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    /// The sentinels, asked in turn until one answers (the one that answers
    /// is asked first next time).
    pub sentinels: Vec<Address>,
    /// The name the sentinels monitor the master under (`sentinel monitor <name> …`).
    pub service: String,
    /// The sentinels' ACL user name, if they have their own.
    pub username: Option<String>,
    /// The sentinels' password (`requirepass` in sentinel.conf); never shown
    /// by `Debug` or in error messages.
    pub password: Option<String>,
}

impl fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelConfig")
            .field("sentinels", &self.sentinels)
            .field("service", &self.service)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
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

    /// How often the store sweeps for expired sessions to report, when no
    /// interval is given.
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(5);

    /// The longest sweep interval: a sweep must come well within
    /// [`Self::KEEP_EXPIRED`].
    pub const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

    /// How long past its expiry Redis keeps a session's record before
    /// removing it by itself (the record's TTL is its expiry plus this): the
    /// time a sweep has to remove and report it. No reader sees it meanwhile.
    pub const KEEP_EXPIRED: Duration = Duration::from_secs(60);

    /// The port Redis and Valkey listen on by default.
    pub const DEFAULT_PORT: u16 = 6379;

    /// The port Redis Sentinel listens on by default.
    pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

    /// The URL schemes [`Self::from_url`] reads.
    pub const SCHEMES: &[&str] = &[
        "redis",
        "rediss",
        "valkey",
        "valkeys",
        "redis+sentinel",
        "rediss+sentinel",
        "valkey+sentinel",
        "valkeys+sentinel",
        "redis+cluster",
        "rediss+cluster",
        "valkey+cluster",
        "valkeys+cluster",
    ];

    /// Defaults for the server at `host:port`: database 0, no credentials,
    /// [`Self::DEFAULT_PREFIX`], [`Self::DEFAULT_TIMEOUT`] and
    /// [`Self::DEFAULT_SWEEP_ON_CREATE`].
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self::with_server(Server::Standalone(Address::new(host, port)))
    }

    /// Defaults (as [`Self::new`]) for the master that `sentinels` name
    /// `service`, with no sentinel credentials.
    pub fn sentinel(sentinels: Vec<Address>, service: impl Into<String>) -> Self {
        Self::with_server(Server::Sentinel(SentinelConfig {
            sentinels,
            service: service.into(),
            username: None,
            password: None,
        }))
    }

    /// Defaults (as [`Self::new`]) for the Redis Cluster that any of
    /// `seeds` belongs to.
    pub fn cluster(seeds: Vec<Address>) -> Self {
        Self::with_server(Server::Cluster(seeds))
    }

    fn with_server(server: Server) -> Self {
        Self {
            server,
            db: 0,
            username: None,
            password: None,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            sweep_on_create: Self::DEFAULT_SWEEP_ON_CREATE,
            wait_replicas: 0,
            sweep_interval: Some(Self::DEFAULT_SWEEP_INTERVAL),
            clock: Arc::new(SystemClock),
            tls: None,
        }
    }

    /// Reads `redis://[user[:password]@]host[:port][/db][?options]` (or
    /// `valkey://`; `rediss://` and `valkeys://` for TLS), or
    /// `redis+sentinel://[user[:password]@]host[:port][,host[:port]…]/service[/db][?options]`
    /// for the master the sentinels at those addresses (port 26379 unless
    /// given) name `service` (likewise `valkey+sentinel://`, and
    /// `rediss+sentinel://` for TLS to sentinels and master alike); the user
    /// and password are the master's, `sentinel_username` and
    /// `sentinel_password` the sentinels' own. Or
    /// `redis+cluster://[user[:password]@]host[:port][,host[:port]…][/][?options]`
    /// for the Redis Cluster those nodes belong to (likewise
    /// `valkey+cluster://`, and `rediss+cluster://` for TLS to every node),
    /// which has database 0 only. Options: `prefix`
    /// (the key prefix, percent-encoded), `timeout_ms` (each operation's
    /// limit), `sweep_on_create` (expired sessions each create clears; 0
    /// for none), `sweep_interval_ms` (see [`Self::sweep_interval`]; 0 for
    /// none) and `wait_replicas` (see [`Self::wait_replicas`]); over
    /// TLS also `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` (PEM files)
    /// and `ssl_cert_reqs` (`required` or `none`), as [`TlsFiles`] holds
    /// them. User name, password and prefix are percent-decoded. Errors are
    /// [`Error::InvalidArgument`] naming the part that is wrong, never
    /// containing the password.
    pub fn from_url(url: &str) -> Result<Self> {
        url::parse(url).map_err(|url::UrlError(message)| {
            let message = sessionmanager_core::scrub(&message, url);
            Error::InvalidArgument(format!("bad Redis store URL: {message}"))
        })
    }

    /// `host:port/db` (with Sentinel, the service and its sentinels; on a
    /// cluster, its seed nodes), for messages: no credentials.
    pub fn address(&self) -> String {
        match &self.server {
            Server::Standalone(address) => format!("{address}/{}", self.db),
            Server::Sentinel(sentinel) => {
                let sentinels: Vec<String> =
                    sentinel.sentinels.iter().map(Address::to_string).collect();
                format!(
                    "the master {:?} of sentinels {} (db {})",
                    sentinel.service,
                    sentinels.join(","),
                    self.db
                )
            }
            Server::Cluster(seeds) => {
                let seeds: Vec<String> = seeds.iter().map(Address::to_string).collect();
                format!("the cluster of {}", seeds.join(","))
            }
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("server", &self.server)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("sweep_on_create", &self.sweep_on_create)
            .field("wait_replicas", &self.wait_replicas)
            .field("sweep_interval", &self.sweep_interval)
            .field("tls", &self.tls)
            .finish()
    }
}

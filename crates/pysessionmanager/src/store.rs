//! Choosing a store from its URL, and one type that is any of them.

use std::sync::Arc;
use std::time::Duration;

use sessionmanager_core::{
    Clock, CreateOutcome, DataLimits, EditOutcome, MemberEdit, MemoryStore, MemoryStoreConfig,
    Result, SaveOutcome, SessionKey, SessionRecord, SessionStore, Timestamp, UserLimit,
};
use sessionmanager_postgres::PostgresStore;
use sessionmanager_redis::RedisStore;
use sessionmanager_sqlite::{Durability, SqliteConfig, SqliteStore};

use crate::store_postgres::open_postgres;
use crate::store_redis::open_redis;

/// Any store the Python package can open.
#[derive(Debug)]
pub(crate) enum AnyStore {
    Memory(MemoryStore),
    Sqlite(SqliteStore),
    Redis(RedisStore),
    Postgres(PostgresStore),
}

/// Why a store could not be opened.
pub(crate) enum OpenError {
    /// The URL itself is wrong; the message names the problem.
    BadUrl(String),
    /// The URL is fine but the store failed to open (a bad file, a server down).
    Store(sessionmanager_core::Error),
}

/// Opens the store `url` names, e.g. `memory://`, `memory://?max_sessions=100000`
/// `sqlite:///sessions.db` or `redis://127.0.0.1:6379/0`.
pub(crate) fn open(url: &str, clock: Arc<dyn Clock>) -> Result<AnyStore, OpenError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(OpenError::BadUrl(format!(
            "store URL {:?} has no scheme; expected something like \"memory://\"",
            redact(url)
        )));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "memory" => open_memory(rest, clock).map(AnyStore::Memory),
        "sqlite" => open_sqlite(rest, clock).map(AnyStore::Sqlite),
        "redis" | "rediss" | "valkey" | "valkeys" => open_redis(url).map(AnyStore::Redis),
        "postgres" | "postgresql" => open_postgres(url, clock).map(AnyStore::Postgres),
        _ => Err(OpenError::BadUrl(format!(
            "unknown store scheme {scheme:?} in {:?}; supported: \"memory://\", \"sqlite:///path\", \"redis://host:port/db\", \"postgresql://user@host/db\"",
            redact(url)
        ))),
    }
}

fn open_memory(rest: &str, clock: Arc<dyn Clock>) -> Result<MemoryStore, OpenError> {
    let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !host.is_empty() && host != "/" {
        return Err(OpenError::BadUrl(format!(
            "memory:// takes no host or path, got {host:?}; write \"memory://\" or \"memory://?max_sessions=N\""
        )));
    }
    let mut config = MemoryStoreConfig {
        clock,
        ..MemoryStoreConfig::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    OpenError::BadUrl(format!(
                        "memory:// option {name} must be a positive integer, got {value:?}"
                    ))
                })
        };
        match name {
            "max_sessions" => config.max_sessions = Some(number()?),
            "shards" => config.shards = number()?.min(4096),
            // 0 turns the background sweeper off (tests that count purges need that).
            "sweep_interval_ms" => config.sweep_interval = sweep_interval(value, "memory://")?,
            _ => {
                return Err(OpenError::BadUrl(format!(
                    "unknown memory:// option {name:?}; known options: max_sessions, shards, sweep_interval_ms"
                )));
            }
        }
    }
    MemoryStore::new(config).map_err(OpenError::Store)
}

/// `sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (the
/// SQLAlchemy convention), with `?durability=normal|full`,
/// `busy_timeout_ms=N` and `sweep_interval_ms=N` (0 turns the sweeper off).
fn open_sqlite(rest: &str, clock: Arc<dyn Clock>) -> Result<SqliteStore, OpenError> {
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let Some(path) = location.strip_prefix('/').filter(|p| !p.is_empty()) else {
        return Err(OpenError::BadUrl(format!(
            "sqlite:// needs a file path, like \"sqlite:///sessions.db\" (relative) or \"sqlite:////var/lib/app/sessions.db\" (absolute); got {:?}",
            format!("sqlite://{rest}")
        )));
    };
    let mut config = SqliteConfig {
        clock,
        ..SqliteConfig::new(path)
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "durability" => {
                config.durability = match value {
                    "normal" => Durability::Normal,
                    "full" => Durability::Full,
                    _ => {
                        return Err(OpenError::BadUrl(format!(
                            "sqlite:// option durability must be \"normal\" or \"full\", got {value:?}"
                        )));
                    }
                }
            }
            "sweep_interval_ms" => config.sweep_interval = sweep_interval(value, "sqlite://")?,
            "busy_timeout_ms" => {
                config.busy_timeout = value.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                    OpenError::BadUrl(format!(
                        "sqlite:// option busy_timeout_ms must be a whole number of milliseconds, got {value:?}"
                    ))
                })?
            }
            _ => {
                return Err(OpenError::BadUrl(format!(
                    "unknown sqlite:// option {name:?}; known options: durability, busy_timeout_ms, sweep_interval_ms"
                )));
            }
        }
    }
    SqliteStore::open(config).map_err(OpenError::Store)
}

fn sweep_interval(value: &str, scheme: &str) -> Result<Option<Duration>, OpenError> {
    match value.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(ms) => Ok(Some(Duration::from_millis(ms))),
        Err(_) => Err(OpenError::BadUrl(format!(
            "{scheme} option sweep_interval_ms must be a whole number of milliseconds, got {value:?}"
        ))),
    }
}

pub(crate) use sessionmanager_core::redact_url as redact;

macro_rules! each_store {
    ($self:ident, $store:ident => $body:expr) => {
        match $self {
            AnyStore::Memory($store) => $body,
            AnyStore::Sqlite($store) => $body,
            AnyStore::Redis($store) => $body,
            AnyStore::Postgres($store) => $body,
        }
    };
}

impl SessionStore for AnyStore {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
    ) -> Result<CreateOutcome> {
        each_store!(self, s => s.create(key, record, limit, now).await)
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>> {
        each_store!(self, s => s.load(key, now).await)
    }

    async fn exists(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        each_store!(self, s => s.exists(key, now).await)
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        expected_version: u64,
        now: Timestamp,
    ) -> Result<SaveOutcome> {
        each_store!(self, s => s.save(key, record, expected_version, now).await)
    }

    async fn edit_in_place(
        &self,
        key: &SessionKey,
        edit: MemberEdit<'_>,
        limits: &DataLimits,
        now: Timestamp,
    ) -> Result<EditOutcome> {
        each_store!(self, s => s.edit_in_place(key, edit, limits, now).await)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_active: Timestamp,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        each_store!(self, s => s.touch(key, last_active, expires_at, now).await)
    }

    async fn delete(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        each_store!(self, s => s.delete(key, now).await)
    }

    async fn rotate(&self, old: &SessionKey, new: &SessionKey, now: Timestamp) -> Result<bool> {
        each_store!(self, s => s.rotate(old, new, now).await)
    }

    async fn list_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<(SessionKey, SessionRecord)>> {
        each_store!(self, s => s.list_user(user_id, now).await)
    }

    async fn delete_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
        now: Timestamp,
    ) -> Result<u64> {
        each_store!(self, s => s.delete_user(user_id, keep, now).await)
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        each_store!(self, s => s.purge_expired(now).await)
    }

    async fn count(&self, now: Timestamp) -> Result<u64> {
        each_store!(self, s => s.count(now).await)
    }

    async fn close(&self) -> Result<()> {
        each_store!(self, s => s.close().await)
    }
}

//! Choosing a store from its URL, and one type that is any of them.

use std::sync::Arc;

use sessionmanager_core::RateRead;
use sessionmanager_core::{
    Clock, CreateOutcome, DataLimits, EditOutcome, ExportCursor, ExportPage, ImportOutcome,
    MemberEdit, MemoryStore, MemoryStoreConfig, Result, SaveOutcome, SessionKey, SessionRecord,
    SessionStore, Timestamp, UserLimit,
};
use sessionmanager_postgres::{PostgresConfig, PostgresStore};
use sessionmanager_redis::{RedisConfig, RedisStore};
use sessionmanager_sqlite::{SqliteConfig, SqliteStore};

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
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(OpenError::BadUrl(format!(
            "store URL {:?} has no scheme; expected something like \"memory://\"",
            redact(url)
        )));
    };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "memory" => {
            let config = MemoryStoreConfig::from_url(url).map_err(bad_url)?;
            MemoryStore::open(MemoryStoreConfig { clock, ..config })
                .map(AnyStore::Memory)
                .map_err(OpenError::Store)
        }
        "sqlite" => {
            let config = SqliteConfig::from_url(url).map_err(bad_url)?;
            SqliteStore::open(SqliteConfig { clock, ..config })
                .map(AnyStore::Sqlite)
                .map_err(OpenError::Store)
        }
        redis if RedisConfig::SCHEMES.contains(&redis) => {
            let config = RedisConfig::from_url(url).map_err(bad_url)?;
            RedisStore::open(RedisConfig { clock, ..config })
                .map(AnyStore::Redis)
                .map_err(OpenError::Store)
        }
        "postgres" | "postgresql" => {
            let config = PostgresConfig::from_url(url).map_err(bad_url)?;
            PostgresStore::open(PostgresConfig { clock, ..config })
                .map(AnyStore::Postgres)
                .map_err(OpenError::Store)
        }
        _ => Err(OpenError::BadUrl(format!(
            "unknown store scheme {scheme:?} in {:?}; supported: \"memory://\", \
             \"sqlite:///path\", \"redis://host:port/db\", \
             \"redis+sentinel://host:port/service\", \"redis+cluster://host:port,host:port\", \
             \"postgresql://user@host/db\"",
            redact(url)
        ))),
    }
}

/// A store's refusal of its URL as the binding reports it (`ValueError`).
fn bad_url(err: sessionmanager_core::Error) -> OpenError {
    match err {
        sessionmanager_core::Error::InvalidArgument(message) => OpenError::BadUrl(message),
        other => OpenError::Store(other),
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

    async fn rate_load(&self, key: &SessionKey) -> Result<RateRead> {
        each_store!(self, s => s.rate_load(key).await)
    }

    async fn rate_store(
        &self,
        key: &SessionKey,
        expected: Option<i64>,
        tat_us: i64,
        now: Timestamp,
    ) -> Result<bool> {
        each_store!(self, s => s.rate_store(key, expected, tat_us, now).await)
    }

    async fn export_page(
        &self,
        cursor: &ExportCursor,
        limit: u32,
        now: Timestamp,
    ) -> Result<ExportPage> {
        each_store!(self, s => s.export_page(cursor, limit, now).await)
    }

    async fn import(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        each_store!(self, s => s.import(key, record, now).await)
    }

    async fn import_many(
        &self,
        sessions: &[(SessionKey, SessionRecord)],
        now: Timestamp,
    ) -> Result<Vec<ImportOutcome>> {
        each_store!(self, s => s.import_many(sessions, now).await)
    }

    fn swept(&self) -> u64 {
        each_store!(self, s => s.swept())
    }

    fn layout_version(&self) -> i64 {
        each_store!(self, s => s.layout_version())
    }

    fn token_route(&self, user_id: &str) -> Option<u16> {
        each_store!(self, s => s.token_route(user_id))
    }

    fn watch_expiry(&self, listener: sessionmanager_core::ExpiryListener) {
        each_store!(self, s => s.watch_expiry(listener))
    }

    async fn close(&self) -> Result<()> {
        each_store!(self, s => s.close().await)
    }
}

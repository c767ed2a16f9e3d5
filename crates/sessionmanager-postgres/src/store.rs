//! The PostgreSQL store: a pool of connections driven by the store's own
//! runtime, one statement per operation (a short transaction only when a
//! per-user limit must be enforced at creation, and a second look only to say
//! why a save was refused), and `now` from the engine in every statement, so
//! one clock decides expiry.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sessionmanager_core::RateRead;
use sessionmanager_core::{
    Clock, CreateOutcome, Error, ExpiredSession, ExpiryListener, ExpiryReports, ExportCursor,
    ExportPage, Periodic, Result, SaveOutcome, SessionKey, SessionRecord, SessionStore, Timestamp,
    UserLimit, block_on, rate_state_expiry,
};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::PostgresConfig;
use crate::conn::Conn;
use crate::error::pool_error;
use crate::executor::{Executor, POOL_WAIT, PoolWait, spawn};
use crate::row;
use crate::schema::{self, Schema};
use crate::sql;
use crate::sweeper;
use crate::target::Target;

/// Expired rows removed per statement, so no sweep holds many row locks for long.
pub(crate) const SWEEP_BATCH: u32 = 1_000;

/// The advisory-lock class of per-user locks (the two-key form, so it never
/// meets single-key locks of the application).
const USER_LOCK_CLASS: i32 = 0x7079_736d; // "pysm"

/// Sessions in a PostgreSQL table, shared by every process that connects to it.
pub struct PostgresStore {
    inner: Arc<Inner>,
    executor: Executor,
    /// `None` only while dropping in a forked child (see [`Drop`]).
    sweeper: Option<Periodic>,
}

/// What store calls share: the pool and the settings.
pub(crate) struct Inner {
    pool: Pool,
    pub(crate) target: Arc<Target>,
    timeout: Duration,
    closed: AtomicBool,
    pub(crate) clock: Arc<dyn Clock>,
    /// Expired sessions the sweeper removed (see `SessionStore::swept`).
    pub(crate) swept: AtomicU64,
    /// Told of every expired session a delete of this store removes: by
    /// sweeps and purges, and by ends, `delete_user` and creates under a
    /// user limit that find it expired (see `SessionStore::watch_expiry`).
    expiry: ExpiryReports,
    /// The process that opened the store: its runtime and sweeper threads
    /// exist only there, so a forked child must not use it.
    pid: u32,
}

impl PostgresStore {
    /// Connects, creates the tables if missing (or migrates them forward), and
    /// starts the sweeper. Fails within the configured timeout, with
    /// [`Error::Unavailable`] if the server cannot be reached and
    /// [`Error::Store`] for a refused login, a missing database, or tables
    /// written by a newer version.
    pub fn open(config: PostgresConfig) -> Result<Self> {
        Self::open_with_schema(config, &schema::SCHEMA)
    }

    /// [`PostgresStore::open`] with another schema, to test migrations.
    #[doc(hidden)]
    pub fn open_with_schema(config: PostgresConfig, schema: &'static Schema) -> Result<Self> {
        let target = Arc::new(Target::of(&config.connection));
        let tls = sessionmanager_tls::client_config(&config.tls, crate::config::TLS_OPTION_NAMES)?;
        let manager = Manager::from_config(
            config.connection.clone(),
            MakeRustlsConnect::new((*tls).clone()),
            ManagerConfig {
                // A connection the server closed is noticed by the client at
                // once; checking costs nothing, unlike a test query per call.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            // No deadlines of the pool's own: every call, waiting for a
            // connection included, runs under the store's one timeout.
            .build()
            .map_err(|e| Error::Store(format!("cannot build the connection pool: {e}").into()))?;
        let inner = Arc::new(Inner {
            pool,
            target,
            timeout: config.timeout,
            closed: AtomicBool::new(false),
            clock: config.clock.clone(),
            swept: AtomicU64::new(0),
            expiry: ExpiryReports::default(),
            pid: std::process::id(),
        });
        let executor = Executor::start()?;
        block_on(call(
            executor.handle(),
            &inner,
            "prepare the session tables",
            move |inner| async move {
                let mut conn = inner.conn("prepare the session tables").await?;
                schema::prepare(&mut conn, schema).await
            },
        ))?;
        let sweeper = sweeper::start(
            Arc::downgrade(&inner),
            executor.handle().clone(),
            config.sweep_interval,
        )?;
        Ok(Self {
            inner,
            executor,
            sweeper: Some(sweeper),
        })
    }

    /// Runs `task` (typically a whole manager call on this store) as a task
    /// of the store's own runtime, for asynchronous hosts: the store calls
    /// inside it then stay on that runtime, and the host waits for nothing
    /// but the task's own notice that it finished. Fails with
    /// [`Error::Closed`] once the store is closed (and in a forked child);
    /// a task still running then is dropped.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) || self.inner.forked() {
            return Err(Error::Closed);
        }
        self.executor.handle().spawn(task);
        Ok(())
    }

    /// Runs one store call on the runtime, within the timeout.
    fn call<T, F>(
        &self,
        doing: &'static str,
        work: impl FnOnce(Arc<Inner>) -> F,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        call(self.executor.handle(), &self.inner, doing, work)
    }

    /// Runs one store call on a pooled connection, within the timeout.
    fn with_conn<T, F>(
        &self,
        doing: &'static str,
        work: impl FnOnce(Conn) -> F + Send + 'static,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        self.call(doing, move |inner| async move {
            work(inner.conn(doing).await?).await
        })
    }
}

/// Runs `work` on the runtime behind `handle`, within the store's timeout;
/// fails at once with [`Error::Closed`] once the store is closed.
pub(crate) fn call<T, F>(
    handle: &Handle,
    inner: &Arc<Inner>,
    doing: &'static str,
    work: impl FnOnce(Arc<Inner>) -> F,
) -> impl Future<Output = Result<T>> + Send + 'static
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let task = if inner.closed.load(Ordering::Acquire) {
        Err(Error::Closed)
    } else if inner.forked() {
        Err(Error::Store(
            format!(
                "this PostgreSQL session store was opened in process {} and this is a forked \
                 child; open a store in each process (the Python package does this by itself)",
                inner.pid
            )
            .into(),
        ))
    } else {
        Ok(spawn(
            handle,
            inner.target.clone(),
            inner.pool.clone(),
            doing,
            inner.timeout,
            work(inner.clone()),
        ))
    };
    async move { task?.await }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.inner.target.to_string())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Whether this is a child forked after the store was opened.
    fn forked(&self) -> bool {
        std::process::id() != self.pid
    }

    /// A pooled connection for one call that will `doing`.
    pub(crate) async fn conn(self: &Arc<Self>, doing: &'static str) -> Result<Conn> {
        let status = self.pool.status();
        if status.available == 0 && status.size >= status.max_size {
            let _ = POOL_WAIT.try_with(PoolWait::start); // every connection is in use
        }
        let object = self.pool.get().await;
        let _ = POOL_WAIT.try_with(PoolWait::stop);
        let object = object.map_err(|e| pool_error(&self.target, doing, e))?;
        Ok(Conn::new(object, self.clone(), doing))
    }

    /// Deletes up to [`SWEEP_BATCH`] rows expired at `now`, tells the
    /// expiry listener which; returns how many.
    pub(crate) async fn sweep_batch(self: Arc<Self>, now: Timestamp) -> Result<u64> {
        let doing = "remove expired sessions";
        let rows = self
            .conn(doing)
            .await?
            .query(sql::SWEEP, &[&now.millis(), &i64::from(SWEEP_BATCH)])
            .await?;
        self.expiry.report(rows.len(), || {
            rows.iter().filter_map(|row| row::removed(row, 0)).collect()
        });
        let removed = rows.len() as u64;
        Ok(removed)
    }

    /// Deletes up to [`SWEEP_BATCH`] rate-limit states that stopped
    /// mattering at `now`; returns how many.
    pub(crate) async fn sweep_rate_batch(self: Arc<Self>, now: Timestamp) -> Result<u64> {
        self.sweep_with(sql::RATE_SWEEP, "remove rate-limit state", now)
            .await
    }

    /// Runs the batch delete `statement` (now, batch size).
    async fn sweep_with(
        self: &Arc<Self>,
        statement: &str,
        doing: &'static str,
        now: Timestamp,
    ) -> Result<u64> {
        let mut conn = self.conn(doing).await?;
        conn.execute(statement, &[&now.millis(), &i64::from(SWEEP_BATCH)])
            .await
    }
}

/// The per-user advisory lock's key: 32 bits of a hash of the user id
/// (a collision only makes two users' creates wait for each other).
fn user_lock_key(user_id: &str) -> i32 {
    let digest = Sha256::digest(user_id.as_bytes());
    i32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Creates under a per-user limit, in one transaction holding the user's lock,
/// so concurrent creates for one user (from any process) count each other.
/// Returns the outcome and the user's expired sessions the transaction
/// removed (gone only if it commits).
async fn create_limited(
    conn: &mut Conn,
    key: &SessionKey,
    record: &SessionRecord,
    limit: UserLimit,
    now: Timestamp,
) -> Result<(CreateOutcome, Vec<ExpiredSession>)> {
    let user_id: &str = &record.user_id;
    let rows = conn
        .query(
            sql::USER_LIMIT_STATE,
            &[&user_id, &now.millis(), &key.as_bytes().as_slice()],
        )
        .await?;
    let Some(state) = rows.first() else {
        return Err(Error::Store(
            "reading a user's sessions before a create returned no row".into(),
        ));
    };
    let (taken, live): (bool, i64) = (state.get(0), state.get(1));
    let expired = rows.iter().filter_map(|row| row::removed(row, 2)).collect();
    if taken {
        return Ok((CreateOutcome::KeyTaken, expired));
    }
    let max = i64::from(limit.max_sessions);
    let mut evicted = 0;
    if live >= max {
        if !limit.evict_oldest {
            return Ok((CreateOutcome::UserLimitReached, expired));
        }
        evicted = conn
            .execute(sql::EVICT_OLDEST, &[&user_id, &(live - max + 1)])
            .await? as u32;
    }
    let outcome = match insert(conn, key, record, now).await? {
        true => CreateOutcome::Created { evicted },
        false => CreateOutcome::KeyTaken,
    };
    Ok((outcome, expired))
}

/// Inserts the record unless a live one holds the key; returns whether it did.
async fn insert(
    conn: &mut Conn,
    key: &SessionKey,
    record: &SessionRecord,
    now: Timestamp,
) -> Result<bool> {
    let inserted = conn
        .execute(
            sql::INSERT,
            &[
                &key.as_bytes().as_slice(),
                &&*record.user_id,
                &record.data.as_json(),
                &(record.version as i64),
                &record.created_at.millis(),
                &record.last_active.millis(),
                &record.expires_at.millis(),
                &record.idle_timeout_ms,
                &record.sliding,
                &record.absolute_expires_at.map(Timestamp::millis),
                &now.millis(),
            ],
        )
        .await?;
    Ok(inserted == 1)
}

impl SessionStore for PostgresStore {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
    ) -> Result<CreateOutcome> {
        let (key, record) = (*key, record.clone());
        let (outcome, expired) = self
            .with_conn("create a session", move |mut conn| async move {
                let Some(limit) = limit else {
                    let outcome = match insert(&mut conn, &key, &record, now).await? {
                        true => CreateOutcome::Created { evicted: 0 },
                        false => CreateOutcome::KeyTaken,
                    };
                    return Ok((outcome, Vec::new()));
                };
                let lock = user_lock_key(&record.user_id);
                conn.begin(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({USER_LOCK_CLASS}, {lock})"
                ))
                .await?;
                let limited = create_limited(&mut conn, &key, &record, limit, now).await;
                let (outcome, expired) = conn.rollback_on_error(limited).await?;
                match outcome {
                    CreateOutcome::Created { .. } => conn.commit().await?,
                    _ => {
                        // Undone with the rest: the expired sessions stay, for a sweep to report.
                        conn.rollback().await?;
                        return Ok((outcome, Vec::new()));
                    }
                }
                Ok((outcome, expired))
            })
            .await?;
        // Committed, and the connection back in the pool, as after a sweep.
        self.inner.expiry.report(expired.len(), || expired);
        Ok(outcome)
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>> {
        let key = *key;
        self.with_conn("read a session", move |mut conn| async move {
            let row = conn
                .query_opt(sql::LOAD, &[&key.as_bytes().as_slice(), &now.millis()])
                .await?;
            row.map(|row| row::record(&row).map(|(_, record)| record))
                .transpose()
        })
        .await
    }

    async fn exists(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        let key = *key;
        self.with_conn("look up a session", move |mut conn| async move {
            let row = conn
                .query_opt(sql::EXISTS, &[&key.as_bytes().as_slice(), &now.millis()])
                .await?;
            Ok(row.is_some())
        })
        .await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        expected_version: u64,
        now: Timestamp,
    ) -> Result<SaveOutcome> {
        let (key, record) = (*key, record.clone());
        self.with_conn("update a session", move |mut conn| async move {
            let key_bytes = key.as_bytes().as_slice();
            let changed = conn
                .execute(
                    sql::SAVE,
                    &[
                        &record.data.as_json(),
                        &(record.version as i64),
                        &record.last_active.millis(),
                        &record.expires_at.millis(),
                        &key_bytes,
                        &now.millis(),
                        &(expected_version as i64),
                    ],
                )
                .await?;
            if changed == 1 {
                return Ok(SaveOutcome::Saved);
            }
            // Not written: say why, from a fresh look (versions only grow).
            let actual = conn
                .query_opt(sql::VERSION, &[&key_bytes, &now.millis()])
                .await?;
            Ok(match actual {
                Some(row) => SaveOutcome::Conflict {
                    actual: row.get::<_, i64>(0) as u64,
                },
                None => SaveOutcome::NotFound,
            })
        })
        .await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_active: Timestamp,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let key = *key;
        self.with_conn("refresh a session", move |mut conn| async move {
            let changed = conn
                .execute(
                    sql::TOUCH,
                    &[
                        &last_active.millis(),
                        &expires_at.millis(),
                        &key.as_bytes().as_slice(),
                        &now.millis(),
                    ],
                )
                .await?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        let key = *key;
        let removed = self
            .with_conn("delete a session", move |mut conn| async move {
                let row = conn
                    .query_opt(sql::DELETE, &[&key.as_bytes().as_slice()])
                    .await?;
                Ok(row.and_then(|row| row::removed(&row, 0)))
            })
            .await?;
        match removed {
            // Removed after it expired: not an end, which only a live one
            // counts as, but an expired session gone, told as a sweep would.
            Some(session) if session.expires_at <= now => {
                self.inner.expiry.report(1, || vec![session]);
                Ok(false)
            }
            removed => Ok(removed.is_some()),
        }
    }

    async fn rotate(&self, old: &SessionKey, new: &SessionKey, now: Timestamp) -> Result<bool> {
        let (old, new) = (*old, *new);
        self.with_conn("rotate a session", move |mut conn| async move {
            let row = conn
                .query_one(
                    sql::ROTATE,
                    &[
                        &new.as_bytes().as_slice(),
                        &old.as_bytes().as_slice(),
                        &now.millis(),
                    ],
                )
                .await?;
            let (taken, moved): (bool, i64) = (row.get(0), row.get(1));
            if taken {
                return Err(Error::RotationTargetTaken);
            }
            Ok(moved == 1)
        })
        .await
    }

    async fn list_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<(SessionKey, SessionRecord)>> {
        let user_id = user_id.to_owned();
        self.with_conn("list a user's sessions", move |mut conn| async move {
            let rows = conn
                .query(sql::LIST_USER, &[&user_id, &now.millis()])
                .await?;
            rows.iter().map(row::record).collect()
        })
        .await
    }

    async fn delete_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
        now: Timestamp,
    ) -> Result<u64> {
        let (user_id, keep) = (user_id.to_owned(), keep.copied());
        let (live, expired) = self
            .with_conn("end a user's sessions", move |mut conn| async move {
                let keep = keep.as_ref().map(|k| k.as_bytes().as_slice());
                let rows = conn
                    .query(sql::DELETE_USER, &[&user_id, &keep, &now.millis()])
                    .await?;
                let live = rows.first().map_or(0, |row| row.get::<_, i64>(0) as u64);
                let expired: Vec<_> = rows.iter().filter_map(|row| row::removed(row, 1)).collect();
                Ok((live, expired))
            })
            .await?;
        self.inner.expiry.report(expired.len(), || expired);
        Ok(live)
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        let mut total = 0;
        loop {
            let removed = self
                .call("remove expired sessions", move |inner| {
                    inner.sweep_batch(now)
                })
                .await?;
            total += removed;
            if removed < u64::from(SWEEP_BATCH) {
                return Ok(total);
            }
        }
    }

    async fn rate_load(&self, key: &SessionKey) -> Result<RateRead> {
        let key = *key;
        self.with_conn("read rate-limit state", move |mut conn| async move {
            let row = conn
                .query_one(sql::RATE_LOAD, &[&key.as_bytes().as_slice()])
                .await?;
            Ok(RateRead {
                tat_us: row.get(0),
                store_now_us: Some(row.get(1)),
            })
        })
        .await
    }

    async fn rate_store(
        &self,
        key: &SessionKey,
        expected: Option<i64>,
        tat_us: i64,
        now: Timestamp,
    ) -> Result<bool> {
        let key = *key;
        let until = rate_state_expiry(tat_us).millis();
        self.with_conn("write rate-limit state", move |mut conn| async move {
            let key = key.as_bytes().as_slice();
            let changed = match expected {
                None => {
                    conn.execute(sql::RATE_INSERT, &[&key, &tat_us, &until, &now.millis()])
                        .await?
                }
                Some(expected) => {
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                        [&key, &tat_us, &until, &expected, &now.millis()];
                    conn.execute(sql::RATE_UPDATE, &params).await?
                }
            };
            Ok(changed == 1)
        })
        .await
    }

    async fn count(&self, now: Timestamp) -> Result<u64> {
        self.with_conn("count sessions", move |mut conn| async move {
            let row = conn.query_one(sql::COUNT, &[&now.millis()]).await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
        .await
    }

    async fn export_page(
        &self,
        cursor: &ExportCursor,
        limit: u32,
        now: Timestamp,
    ) -> Result<ExportPage> {
        let after = cursor.after_key("PostgreSQL")?;
        let after = after.map_or_else(Vec::new, |key| key.as_bytes().to_vec());
        let sessions = self
            .with_conn("export sessions", move |mut conn| async move {
                let rows = conn
                    .query(
                        sql::EXPORT_PAGE,
                        &[&after, &now.millis(), &i64::from(limit)],
                    )
                    .await?;
                rows.iter().map(row::record).collect()
            })
            .await?;
        Ok(ExportCursor::key_ordered_page(sessions, limit))
    }

    fn layout_version(&self) -> i64 {
        crate::schema::SCHEMA.version()
    }

    fn watch_expiry(&self, listener: ExpiryListener) {
        self.inner.expiry.set(listener);
    }

    fn swept(&self) -> u64 {
        self.inner.swept.load(Ordering::Relaxed)
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        if !self.inner.forked() {
            self.shutdown(); // in a forked child the parent's threads are not here to stop
        }
        Ok(())
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Release);
        if self.inner.forked() {
            // The sweeper and runtime threads belong to the parent: joining or
            // signalling them here could hang, so their handles are leaked.
            std::mem::forget(self.sweeper.take());
            self.executor.forget();
            return;
        }
        self.shutdown();
    }
}

impl PostgresStore {
    /// Closes the pool and stops the runtime, then the sweeper. The runtime
    /// goes first: a sweep waiting on a hung server then ends at once instead
    /// of holding `close` for its whole timeout.
    fn shutdown(&self) {
        self.inner.pool.close();
        self.executor.shutdown();
        if let Some(sweeper) = &self.sweeper {
            sweeper.stop();
        }
    }
}

//! The SQLite store: one writer connection, a few reader connections (WAL
//! lets reads proceed while the writer commits), and one statement, or one
//! short IMMEDIATE transaction, per operation.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLockReadGuard};

use rusqlite::{Connection, OptionalExtension, params};
use sessionmanager_core::RateRead;
use sessionmanager_core::{
    Clock, CreateOutcome, Error, ExpiredSession, ExpiryListener, ExpiryReports, ExportCursor,
    ExportPage, Periodic, Result, SaveOutcome, SessionKey, SessionRecord, SessionStore, Timestamp,
    UserLimit, rate_state_expiry,
};

use crate::config::SqliteConfig;
use crate::error::store_error;
use crate::fork;
use crate::row;
use crate::schema;
use crate::sql;
use crate::sweeper;
use crate::writer::Writer;

/// Expired rows removed per statement, so the writer is never held for long.
pub(crate) const SWEEP_BATCH: u32 = 500;

/// Sessions `delete_user` ends per transaction, so that a user with very
/// many never holds the write lock for long.
const END_USER_BATCH: u32 = 500;

/// Sessions in a SQLite file, shared safely by every process that opens it.
pub struct SqliteStore {
    inner: Arc<Inner>,
    sweeper: Periodic,
}

pub(crate) struct Inner {
    writer: Writer,
    /// `None` once closed: closing releases the file.
    readers: Vec<Mutex<Option<Connection>>>,
    next_reader: AtomicUsize,
    closed: AtomicBool,
    pub(crate) clock: Arc<dyn Clock>,
    /// Expired sessions the sweeper removed (see `SessionStore::swept`).
    pub(crate) swept: AtomicU64,
    /// Told of every expired session a delete of this store removes: by
    /// sweeps and purges, and by ends, `delete_user` and creates under a
    /// user limit that find it expired (see `SessionStore::watch_expiry`).
    expiry: ExpiryReports,
    /// What the connections are opened with, to reopen them after a fork.
    config: SqliteConfig,
    /// The process that opened the store; see [`crate::fork`].
    pid: u32,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `config.path`. Fails with a
    /// clear error, leaving the file untouched, if it is not SQLite, belongs to
    /// something else, or was written by a newer version.
    pub fn open(config: SqliteConfig) -> Result<Self> {
        let mut writer = schema::connect(&config)?;
        schema::prepare(&mut writer, &config)?;
        schema::configure(&writer, &config)?;
        let readers = (0..config.readers.max(1))
            .map(|_| open_reader(&config).map(|reader| Mutex::new(Some(reader))))
            .collect::<Result<Vec<_>>>()?;
        let inner = Arc::new(Inner {
            writer: Writer::new(writer, config.busy_timeout),
            readers,
            next_reader: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            clock: config.clock.clone(),
            swept: AtomicU64::new(0),
            expiry: ExpiryReports::default(),
            config: config.clone(),
            pid: std::process::id(),
        });
        fork::register(&inner);
        let sweeper = sweeper::start(Arc::downgrade(&inner), config.sweep_interval)?;
        Ok(Self { inner, sweeper })
    }

    fn open_inner(&self) -> Result<&Inner> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if std::process::id() != self.inner.pid {
            return Err(Error::Store(
                format!(
                    "this SQLite session store was opened in process {} and this is a forked \
                     child; open a store in each process (the Python package does this by itself)",
                    self.inner.pid
                )
                .into(),
            ));
        }
        Ok(&self.inner)
    }
}

fn open_reader(config: &SqliteConfig) -> Result<Connection> {
    let reader = schema::connect(config)?;
    schema::configure(&reader, config)?;
    Ok(reader)
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.config.path)
            .finish_non_exhaustive()
    }
}

/// A locked, open connection (which a fork waits for).
pub(crate) struct Conn<'a> {
    connection: MutexGuard<'a, Option<Connection>>,
    /// Released after the connection (fields drop in order).
    _fork_gate: RwLockReadGuard<'static, ()>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection.as_ref().expect("checked open when locked")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.connection.as_mut().expect("checked open when locked")
    }
}

fn lock(conn: &Mutex<Option<Connection>>) -> Result<Conn<'_>> {
    let gate = fork::enter();
    // A connection is left consistent by SQLite itself whatever happened to the thread.
    let guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.is_none() {
        return Err(Error::Closed);
    }
    Ok(Conn {
        connection: guard,
        _fork_gate: gate,
    })
}

impl Inner {
    /// Closes every connection, so none crosses a fork (see [`crate::fork`]).
    pub(crate) fn suspend(&self) {
        self.writer.close();
        for reader in &self.readers {
            reader.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
    }

    /// Reopens the connections [`Inner::suspend`] closed, unless the store
    /// was closed meanwhile. A connection that cannot be reopened (the file
    /// was removed) stays closed, and calls that need it fail as closed.
    pub(crate) fn resume(&self) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(writer) = schema::connect(&self.config)
            .and_then(|conn| schema::configure(&conn, &self.config).map(|()| conn))
        {
            self.writer.reopen(writer);
        }
        for reader in &self.readers {
            if let Ok(conn) = open_reader(&self.config) {
                *reader.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn);
            }
        }
    }

    fn reader(&self) -> Result<Conn<'_>> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        lock(&self.readers[i])
    }

    /// Deletes up to [`SWEEP_BATCH`] expired rows, tells the expiry
    /// listener which; returns how many.
    pub(crate) fn sweep_batch(&self, now: Timestamp) -> Result<u64> {
        let expired = self.writer.run(move |conn| {
            conn.prepare_cached(sql::SWEEP)
                .and_then(|mut stmt| {
                    stmt.query_map(params![now.millis(), SWEEP_BATCH], row::removed)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(store_error("remove expired sessions"))
        })?;
        let removed = expired.len() as u64;
        self.expiry.report(expired.len(), || expired);
        Ok(removed)
    }

    /// Removes up to [`SWEEP_BATCH`] rate-limit states that stopped
    /// mattering at `now`; returns how many.
    pub(crate) fn sweep_rate_batch(&self, now: Timestamp) -> Result<u64> {
        self.sweep_with(sql::RATE_SWEEP, "remove rate-limit state", now)
    }

    /// Runs the batch delete `statement` (now, batch size) on the writer.
    fn sweep_with(
        &self,
        statement: &'static str,
        doing: &'static str,
        now: Timestamp,
    ) -> Result<u64> {
        self.writer.run(move |conn| {
            conn.prepare_cached(statement)
                .and_then(|mut stmt| stmt.execute(params![now.millis(), SWEEP_BATCH]))
                .map(|removed| removed as u64)
                .map_err(store_error(doing))
        })
    }
}

/// Evicts or refuses for `limit` inside the create's transaction, after
/// removing the user's expired sessions (so that only live ones count).
/// Returns the number evicted, or `None` to refuse, and the expired sessions
/// removed, which the transaction removes either way.
fn enforce_limit(
    conn: &Connection,
    user_id: &str,
    limit: UserLimit,
    now: Timestamp,
) -> rusqlite::Result<(Option<u32>, Vec<ExpiredSession>)> {
    let expired = conn
        .prepare_cached(sql::TRIM_USER)?
        .query_map(params![user_id, now.millis()], row::removed)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let live: i64 = conn
        .prepare_cached(sql::COUNT_USER)?
        .query_row(params![user_id], |row| row.get(0))?;
    let max = i64::from(limit.max_sessions);
    if live < max {
        return Ok((Some(0), expired));
    }
    if !limit.evict_oldest {
        return Ok((None, expired));
    }
    let evicted = conn
        .prepare_cached(sql::EVICT_OLDEST)?
        .execute(params![user_id, live - max + 1])?;
    Ok((Some(evicted as u32), expired))
}

fn live_key_taken(conn: &Connection, key: &SessionKey, now: Timestamp) -> Result<bool> {
    conn.prepare_cached(sql::LIVE_KEY)
        .and_then(|mut stmt| stmt.exists(params![key.as_bytes(), now.millis()]))
        .map_err(store_error("look up a session"))
}

fn key_taken(conn: &Connection, key: &SessionKey) -> Result<bool> {
    conn.prepare_cached(sql::ANY_KEY)
        .and_then(|mut stmt| stmt.exists(params![key.as_bytes()]))
        .map_err(store_error("look up a session"))
}

impl SessionStore for SqliteStore {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
    ) -> Result<CreateOutcome> {
        let (key, record) = (*key, record.clone());
        let inner = self.open_inner()?;
        let (outcome, expired) = inner.writer.run(move |conn| {
            // The insert below notices a taken key by itself; look first
            // only when a limit might evict sessions for a create that fails.
            if limit.is_some() && live_key_taken(conn, &key, now)? {
                return Ok((CreateOutcome::KeyTaken, Vec::new()));
            }
            let (evicted, expired) = match limit {
                Some(limit) => match enforce_limit(conn, &record.user_id, limit, now)
                    .map_err(store_error("enforce the per-user session limit"))?
                {
                    (Some(evicted), expired) => (evicted, expired),
                    // Refused, but committed: the expired sessions are gone.
                    (None, expired) => return Ok((CreateOutcome::UserLimitReached, expired)),
                },
                None => (0, Vec::new()),
            };
            let inserted = conn
                .prepare_cached(sql::INSERT)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        key.as_bytes(),
                        &*record.user_id,
                        record.data.as_json(),
                        record.version as i64,
                        record.created_at.millis(),
                        record.last_active.millis(),
                        record.expires_at.millis(),
                        record.idle_timeout_ms,
                        record.sliding,
                        record.absolute_expires_at.map(Timestamp::millis),
                        now.millis(),
                    ])
                })
                .map_err(store_error("insert a session"))?;
            let outcome = match inserted {
                0 => CreateOutcome::KeyTaken,
                _ => CreateOutcome::Created { evicted },
            };
            Ok((outcome, expired))
        })?;
        // Committed: report outside the writer, as a sweep does.
        inner.expiry.report(expired.len(), || expired);
        Ok(outcome)
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>> {
        let conn = self.open_inner()?.reader()?;
        conn.prepare_cached(sql::LOAD)
            .and_then(|mut stmt| {
                stmt.query_row(params![key.as_bytes(), now.millis()], row::record)
                    .optional()
            })
            .map(|found| found.map(|(_, record)| record))
            .map_err(store_error("read a session"))
    }

    async fn exists(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        let conn = self.open_inner()?.reader()?;
        live_key_taken(&conn, key, now)
    }

    async fn rate_load(&self, key: &SessionKey) -> Result<RateRead> {
        let conn = self.open_inner()?.reader()?;
        let tat_us = conn
            .prepare_cached(sql::RATE_LOAD)
            .and_then(|mut stmt| {
                stmt.query_row(params![key.as_bytes()], |row| row.get(0))
                    .optional()
            })
            .map_err(store_error("read rate-limit state"))?;
        // One machine's file: the manager's clock is the only one there is.
        Ok(RateRead {
            tat_us,
            store_now_us: None,
        })
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
        self.open_inner()?.writer.run(move |conn| {
            let written = match expected {
                None => conn.prepare_cached(sql::RATE_INSERT).and_then(|mut stmt| {
                    stmt.execute(params![key.as_bytes(), tat_us, until, now.millis()])
                }),
                Some(expected) => conn.prepare_cached(sql::RATE_UPDATE).and_then(|mut stmt| {
                    stmt.execute(params![
                        key.as_bytes(),
                        tat_us,
                        until,
                        expected,
                        now.millis()
                    ])
                }),
            };
            written
                .map(|changed| changed == 1)
                .map_err(store_error("write rate-limit state"))
        })
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        expected_version: u64,
        now: Timestamp,
    ) -> Result<SaveOutcome> {
        let (key, record) = (*key, record.clone());
        self.open_inner()?.writer.run(move |conn| {
            let changed = conn
                .prepare_cached(sql::SAVE)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        record.data.as_json(),
                        record.version as i64,
                        record.last_active.millis(),
                        record.expires_at.millis(),
                        key.as_bytes(),
                        now.millis(),
                        expected_version as i64,
                    ])
                })
                .map_err(store_error("update a session"))?;
            if changed == 1 {
                return Ok(SaveOutcome::Saved);
            }
            let actual: Option<i64> = conn
                .prepare_cached(sql::VERSION)
                .and_then(|mut stmt| {
                    stmt.query_row(params![key.as_bytes(), now.millis()], |row| row.get(0))
                        .optional()
                })
                .map_err(store_error("read a session's version"))?;
            Ok(match actual {
                Some(actual) => SaveOutcome::Conflict {
                    actual: actual as u64,
                },
                None => SaveOutcome::NotFound,
            })
        })
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_active: Timestamp,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let key = *key;
        self.open_inner()?.writer.run(move |conn| {
            conn.prepare_cached(sql::TOUCH)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        last_active.millis(),
                        expires_at.millis(),
                        key.as_bytes(),
                        now.millis()
                    ])
                })
                .map(|changed| changed == 1)
                .map_err(store_error("refresh a session"))
        })
    }

    async fn delete(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        let key = *key;
        let inner = self.open_inner()?;
        let removed = inner.writer.run(move |conn| {
            conn.prepare_cached(sql::DELETE)
                .and_then(|mut stmt| {
                    stmt.query_row(params![key.as_bytes()], row::removed)
                        .optional()
                })
                .map_err(store_error("delete a session"))
        })?;
        match removed {
            // Removed after it expired: not an end, which only a live one
            // counts as, but an expired session gone, told as a sweep would.
            Some(session) if session.expires_at <= now => {
                inner.expiry.report(1, || vec![session]);
                Ok(false)
            }
            removed => Ok(removed.is_some()),
        }
    }

    async fn rotate(&self, old: &SessionKey, new: &SessionKey, now: Timestamp) -> Result<bool> {
        let (old, new) = (*old, *new);
        self.open_inner()?.writer.run(move |conn| {
            if key_taken(conn, &new)? {
                return Err(Error::RotationTargetTaken);
            }
            conn.prepare_cached(sql::ROTATE)
                .and_then(|mut stmt| {
                    stmt.execute(params![new.as_bytes(), old.as_bytes(), now.millis()])
                })
                .map(|moved| moved == 1)
                .map_err(store_error("rotate a session"))
        })
    }

    async fn list_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<(SessionKey, SessionRecord)>> {
        let conn = self.open_inner()?.reader()?;
        let mut stmt = conn
            .prepare_cached(sql::LIST_USER)
            .map_err(store_error("list a user's sessions"))?;
        stmt.query_map(params![user_id, now.millis()], row::record)
            .and_then(|rows| rows.collect())
            .map_err(store_error("list a user's sessions"))
    }

    async fn delete_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
        now: Timestamp,
    ) -> Result<u64> {
        let user_id: Arc<str> = user_id.into();
        let keep = keep.map(|k| k.as_bytes().to_vec());
        let inner = self.open_inner()?;
        let mut live = 0;
        // Batches in transactions of their own, so that other writers get
        // the database in between however many sessions the user has.
        loop {
            let (user_id, keep) = (user_id.clone(), keep.clone());
            let removed = inner.writer.run(move |conn| {
                conn.prepare_cached(sql::DELETE_USER_BATCH)
                    .and_then(|mut stmt| {
                        stmt.query_map(params![user_id, keep, END_USER_BATCH], row::removed)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(store_error("end a user's sessions"))
            })?;
            let last = removed.len() < END_USER_BATCH as usize;
            let (expired, ended): (Vec<_>, Vec<_>) = removed
                .into_iter()
                .partition(|session| session.expires_at <= now);
            live += ended.len() as u64;
            // Each batch is committed: report it now, outside the writer.
            inner.expiry.report(expired.len(), || expired);
            if last {
                return Ok(live);
            }
        }
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        let inner = self.open_inner()?;
        let mut total = 0;
        loop {
            let removed = inner.sweep_batch(now)?;
            total += removed;
            if removed < u64::from(SWEEP_BATCH) {
                return Ok(total);
            }
        }
    }

    async fn count(&self, now: Timestamp) -> Result<u64> {
        let conn = self.open_inner()?.reader()?;
        conn.prepare_cached(sql::COUNT)
            .and_then(|mut stmt| stmt.query_row(params![now.millis()], |row| row.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(store_error("count sessions"))
    }

    async fn export_page(
        &self,
        cursor: &ExportCursor,
        limit: u32,
        now: Timestamp,
    ) -> Result<ExportPage> {
        let after = cursor.after_key("SQLite")?;
        let after = after.as_ref().map_or(&[][..], |key| key.as_bytes());
        let conn = self.open_inner()?.reader()?;
        let mut stmt = conn
            .prepare_cached(sql::EXPORT_PAGE)
            .map_err(store_error("export sessions"))?;
        let sessions = stmt
            .query_map(params![after, now.millis(), limit], row::record)
            .and_then(|rows| rows.collect())
            .map_err(store_error("export sessions"))?;
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
        self.sweeper.stop();
        self.inner.writer.close();
        for conn in &self.inner.readers {
            conn.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
        Ok(())
    }
}

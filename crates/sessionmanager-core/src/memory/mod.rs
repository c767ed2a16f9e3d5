//! The in-memory store: sharded, safe across threads, swept in the background.

mod config;
mod export;
mod rates;
mod shards;
mod spread;
mod stored;
mod sweeper;
#[cfg(test)]
mod tests;
mod users;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::events::{ExpiredSession, ExpiryListener, ExpiryReports};
use crate::export::{ExportCursor, ExportPage};
use crate::periodic::Periodic;
use crate::record::SessionRecord;
use crate::store::{CreateOutcome, RateRead, SaveOutcome, SessionStore, UserLimit};
use crate::token::SessionKey;
use shards::{KeyPrefix, Shards, Swept, sweep_range};
use stored::Stored;
use users::{UserEntry, UserIndex};

pub use config::MemoryStoreConfig;

/// Sessions in this process's memory. Fast, and gone when the process exits.
pub struct MemoryStore {
    inner: Arc<Inner>,
    sweeper: Mutex<Periodic>,
    sweep_interval: Option<Duration>,
}

pub(crate) struct Inner {
    shards: Shards,
    users: UserIndex,
    rates: rates::Rates,
    /// Records held, live or expired-but-unswept; bounded by `max_sessions`.
    len: AtomicUsize,
    max_sessions: Option<usize>,
    /// No record expires before this (a lower bound), so a full store of live
    /// sessions refuses at once instead of rescanning itself on every create.
    earliest_expiry: AtomicI64,
    closed: AtomicBool,
    clock: Arc<dyn Clock>,
    /// Expired records the sweeper removed (see `SessionStore::swept`).
    swept: AtomicU64,
    /// Told of every expired session a delete of this store removes (see
    /// `SessionStore::watch_expiry`).
    expiry: ExpiryReports,
}

/// What one [`Inner::sweep_chunk`] did.
pub(crate) struct SweptChunk {
    /// The walk: buckets visited, records examined, where to continue.
    swept: Swept,
    /// Expired records removed among them.
    removed: usize,
}

impl MemoryStore {
    /// Opens a store with the given settings (as every store is opened); starts
    /// its sweeper thread.
    pub fn open(config: MemoryStoreConfig) -> Result<Self> {
        let inner = Arc::new(Inner {
            shards: Shards::new(config.shards),
            users: UserIndex::new(config.shards),
            rates: rates::Rates::new(config.shards),
            len: AtomicUsize::new(0),
            max_sessions: config.max_sessions,
            earliest_expiry: AtomicI64::new(i64::MAX),
            closed: AtomicBool::new(false),
            swept: AtomicU64::new(0),
            expiry: ExpiryReports::default(),
            clock: config.clock,
        });
        let sweeper = sweeper::start(Arc::downgrade(&inner), config.sweep_interval)?;
        Ok(Self {
            inner,
            sweeper: Mutex::new(sweeper),
            sweep_interval: config.sweep_interval,
        })
    }

    /// Makes a copy inherited through `fork()` usable in the child: its
    /// sessions are the parent's as they were at the fork, and it gets a
    /// sweeper thread of its own (the parent's is not in this process).
    ///
    /// Returns `false`, changing nothing, when the copy cannot be trusted:
    /// a thread of the parent was inside the store at the fork, so a lock
    /// it held stays locked in the child and what it guarded may be half
    /// changed. The caller then starts a new, empty store instead.
    pub fn adopt_after_fork(&self) -> Result<bool> {
        let Ok(mut sweeper) = self.sweeper.try_lock() else {
            return Ok(false);
        };
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(true); // closed before the fork: stays closed, nothing to sweep
        }
        let inner = &self.inner;
        if !(inner.shards.all_unlocked()
            && inner.users.all_unlocked()
            && inner.rates.all_unlocked())
        {
            return Ok(false);
        }
        let fresh = sweeper::start(Arc::downgrade(&self.inner), self.sweep_interval)?;
        // The replaced sweeper, from the parent's generation, lets go of its absent thread.
        drop(std::mem::replace(&mut *sweeper, fresh));
        Ok(true)
    }

    /// How many records the store holds, including expired ones not yet swept.
    pub fn stored(&self) -> usize {
        self.inner.len.load(Ordering::Relaxed)
    }

    fn open_inner(&self) -> Result<&Inner> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(&self.inner)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::open(MemoryStoreConfig::default()).expect("the sweeper thread starts")
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("stored", &self.stored())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Takes the record under `key` out of its shard.
    fn take(&self, key: &SessionKey) -> Option<Stored> {
        let taken = self.shards.write(key).remove(key);
        if taken.is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        taken
    }

    /// Stores `record` under `key` unless a record, live or expired, is there.
    /// Creates the session, then reports the expired sessions of its user
    /// that a limit removed, once no lock is held.
    fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
    ) -> Result<CreateOutcome> {
        let mut expired = Vec::new();
        let outcome = self.create_removing(key, record, limit, now, &mut expired);
        self.report_expired(&expired);
        outcome
    }

    /// Creates the session; adds the expired sessions a limit removes to
    /// `expired`.
    fn create_removing(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
        expired: &mut Vec<(SessionKey, Stored)>,
    ) -> Result<CreateOutcome> {
        // Claim room before locking the user: a full store purges, and purging
        // takes user locks itself.
        let mut evicted = 0;
        if let Err(full) = self.reserve_slot(now) {
            // Even a full store has room for a user at an evicting limit:
            // ending their oldest session frees a slot.
            let Some(limit) = limit.filter(|l| l.evict_oldest) else {
                return Err(full);
            };
            let mut entry = self.users.lock(&record.user_id);
            if self.shards.read(key).contains_key(key) {
                return Ok(CreateOutcome::KeyTaken);
            }
            evicted = self
                .enforce_limit(&mut entry, &record.user_id, limit, now, expired)
                .unwrap_or(0);
            drop(entry);
            if evicted == 0 {
                return Err(full);
            }
            self.reserve_slot(now)?;
        }
        let release_slot = || self.len.fetch_sub(1, Ordering::Relaxed);
        let mut entry = self.users.lock(&record.user_id);
        // A taken key must change nothing, so look before evicting anyone
        // (without a limit, the insert below is the only look needed).
        if limit.is_some() && self.shards.read(key).contains_key(key) {
            release_slot();
            return Ok(CreateOutcome::KeyTaken);
        }
        evicted += match limit {
            Some(limit) => {
                match self.enforce_limit(&mut entry, &record.user_id, limit, now, expired) {
                    Some(evicted) => evicted,
                    None => {
                        release_slot();
                        return Ok(CreateOutcome::UserLimitReached);
                    }
                }
            }
            None => 0,
        };
        let inserted = self
            .shards
            .write(key)
            .insert_new(*key, Stored::from_record(record));
        if inserted.is_err() {
            release_slot();
            return Ok(CreateOutcome::KeyTaken);
        }
        self.note_expiry(record.expires_at);
        entry.add(key);
        Ok(CreateOutcome::Created { evicted })
    }

    /// Removes the record under `key` if it has expired, so the key can be
    /// created again before the sweeper gets to it (rate limits reuse keys).
    /// Returns whether it removed one.
    fn clear_expired(&self, key: &SessionKey, now: Timestamp) -> bool {
        let Some(user_id) = self
            .shards
            .read(key)
            .get(key)
            .filter(|stored| !stored.is_live(now))
            .map(|stored| stored.user_id().to_owned())
        else {
            return false;
        };
        // User lock first, as in create, so the index never misses a record.
        let mut entry = self.users.lock(&user_id);
        let mut shard = self.shards.write(key);
        if shard
            .get(key)
            .is_some_and(|stored| !stored.is_live(now) && stored.user_id() == user_id)
        {
            shard.remove(key);
            drop(shard);
            self.len.fetch_sub(1, Ordering::Relaxed);
            entry.remove(key);
            return true;
        }
        false
    }

    /// Claims room for one more record, purging expired ones if the store is
    /// full and something may have expired.
    fn reserve_slot(&self, now: Timestamp) -> Result<()> {
        let Some(max) = self.max_sessions else {
            self.len.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        for attempt in 0..2 {
            if self.len.fetch_add(1, Ordering::AcqRel) < max {
                return Ok(());
            }
            self.len.fetch_sub(1, Ordering::AcqRel);
            if attempt > 0 || now.millis() < self.earliest_expiry.load(Ordering::Acquire) {
                break;
            }
            self.purge(now);
        }
        Err(Error::StoreFull { max_sessions: max })
    }

    /// Notes a record that expires at `expires_at`.
    fn note_expiry(&self, expires_at: Timestamp) {
        self.earliest_expiry
            .fetch_min(expires_at.millis(), Ordering::AcqRel);
    }

    fn sweep_chunk(&self, shard: usize, start: usize, budget: usize, now: Timestamp) -> SweptChunk {
        let mut removed = Vec::new();
        let swept = sweep_range(
            &mut self.shards.write_at(shard),
            start,
            budget,
            now,
            &mut removed,
        );
        self.forget(&removed);
        self.report_expired(&removed);
        SweptChunk {
            swept,
            removed: removed.len(),
        }
    }

    /// Tells the expiry listener, if any, about `removed`.
    fn report_expired(&self, removed: &[(SessionKey, Stored)]) {
        self.expiry.report(removed.len(), || {
            removed
                .iter()
                .map(|(key, stored)| ExpiredSession {
                    key: *key,
                    user_id: stored.user_id().into(),
                    created_at: stored.created_at,
                    expires_at: stored.expires_at,
                })
                .collect()
        });
    }

    /// Removes every expired record, and recomputes the earliest expiry of those left.
    fn purge(&self, now: Timestamp) -> u64 {
        // Creates that race with the scan lower the bound themselves.
        self.earliest_expiry.store(i64::MAX, Ordering::Release);
        let mut total = 0;
        for shard in 0..self.shards.len() {
            let mut position = Some(0);
            while let Some(start) = position {
                let chunk = self.sweep_chunk(shard, start, 4096, now);
                total += chunk.removed as u64;
                position = chunk.swept.next;
            }
            if let Some(earliest) = self
                .shards
                .read_at(shard)
                .values()
                .map(|r| r.expires_at)
                .min()
            {
                self.note_expiry(earliest);
            }
        }
        total
    }

    /// Accounts for records already taken out of their shards.
    fn forget(&self, removed: &[(SessionKey, Stored)]) {
        if removed.is_empty() {
            return;
        }
        self.len.fetch_sub(removed.len(), Ordering::Relaxed);
        self.users
            .remove_all(removed.iter().map(|(key, stored)| (stored.user_id(), key)));
    }

    /// Removes `user_id`'s session that a user-index prefix points at.
    fn take_user_session(&self, prefix: &KeyPrefix, user_id: &str) -> Option<Stored> {
        let (_, record) = self.shards.take_user_session(prefix, user_id)?;
        self.len.fetch_sub(1, Ordering::Relaxed);
        Some(record)
    }

    /// Walks `user_id`'s index entry, calling `visit` with each of the user's
    /// sessions; `visit` returns whether to keep it in the index. Entries of
    /// vanished sessions are dropped; entries of another user who shares the
    /// hash are kept untouched.
    fn walk_user(
        &self,
        entry: &mut UserEntry<'_>,
        user_id: &str,
        mut visit: impl FnMut(&KeyPrefix, SessionKey, Stored) -> bool,
    ) {
        // Copy each session out, so `visit` runs with no shard lock held.
        entry.retain(|prefix| {
            match self
                .shards
                .with_prefix(prefix, |key, stored| (*key, stored.clone()))
            {
                None => false,
                Some((_, record)) if record.user_id() != user_id => true,
                Some((key, record)) => visit(prefix, key, record),
            }
        });
    }

    /// Makes room for one more session of a user at `limit`: removes the
    /// user's expired sessions (adding them to `expired`), then evicts the
    /// oldest live ones or refuses. Returns how many were evicted, or `None`
    /// to refuse.
    fn enforce_limit(
        &self,
        entry: &mut UserEntry<'_>,
        user_id: &str,
        limit: UserLimit,
        now: Timestamp,
        expired: &mut Vec<(SessionKey, Stored)>,
    ) -> Option<u32> {
        let mut live: Vec<(Timestamp, SessionKey)> = Vec::new();
        self.walk_user(entry, user_id, |prefix, key, record| {
            if record.is_live(now) {
                live.push((record.created_at, key));
                return true;
            }
            // Expired: drop the record with its index entry, so neither outlives the other.
            if let Some(gone) = self.take_user_session(prefix, user_id) {
                expired.push((key, gone));
            }
            false
        });
        let max = limit.max_sessions as usize;
        if live.len() < max {
            return Some(0);
        }
        if !limit.evict_oldest {
            return None;
        }
        live.sort();
        let evict = &live[..=live.len() - max];
        for (_, key) in evict {
            self.take(key);
            entry.remove(key);
        }
        Some(evict.len() as u32)
    }
}

impl SessionStore for MemoryStore {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
    ) -> Result<CreateOutcome> {
        let inner = self.open_inner()?;
        match inner.create(key, record, limit, now)? {
            // Rare: only deterministic keys (rate limits) meet their own expired record.
            CreateOutcome::KeyTaken if inner.clear_expired(key, now) => {
                inner.create(key, record, limit, now)
            }
            outcome => Ok(outcome),
        }
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>> {
        Ok(self.open_inner()?.shards.live(key, now))
    }

    async fn exists(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        let shard = self.open_inner()?.shards.read(key);
        Ok(shard.get(key).is_some_and(|r| r.is_live(now)))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        expected_version: u64,
        now: Timestamp,
    ) -> Result<SaveOutcome> {
        let mut shard = self.open_inner()?.shards.write(key);
        let Some(stored) = shard.get_mut(key).filter(|r| r.is_live(now)) else {
            return Ok(SaveOutcome::NotFound);
        };
        if stored.version != expected_version {
            return Ok(SaveOutcome::Conflict {
                actual: stored.version,
            });
        }
        let (last_active, expires_at) = (stored.last_active, stored.expires_at);
        *stored = Stored::from_record(record);
        stored.last_active = stored.last_active.max(last_active);
        stored.expires_at = stored.expires_at.max(expires_at);
        Ok(SaveOutcome::Saved)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_active: Timestamp,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let mut shard = self.open_inner()?.shards.write(key);
        let Some(stored) = shard.get_mut(key).filter(|r| r.is_live(now)) else {
            return Ok(false);
        };
        stored.last_active = stored.last_active.max(last_active);
        stored.expires_at = stored.expires_at.max(expires_at);
        Ok(true)
    }

    async fn delete(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        let inner = self.open_inner()?;
        let Some(record) = inner.take(key) else {
            return Ok(false);
        };
        inner.users.lock(record.user_id()).remove(key);
        if record.is_live(now) {
            return Ok(true);
        }
        // Not an end (only a live session ends): an expired session gone.
        inner.report_expired(&[(*key, record)]);
        Ok(false)
    }

    async fn rotate(&self, old: &SessionKey, new: &SessionKey, now: Timestamp) -> Result<bool> {
        let inner = self.open_inner()?;
        let live_owner = inner
            .shards
            .read(old)
            .get(old)
            .filter(|r| r.is_live(now))
            .map(|r| r.user_id().to_owned());
        let Some(user_id) = live_owner else {
            return Ok(false);
        };
        let mut entry = inner.users.lock(&user_id);
        // Look before moving anything: a failed rotation must leave the session where it was.
        if inner.shards.read(new).contains_key(new) {
            return Err(Error::RotationTargetTaken);
        }
        let Some(record) = inner.take(old) else {
            return Ok(false); // ended between the look and the lock
        };
        entry.remove(old);
        if !record.is_live(now) {
            return Ok(false);
        }
        let inserted = inner.shards.write(new).insert_new(*new, record);
        if let Err(record) = inserted {
            // Taken since the look (only a 2^-256 token collision can do
            // this): put it back, under the user lock nobody else holds.
            let _ = inner.shards.write(old).insert_new(*old, record);
            inner.len.fetch_add(1, Ordering::Relaxed);
            entry.add(old);
            return Err(Error::RotationTargetTaken);
        }
        inner.len.fetch_add(1, Ordering::Relaxed);
        entry.add(new);
        Ok(true)
    }

    async fn list_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<(SessionKey, SessionRecord)>> {
        let inner = self.open_inner()?;
        let mut sessions = Vec::new();
        inner.walk_user(&mut inner.users.lock(user_id), user_id, |_, key, record| {
            if record.is_live(now) {
                sessions.push((key, record.to_record()));
            }
            true
        });
        sessions.sort_by_key(|(key, record)| (record.created_at, *key));
        Ok(sessions)
    }

    async fn delete_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
        now: Timestamp,
    ) -> Result<u64> {
        let inner = self.open_inner()?;
        let mut ended = 0;
        let mut expired = Vec::new();
        inner.walk_user(&mut inner.users.lock(user_id), user_id, |prefix, key, _| {
            if Some(&key) == keep {
                return true;
            }
            match inner.take_user_session(prefix, user_id) {
                Some(gone) if gone.is_live(now) => ended += 1,
                Some(gone) => expired.push((key, gone)),
                None => {}
            }
            false
        });
        inner.report_expired(&expired);
        Ok(ended)
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        Ok(self.open_inner()?.purge(now))
    }

    async fn rate_load(&self, key: &SessionKey) -> Result<RateRead> {
        Ok(RateRead {
            tat_us: self.open_inner()?.rates.load(key),
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
        Ok(self.open_inner()?.rates.store(key, expected, tat_us, now))
    }

    async fn count(&self, now: Timestamp) -> Result<u64> {
        let inner = self.open_inner()?;
        let live = (0..inner.shards.len())
            .map(|i| {
                inner
                    .shards
                    .read_at(i)
                    .values()
                    .filter(|r| r.is_live(now))
                    .count() as u64
            })
            .sum();
        Ok(live)
    }

    fn swept(&self) -> u64 {
        self.inner.swept.load(Ordering::Relaxed)
    }

    fn watch_expiry(&self, listener: ExpiryListener) {
        self.inner.expiry.set(listener);
    }

    async fn export_page(
        &self,
        cursor: &ExportCursor,
        limit: u32,
        now: Timestamp,
    ) -> Result<ExportPage> {
        self.open_inner()?.export_page(cursor, limit, now)
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.sweeper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop();
        Ok(())
    }
}

//! The contract every session store keeps.
//!
//! It is deliberately small: the manager builds merges, counters, rotation and
//! sliding expiry on top of it. Every method takes `now` from the manager's
//! clock, so one clock decides expiry, and a store never returns a record
//! that is expired at `now` even if it has not removed it yet.

use std::future::Future;

use crate::clock::Timestamp;
use crate::data::{DataLimits, SessionData};
use crate::error::Result;
use crate::events::ExpiryListener;
use crate::export::{ExportCursor, ExportPage, ImportOutcome, import_by_contract};
use crate::record::SessionRecord;
use crate::token::SessionKey;

/// A bound on live sessions per user, enforced atomically by the store at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserLimit {
    /// How many live sessions one user may have.
    pub max_sessions: u32,
    /// At the limit: `true` ends the user's oldest sessions to make room,
    /// `false` refuses the new one.
    pub evict_oldest: bool,
}

/// What [`SessionStore::create`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateOutcome {
    /// The session was stored; `evicted` older sessions of the user were ended to make room.
    Created {
        /// How many sessions the user limit evicted.
        evicted: u32,
    },
    /// A live record already exists under this key (an expired one counts
    /// as absent and is replaced); nothing was written.
    KeyTaken,
    /// The user is at the limit and the limit rejects; nothing was written.
    UserLimitReached,
}

/// What [`SessionStore::save`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveOutcome {
    /// The record was written.
    Saved,
    /// No live record under the key; nothing was written.
    NotFound,
    /// The stored version differs from the expected one; nothing was written.
    Conflict {
        /// The version the store holds.
        actual: u64,
    },
}

/// A change to the top-level members of a session's data that a store may
/// apply in one step of its own ([`SessionStore::edit_in_place`]).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum MemberEdit<'a> {
    /// Sets each member of the patch: in place when the key exists, appended otherwise.
    Merge(&'a SessionData),
    /// Adds `by` to the integer member `key` (a missing one counts as 0).
    Increment {
        /// The member's key.
        key: &'a str,
        /// What to add.
        by: i64,
    },
    /// Appends an item to the list member `key` (a missing one starts a
    /// list); the outcome's value is the list's new length.
    Append {
        /// The member's key.
        key: &'a str,
        /// The item as compact JSON text, already checked by the manager:
        /// nested inside a list under `key`, it is within the data limits.
        item: &'a str,
    },
}

/// What [`SessionStore::edit_in_place`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EditOutcome {
    /// Written, as one write: the record's new version and, for an
    /// increment, the member's new value.
    Edited {
        /// The version after the edit.
        version: u64,
        /// The incremented member's new value, or the appended-to list's
        /// new length (0 for a merge).
        value: i64,
    },
    /// No live record under the key; nothing was written.
    NotFound,
    /// Nothing was written: the store leaves this edit to the manager,
    /// which reads the record and writes it by compare-and-set (also the
    /// way every error, such as a member that is not an integer, is reported).
    Declined,
}

/// Where sessions live. Implemented by the memory, SQLite, Redis and PostgreSQL stores.
///
/// "Not found" is never an error here: methods answer `None`, `false` or an
/// outcome variant, and `Err` means the store itself failed.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores `record` under `key` unless a live record is already there,
    /// enforcing `limit` for the record's user in the same atomic step. An
    /// expired record is as good as absent: it is replaced, swept or not.
    fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
    ) -> impl Future<Output = Result<CreateOutcome>> + Send;

    /// The live record under `key`, if any.
    fn load(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<SessionRecord>>> + Send;

    /// Whether a live record is under `key`. Stores override this when they can
    /// answer without copying the record out.
    fn exists(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move { Ok(self.load(key, now).await?.is_some()) }
    }

    /// Replaces the live record under `key` with `record` if its version is
    /// still `expected_version` (compare-and-set). `last_active` and
    /// `expires_at` never move backwards: the later of the stored and new values wins.
    fn save(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        expected_version: u64,
        now: Timestamp,
    ) -> impl Future<Output = Result<SaveOutcome>> + Send;

    /// Records activity without touching data or version: moves `last_active`
    /// and `expires_at` forward (never backwards). Returns whether a live record was there.
    fn touch(
        &self,
        key: &SessionKey,
        last_active: Timestamp,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Removes the record under `key`. Returns whether it was live.
    fn delete(&self, key: &SessionKey, now: Timestamp)
    -> impl Future<Output = Result<bool>> + Send;

    /// Moves the live record under `old` to `new` in one atomic step, so the old
    /// key is dead the moment the new one works. Returns whether it moved.
    /// When a live record already holds `new`, nothing moves and the result
    /// is [`Error::RotationTargetTaken`](crate::Error::RotationTargetTaken);
    /// an expired one there may be replaced or refused the same way.
    fn rotate(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Applies `edit` to the live record under `key` in one atomic step of
    /// the store's own, as a write: version + 1, `last_active` moved to
    /// `now`, and `expires_at` too when the session slides (never past its
    /// absolute deadline, never backwards). The result must be exactly what
    /// the manager's read and compare-and-set would write, within `limits`.
    ///
    /// For stores where that saves a round trip. The default declines, and
    /// a store may decline any edit it does not handle.
    fn edit_in_place(
        &self,
        key: &SessionKey,
        edit: MemberEdit<'_>,
        limits: &DataLimits,
        now: Timestamp,
    ) -> impl Future<Output = Result<EditOutcome>> + Send {
        let _ = (key, edit, limits, now);
        async { Ok(EditOutcome::Declined) }
    }

    /// The user's live sessions, oldest first.
    fn list_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<(SessionKey, SessionRecord)>>> + Send;

    /// Removes all of the user's sessions except `keep`. Returns how many live ones ended.
    fn delete_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Removes every record expired at `now`. Returns how many.
    fn purge_expired(&self, now: Timestamp) -> impl Future<Output = Result<u64>> + Send;

    /// How many live sessions the store holds.
    fn count(&self, now: Timestamp) -> impl Future<Output = Result<u64>> + Send;

    /// The rate-limit state of `key` (the SHA-256 of a limited key): its
    /// theoretical arrival time in microseconds (see [`RateLimit`](crate::RateLimit)),
    /// as stored, whether or not it still matters, and the store's own time
    /// when several machines share the store (see [`RateRead`]).
    ///
    /// Rate-limit state lives apart from sessions (its own table, keys or
    /// map): [`count`](Self::count), [`list_user`](Self::list_user) and
    /// [`purge_expired`](Self::purge_expired) never see it.
    fn rate_load(&self, key: &SessionKey) -> impl Future<Output = Result<RateRead>> + Send;

    /// Stores `tat_us` as the state of `key` if its state is still
    /// `expected` (`None`: no state, or one that passed before `now`),
    /// as one atomic compare-and-set. The state is removed once `tat_us`
    /// passes, by the store's sweep or its own expiry. Returns whether it wrote.
    fn rate_store(
        &self,
        key: &SessionKey,
        expected: Option<i64>,
        tat_us: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// One page of about `limit` sessions live at `now`, from `cursor` on
    /// (see [`SessionManager::export_page`](crate::SessionManager::export_page)),
    /// found through the store's own index: never a scan of a whole
    /// keyspace. Stores that walk a sorted index return at most `limit`;
    /// one that walks its index with a scan cursor (Redis' `ZSCAN`) returns
    /// a step of that scan, which may hold somewhat more. A cursor of another kind of store is an
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    fn export_page(
        &self,
        cursor: &ExportCursor,
        limit: u32,
        now: Timestamp,
    ) -> impl Future<Output = Result<ExportPage>> + Send;

    /// Stores an exported session as it was (see
    /// [`SessionManager::import`](crate::SessionManager::import)): created
    /// when the key is free; over an older copy (lower version, or the same
    /// version expiring earlier); otherwise left alone. The default does this
    /// with `create`, `load`, `save` and `touch`.
    fn import(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        now: Timestamp,
    ) -> impl Future<Output = Result<ImportOutcome>> + Send {
        import_by_contract(self, key, record, now)
    }

    /// [`import`](Self::import) of each of `sessions`, in order: stores
    /// that can store many in one step override it (Redis: one script call).
    fn import_many(
        &self,
        sessions: &[(SessionKey, SessionRecord)],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<ImportOutcome>>> + Send {
        async move {
            let mut done = Vec::with_capacity(sessions.len());
            for (key, record) in sessions {
                done.push(self.import(key, record, now).await?);
            }
            Ok(done)
        }
    }

    /// Has the store call `listener` with the expired sessions each of its
    /// deletes removes from now on (sweeps, purges, and calls that meet an
    /// expired session), so that each expired session is reported once, by
    /// the process whose delete removed it. A store
    /// that cannot tell (one that lets sessions lapse unseen) keeps the
    /// default, which reports nothing.
    fn watch_expiry(&self, listener: ExpiryListener) {
        let _ = listener;
    }

    /// The route new tokens of `user_id`'s sessions carry, for a store that
    /// spreads sessions over servers and must find a session's server from
    /// its key alone (see [`SessionToken::generate_routed`](crate::SessionToken::generate_routed)).
    /// `None`, the default, issues plain tokens.
    fn token_route(&self, user_id: &str) -> Option<u16> {
        let _ = user_id;
        None
    }

    /// The version of the layout the store reads and writes (a SQL store's
    /// schema version, which opening it brings its tables to; Redis' key
    /// layout), for tools that report on a store.
    fn layout_version(&self) -> i64 {
        1
    }

    /// How many expired sessions the store's own background sweeper has
    /// removed in this process since it opened (what
    /// [`SessionManager::stats`](crate::SessionManager::stats) adds to its
    /// purges). Stores without a sweeper answer 0.
    fn swept(&self) -> u64 {
        0
    }

    /// Releases connections and background work. Later calls may fail with
    /// [`Error::Closed`](crate::Error::Closed).
    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// One key's rate-limit state as [`SessionStore::rate_load`] read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateRead {
    /// The stored theoretical arrival time in microseconds since the epoch,
    /// if any, including one that has passed but is not removed yet.
    pub tat_us: Option<i64>,
    /// The store's clock at the read, in microseconds since the epoch, from
    /// a store that machines share (Redis' `TIME`, PostgreSQL's
    /// `clock_timestamp()`): a limit shared by servers whose clocks disagree
    /// then decides by one clock. `None` from stores that live on one
    /// machine, which read that machine's clock like the manager does.
    pub store_now_us: Option<i64>,
}

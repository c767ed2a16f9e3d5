//! The session manager: the operations applications call, built on a store's
//! small contract.

use std::fmt;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::data::{DataLimits, SessionData};
use crate::error::{Error, Result};
use crate::events::{EventKind, Subscribers};
use crate::expiry::ExpiryPolicy;
use crate::memory::{MemoryStore, MemoryStoreConfig};
use crate::record::SessionRecord;
use crate::stats::{EndReason, Operation, Stats};
use crate::store::{CreateOutcome, EditOutcome, MemberEdit, SaveOutcome, SessionStore, UserLimit};
use crate::token::{SessionKey, SessionToken};

/// Longest accepted user id, in bytes. User ids are index keys in every store.
pub const MAX_USER_ID_BYTES: usize = 1024;

/// What to do when a user at `max_sessions_per_user` logs in again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LimitAction {
    /// End the user's oldest sessions to make room (the default).
    #[default]
    EvictOldest,
    /// Refuse the new session with [`Error::UserLimitReached`].
    Reject,
}

/// Settings of a [`SessionManager`].
#[derive(Clone)]
pub struct ManagerConfig {
    /// Default expiry of new sessions.
    pub expiry: ExpiryPolicy,
    /// Bounds on session data.
    pub limits: DataLimits,
    /// At most this many live sessions per user.
    pub max_sessions_per_user: Option<u32>,
    /// What happens at `max_sessions_per_user`.
    pub on_limit: LimitAction,
    /// Where the manager reads the time.
    pub clock: Arc<dyn Clock>,
    /// Whether the manager counts what it does ([`SessionManager::stats`]).
    pub metrics: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            expiry: ExpiryPolicy::DEFAULT,
            limits: DataLimits::default(),
            max_sessions_per_user: None,
            on_limit: LimitAction::default(),
            clock: Arc::new(SystemClock),
            metrics: true,
        }
    }
}

impl fmt::Debug for ManagerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerConfig")
            .field("expiry", &self.expiry)
            .field("limits", &self.limits)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("on_limit", &self.on_limit)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl ManagerConfig {
    /// Checks every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        self.expiry.validate()?;
        if self.max_sessions_per_user == Some(0) {
            return Err(Error::InvalidArgument(
                "max_sessions_per_user must be at least 1".into(),
            ));
        }
        if self.limits.max_bytes < 2 {
            return Err(Error::InvalidArgument(
                "max_data_bytes must be at least 2 (the size of {})".into(),
            ));
        }
        if self.limits.max_depth == 0 {
            return Err(Error::InvalidArgument(
                "max_data_depth must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Per-session overrides of the manager's expiry settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Idle timeout for this session, in milliseconds.
    pub idle_timeout_ms: Option<i64>,
    /// Whether this session's expiry slides.
    pub sliding: Option<bool>,
    /// Absolute lifetime cap for this session, in milliseconds.
    pub absolute_timeout_ms: Option<i64>,
}

/// A session as read: its key and record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session's store key (SHA-256 of its token).
    pub key: SessionKey,
    /// What the store holds.
    pub record: SessionRecord,
}

/// Issues, reads, changes and ends sessions in a store.
pub struct SessionManager<S> {
    store: S,
    config: ManagerConfig,
    /// `None` when `config.metrics` is off.
    pub(crate) stats: Option<Box<Stats>>,
    pub(crate) events: Arc<Subscribers>,
}

impl<S: fmt::Debug> fmt::Debug for SessionManager<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish()
    }
}

impl SessionManager<MemoryStore> {
    /// A manager over a new [`MemoryStore`] whose sweeper reads the manager's clock.
    pub fn in_memory(config: ManagerConfig) -> Result<Self> {
        let store = MemoryStore::open(MemoryStoreConfig {
            clock: config.clock.clone(),
            ..MemoryStoreConfig::default()
        })?;
        Self::try_new(store, config)
    }
}

impl<S: SessionStore> SessionManager<S> {
    /// A manager over `store`. Panics if `config` is invalid; use
    /// [`SessionManager::try_new`] for settings that come from users.
    ///
    /// A store that judges expiry on its own (the memory store's sweeper)
    /// must read the same clock as `config.clock`.
    pub fn new(store: S, config: ManagerConfig) -> Self {
        Self::try_new(store, config).expect("invalid ManagerConfig")
    }

    /// A manager over `store`, or an error naming the first invalid setting.
    pub fn try_new(store: S, config: ManagerConfig) -> Result<Self> {
        config.validate()?;
        let stats = config.metrics.then(|| Box::new(Stats::new()));
        Ok(Self {
            store,
            config,
            stats,
            events: Arc::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.config.clock.now()
    }

    /// Starts a session for `user_id` holding `data`, and returns its token.
    pub async fn create(
        &self,
        user_id: &str,
        data: SessionData,
        options: CreateOptions,
    ) -> Result<SessionToken> {
        self.measured(Operation::Create, async {
            check_user_id(user_id)?;
            let policy = ExpiryPolicy {
                idle_timeout_ms: options
                    .idle_timeout_ms
                    .unwrap_or(self.config.expiry.idle_timeout_ms),
                sliding: options.sliding.unwrap_or(self.config.expiry.sliding),
                absolute_timeout_ms: options
                    .absolute_timeout_ms
                    .or(self.config.expiry.absolute_timeout_ms),
            };
            policy.validate()?;
            check_size(&data, &self.config.limits)?;
            let limit = self
                .config
                .max_sessions_per_user
                .map(|max_sessions| UserLimit {
                    max_sessions,
                    evict_oldest: self.config.on_limit == LimitAction::EvictOldest,
                });
            let user_id: Arc<str> = Arc::from(user_id);
            let now = self.now();
            let record = SessionRecord::new(user_id, data, &policy, now);
            // The store evicts the oldest, in the order it lists them: the
            // events name those of this listing.
            let before = match limit {
                Some(_) if self.observed() => self.store.list_user(&record.user_id, now).await?,
                _ => Vec::new(),
            };
            loop {
                let token = match self.store.token_route(&record.user_id) {
                    Some(route) => SessionToken::generate_routed(route)?,
                    None => SessionToken::generate()?,
                };
                match self.store.create(&token.key(), &record, limit, now).await? {
                    CreateOutcome::Created { evicted } => {
                        self.note(|stats| stats.created(evicted));
                        for (key, old) in before.iter().take(evicted as usize) {
                            self.emit(EventKind::Ended(EndReason::Evicted), *key, old);
                        }
                        self.emit(EventKind::Created, token.key(), &record);
                        return Ok(token);
                    }
                    // 2^-256 odds; draw again rather than overwrite someone's session.
                    CreateOutcome::KeyTaken => continue,
                    CreateOutcome::UserLimitReached => {
                        return Err(Error::UserLimitReached {
                            limit: limit.map_or(0, |l| l.max_sessions),
                        });
                    }
                }
            }
        })
        .await
    }

    /// The live session `token` names, counting the read as activity: the
    /// sliding deadline is written back once half the idle window has passed.
    pub async fn get(&self, token: &str) -> Result<Session> {
        self.measured(Operation::Get, async {
            let key = parse(token)?;
            let now = self.now();
            let mut record = self.store.load(&key, now).await?.ok_or(Error::NotFound)?;
            if record.refresh_due(now) {
                record.record_activity(now);
                self.store
                    .touch(&key, record.last_active, record.expires_at, now)
                    .await?;
            }
            Ok(Session { key, record })
        })
        .await
    }

    /// The live session `token` names, without counting as activity.
    pub async fn peek(&self, token: &str) -> Result<Session> {
        self.measured(Operation::Peek, async {
            let key = parse(token)?;
            let record = self
                .store
                .load(&key, self.now())
                .await?
                .ok_or(Error::NotFound)?;
            Ok(Session { key, record })
        })
        .await
    }

    /// Whether `token` names a live session. Malformed tokens are simply not live.
    pub async fn is_active(&self, token: &str) -> Result<bool> {
        self.measured(Operation::IsActive, async {
            let Some(key) = SessionKey::for_token_text(token) else {
                return Ok(false);
            };
            self.store.exists(&key, self.now()).await
        })
        .await
    }

    /// Ends the session `token` names. Ending an unknown or ended session does nothing.
    pub async fn end(&self, token: &str) -> Result<()> {
        self.measured(Operation::End, async {
            if let Some(key) = SessionKey::for_token_text(token) {
                self.end_key(&key, None, self.now()).await?;
            }
            Ok(())
        })
        .await
    }

    /// Records activity now, extending a sliding deadline.
    pub async fn touch(&self, token: &str) -> Result<()> {
        self.measured(Operation::Touch, async {
            let key = parse(token)?;
            let now = self.now();
            let mut record = self.store.load(&key, now).await?.ok_or(Error::NotFound)?;
            record.record_activity(now);
            if self
                .store
                .touch(&key, record.last_active, record.expires_at, now)
                .await?
            {
                Ok(())
            } else {
                Err(Error::NotFound)
            }
        })
        .await
    }

    /// Sets the top-level keys of `patch` in the session's data, atomically:
    /// concurrent updates of other keys are all kept. Returns the new version.
    pub async fn update(&self, token: &str, patch: &SessionData) -> Result<u64> {
        self.measured(Operation::Update, async {
            let limits = self.config.limits;
            let key = parse(token)?;
            let now = self.now();
            if let Some(edited) = self
                .edit_in_place(&key, MemberEdit::Merge(patch), now)
                .await?
            {
                return Ok(edited.0);
            }
            self.modify(&key, None, UNBOUNDED, now, |current| {
                Ok((current.data.merged(patch, &limits)?, ()))
            })
            .await
            .map(|(written, ())| written.version)
        })
        .await
    }

    /// Replaces the session's data. With `expected_version`, only if the
    /// session is still at that version, else [`Error::Conflict`]. Returns the new version.
    pub async fn set_data(
        &self,
        token: &str,
        data: SessionData,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        self.measured(Operation::SetData, async {
            check_size(&data, &self.config.limits)?;
            let key = parse(token)?;
            self.modify(&key, expected_version, UNBOUNDED, self.now(), |_| {
                Ok((data.clone(), ()))
            })
            .await
            .map(|(written, ())| written.version)
        })
        .await
    }

    /// Adds `by` to the integer at top-level `key` (missing counts as 0),
    /// atomically. Returns the new value.
    pub async fn increment(&self, token: &str, key: &str, by: i64) -> Result<i64> {
        self.measured(Operation::Increment, async {
            let limits = self.config.limits;
            let session_key = parse(token)?;
            let edit = MemberEdit::Increment { key, by };
            let now = self.now();
            if let Some((_, value)) = self.edit_in_place(&session_key, edit, now).await? {
                return Ok(value);
            }
            self.modify(&session_key, None, UNBOUNDED, now, |current| {
                current.data.incremented(key, by, &limits)
            })
            .await
            .map(|(_, value)| value)
        })
        .await
    }

    /// Appends `item` to the list at top-level `key` (a missing key starts
    /// one), atomically: concurrent appends all land, none lost. Returns the
    /// list's new length.
    pub async fn append(&self, token: &str, key: &str, item: &serde_json::Value) -> Result<usize> {
        self.measured(Operation::Append, async {
            let limits = self.config.limits;
            let session_key = parse(token)?;
            let now = self.now();
            // The store may append by itself when the item, inside a list under
            // `key`, is within the limits; otherwise the read and compare-and-set
            // below reports the problem with its exact path.
            let probe = serde_json::json!({ key: [item] });
            if let serde_json::Value::Object(map) = &probe
                && SessionData::from_map(map, &limits).is_ok()
            {
                let item = serde_json::to_string(item).expect("a JSON value always serializes");
                let edit = MemberEdit::Append { key, item: &item };
                if let Some((_, len)) = self.edit_in_place(&session_key, edit, now).await? {
                    return Ok(len as usize);
                }
            }
            self.modify(&session_key, None, UNBOUNDED, now, |current| {
                current.data.appended(key, item, &limits)
            })
            .await
            .map(|(_, len)| len)
        })
        .await
    }

    /// `edit` applied by the store itself when it can: `(version, value)`, or
    /// `None` when it declines and the caller should read and compare-and-set
    /// (with the same `now`, so a declining store costs no second clock read).
    async fn edit_in_place(
        &self,
        key: &SessionKey,
        edit: MemberEdit<'_>,
        now: Timestamp,
    ) -> Result<Option<(u64, i64)>> {
        let limits = self.config.limits;
        match self.store.edit_in_place(key, edit, &limits, now).await? {
            EditOutcome::Edited { version, value } => Ok(Some((version, value))),
            EditOutcome::NotFound => Err(Error::NotFound),
            EditOutcome::Declined => Ok(None),
        }
    }

    /// Read-modify-write by compare-and-set: loads the record, asks `change`
    /// for its new data and writes it at the version it read, again on
    /// conflict, at most `attempts` writes in all (then [`Error::Conflict`]).
    /// A pinned `expected_version` makes any other version a conflict at once.
    /// Every retry means another writer succeeded, so an unbounded loop
    /// cannot livelock. The first attempt happens at `now`, each retry at the
    /// clock's time then. Returns the record as written.
    pub(crate) async fn modify<T>(
        &self,
        key: &SessionKey,
        expected_version: Option<u64>,
        attempts: usize,
        mut now: Timestamp,
        change: impl Fn(&SessionRecord) -> Result<(SessionData, T)>,
    ) -> Result<(SessionRecord, T)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.store.load(key, now).await?.ok_or(Error::NotFound)?;
            if let Some(expected) = expected_version
                && expected != current.version
            {
                return Err(Error::Conflict {
                    expected,
                    actual: current.version,
                });
            }
            let (data, output) = change(&current)?;
            let expected = expected_version.unwrap_or(current.version);
            match self.write_over(key, current, data, now).await? {
                Written::Saved(record) => return Ok((record, output)),
                Written::NotFound => return Err(Error::NotFound),
                Written::Conflict { actual } => {
                    if expected_version.is_some() || attempt >= attempts {
                        return Err(Error::Conflict { expected, actual });
                    }
                    self.note(Stats::retried);
                    now = self.now();
                }
            }
        }
    }

    /// One compare-and-set write of `data` over `base`, the record as read
    /// (the store must still hold `base.version`), counting as activity at `now`.
    pub(crate) async fn write_over(
        &self,
        key: &SessionKey,
        base: SessionRecord,
        data: SessionData,
        now: Timestamp,
    ) -> Result<Written> {
        let expected = base.version;
        let mut next = base;
        next.data = data;
        next.version = expected + 1;
        next.record_activity(now);
        Ok(match self.store.save(key, &next, expected, now).await? {
            SaveOutcome::Saved => Written::Saved(next),
            SaveOutcome::NotFound => Written::NotFound,
            SaveOutcome::Conflict { actual } => Written::Conflict { actual },
        })
    }

    /// Moves the session to a fresh token and returns it; the old token stops
    /// working at once. Call it at login to defeat session fixation.
    pub async fn rotate(&self, token: &str) -> Result<SessionToken> {
        self.measured(Operation::Rotate, async {
            let old = parse(token)?;
            let new = SessionToken::generate_like(&old, token)?;
            let now = self.now();
            let record = match self.observed() {
                true => self.store.load(&old, now).await?,
                false => None,
            };
            if self.store.rotate(&old, &new.key(), now).await? {
                self.note(Stats::rotated);
                if let Some(record) = &record {
                    let kind = EventKind::Rotated { new_key: new.key() };
                    self.emit(kind, old, record);
                }
                Ok(new)
            } else {
                Err(Error::NotFound)
            }
        })
        .await
    }

    /// The user's live sessions, oldest first, without counting as activity.
    pub async fn list_user(&self, user_id: &str) -> Result<Vec<Session>> {
        self.measured(Operation::ListUser, async {
            check_user_id(user_id)?;
            let sessions = self.store.list_user(user_id, self.now()).await?;
            Ok(sessions
                .into_iter()
                .map(|(key, record)| Session { key, record })
                .collect())
        })
        .await
    }

    /// Ends the session named `key` (its public name, [`SessionKey::to_hex`],
    /// as [`list_user`](Self::list_user) shows it) if it is one of
    /// `user_id`'s: what a "your devices" page needs. Returns whether it
    /// ended one; a key of another user's session is treated as unknown, so
    /// nobody can end, or learn of, another user's session by guessing keys.
    /// A key that is not 64 hex digits is an [`Error::InvalidArgument`].
    pub async fn end_session_by_key(&self, user_id: &str, key: &str) -> Result<bool> {
        self.measured(Operation::EndSessionByKey, async {
            check_user_id(user_id)?;
            let key = key_arg(key)?;
            let now = self.now();
            // A session's owner never changes, so the check stays true until the delete.
            match self.store.load(&key, now).await? {
                Some(record) if &*record.user_id == user_id => {
                    self.end_key(&key, Some(record), now).await
                }
                _ => Ok(false),
            }
        })
        .await
    }

    /// Ends the session named `key` ([`SessionKey::to_hex`]) whoever it
    /// belongs to: for operators' tools (`pysessionmanager end --key`). A
    /// page acting for one user must use
    /// [`end_session_by_key`](Self::end_session_by_key), which checks the owner.
    pub async fn end_any_session_by_key(&self, key: &str) -> Result<bool> {
        self.measured(Operation::EndSessionByKey, async {
            let key = key_arg(key)?;
            self.end_key(&key, None, self.now()).await
        })
        .await
    }

    /// Deletes the session under `key` as a logout; `record`, if the
    /// caller read it, names it in the event (else it is read here, only
    /// while anyone subscribes). Only the call whose delete ended it reports it.
    async fn end_key(
        &self,
        key: &SessionKey,
        mut record: Option<SessionRecord>,
        now: Timestamp,
    ) -> Result<bool> {
        if record.is_none() && self.observed() {
            record = self.store.load(key, now).await?;
        }
        let ended = self.store.delete(key, now).await?;
        if ended {
            self.note(|stats| stats.ended(EndReason::Logout, 1));
            if let Some(record) = &record {
                self.emit(EventKind::Ended(EndReason::Logout), *key, record);
            }
        }
        Ok(ended)
    }

    /// Ends all of the user's sessions except `keep` ("log out everywhere
    /// else"). Returns how many ended.
    pub async fn end_user(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        self.measured(Operation::EndUser, async {
            check_user_id(user_id)?;
            let keep = keep.and_then(SessionKey::for_token_text);
            let now = self.now();
            let listed = match self.observed() {
                true => self.store.list_user(user_id, now).await?,
                false => Vec::new(),
            };
            let ended = self.store.delete_user(user_id, keep.as_ref(), now).await?;
            self.note(|stats| stats.ended(EndReason::EndedWithUser, ended));
            for (key, record) in listed.iter().filter(|(key, _)| Some(key) != keep.as_ref()) {
                self.emit(EventKind::Ended(EndReason::EndedWithUser), *key, record);
            }
            Ok(ended)
        })
        .await
    }

    /// Removes expired sessions now. Returns how many.
    pub async fn purge_expired(&self) -> Result<u64> {
        self.measured(Operation::PurgeExpired, async {
            self.store
                .purge_expired(self.now())
                .await
                .inspect(|&removed| self.note(|stats| stats.expired(removed)))
        })
        .await
    }

    /// How many live sessions the store holds.
    pub async fn count(&self) -> Result<u64> {
        self.measured(Operation::Count, async {
            self.store.count(self.now()).await
        })
        .await
    }

    /// Closes the store.
    pub async fn close(&self) -> Result<()> {
        self.store.close().await
    }
}

/// `attempts` for a [`SessionManager::modify`] that retries until it writes.
const UNBOUNDED: usize = usize::MAX;

/// What one [`SessionManager::write_over`] did.
pub(crate) enum Written {
    /// Written: the record as stored now.
    Saved(SessionRecord),
    /// No live record under the key.
    NotFound,
    /// The store holds version `actual`, not the one read.
    Conflict { actual: u64 },
}

/// A session key given as text, or an error that never echoes it (a
/// session id passed by mistake is a secret).
fn key_arg(key: &str) -> Result<SessionKey> {
    SessionKey::from_hex(key).ok_or_else(|| {
        let hint = if SessionKey::for_token_text(key).is_some() {
            "; this looks like a session id: pass the session's `key` instead"
        } else {
            ""
        };
        Error::InvalidArgument(format!(
            "a session key must be 64 hex digits (the `key` of a listed session); got {} \
             characters that are not{hint}",
            key.chars().count()
        ))
    })
}

pub(crate) fn parse(token: &str) -> Result<SessionKey> {
    SessionKey::for_token_text(token).ok_or(Error::NotFound)
}

pub(crate) fn check_user_id(user_id: &str) -> Result<()> {
    if user_id.is_empty() {
        return Err(Error::InvalidArgument("user_id must not be empty".into()));
    }
    if user_id.len() > MAX_USER_ID_BYTES {
        return Err(Error::InvalidArgument(format!(
            "user_id must be at most {MAX_USER_ID_BYTES} bytes, got {}",
            user_id.len()
        )));
    }
    if user_id.contains('\0') {
        return Err(Error::InvalidArgument(
            "user_id must not contain NUL characters".into(),
        ));
    }
    Ok(())
}

/// Data built under other (larger) limits must still fit this manager's.
pub(crate) fn check_size(data: &SessionData, limits: &DataLimits) -> Result<()> {
    crate::data::check_size(data.len_bytes(), limits)
}

//! Copying sessions between stores: every live session out of one store, page
//! by page along the store's own index, and into another as it was (key,
//! user, data, version and times), so every user stays logged in across a
//! move. What `pysessionmanager migrate` is built on.

use crate::clock::Timestamp;
use crate::data::DataLimits;
use crate::error::{Error, Result};
use crate::manager::SessionManager;
use crate::record::SessionRecord;
use crate::stats::Operation;
use crate::store::{CreateOutcome, SaveOutcome, SessionStore};
use crate::token::SessionKey;

/// Most sessions one page may ask for.
pub const MAX_EXPORT_PAGE: u32 = 10_000;

/// Where an export goes on: text a store made, opaque to everyone else and
/// meaningful only to the kind of store that made it. Printable, so an
/// interrupted export can resume from the last cursor it saved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExportCursor(String);

impl ExportCursor {
    /// The start of an export.
    pub fn start() -> Self {
        Self::default()
    }

    /// A cursor as a store writes it, or as saved from an earlier page.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Whether this is the start.
    pub fn is_start(&self) -> bool {
        self.0.is_empty()
    }

    /// The cursor's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cursor after `key`, for stores that export in key order.
    pub fn after(key: &SessionKey) -> Self {
        Self(key.to_hex())
    }

    /// The key a cursor of [`ExportCursor::after`] continues after (`None`
    /// at the start), or the error naming the `store` kind that cannot read it.
    pub fn after_key(&self, store: &str) -> Result<Option<SessionKey>> {
        if self.is_start() {
            return Ok(None);
        }
        SessionKey::from_hex(&self.0)
            .map(Some)
            .ok_or_else(|| self.invalid(store))
    }

    /// The page of stores that export in key order: `sessions` are the
    /// first `limit` after the cursor, and the next page starts after the
    /// last of them unless the page came out short.
    pub fn key_ordered_page(sessions: Vec<(SessionKey, SessionRecord)>, limit: u32) -> ExportPage {
        let next = match sessions.last() {
            Some((key, _)) if sessions.len() >= limit as usize => Some(Self::after(key)),
            _ => None,
        };
        ExportPage { sessions, next }
    }

    /// The error for a cursor the store cannot read.
    pub fn invalid(&self, store: &str) -> Error {
        Error::InvalidArgument(format!(
            "{:?} is not an export cursor of a {store} store (resume with the cursor the same \
             kind of store returned)",
            self.0
        ))
    }
}

/// One page of an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportPage {
    /// Live sessions, at most the page size asked for.
    pub sessions: Vec<(SessionKey, SessionRecord)>,
    /// Where the next page starts; `None` when the export is complete.
    pub next: Option<ExportCursor>,
}

/// What [`SessionStore::import`] did with one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportOutcome {
    /// Stored: the key was free.
    Created,
    /// Written over an older copy of the same session (a lower version, or
    /// the same version with an earlier expiry).
    Updated,
    /// The store already held this version or a newer one; nothing written.
    Unchanged,
    /// The session had expired; nothing written.
    Expired,
}

/// How many times an import retries when the session changes under it.
const IMPORT_ATTEMPTS: usize = 8;

/// [`SessionStore::import`] in terms of the rest of the contract: create,
/// else compare and move the stored copy forward.
pub(crate) async fn import_by_contract<S: SessionStore + ?Sized>(
    store: &S,
    key: &SessionKey,
    record: &SessionRecord,
    now: Timestamp,
) -> Result<ImportOutcome> {
    if !record.is_live(now) {
        return Ok(ImportOutcome::Expired);
    }
    for _ in 0..IMPORT_ATTEMPTS {
        let current = match store.create(key, record, None, now).await? {
            CreateOutcome::Created { .. } => return Ok(ImportOutcome::Created),
            CreateOutcome::KeyTaken => match store.load(key, now).await? {
                Some(current) => current,
                None => continue, // ended or expired meanwhile: create again
            },
            CreateOutcome::UserLimitReached => {
                unreachable!("no user limit was given")
            }
        };
        if current.user_id != record.user_id {
            return Err(Error::InvalidArgument(format!(
                "session {} belongs to another user in the target store; nothing was written",
                key.to_hex()
            )));
        }
        if record.version > current.version {
            match store.save(key, record, current.version, now).await? {
                SaveOutcome::Saved => return Ok(ImportOutcome::Updated),
                _ => continue, // changed meanwhile: compare again
            }
        }
        if record.version == current.version && record.expires_at > current.expires_at {
            return if store
                .touch(key, record.last_active, record.expires_at, now)
                .await?
            {
                Ok(ImportOutcome::Updated)
            } else {
                continue;
            };
        }
        return Ok(ImportOutcome::Unchanged);
    }
    Err(Error::Conflict {
        expected: record.version,
        actual: record.version,
    })
}

/// What [`SessionManager::import`] checks before it writes: a valid user id,
/// data within `limits`, and times in order. For callers that check a whole
/// batch before importing any of it.
pub fn check_import(key: &SessionKey, record: &SessionRecord, limits: &DataLimits) -> Result<()> {
    crate::manager::check_user_id(&record.user_id)?;
    crate::manager::check_size(&record.data, limits)?;
    if record.expires_at < record.last_active || record.last_active < record.created_at {
        return Err(Error::InvalidArgument(format!(
            "session {}: its times are out of order (created, then last active, then expires)",
            key.to_hex()
        )));
    }
    Ok(())
}

impl<S: SessionStore> SessionManager<S> {
    /// One page of about `limit` live sessions (1 to [`MAX_EXPORT_PAGE`];
    /// see [`SessionStore::export_page`]) from `cursor` on
    /// ([`ExportCursor::start`] first, then each page's `next`). Stores walk
    /// their own index, never a whole keyspace. A
    /// session written while the export runs may or may not be in it, and
    /// one may appear twice (importing it twice is harmless).
    pub async fn export_page(&self, cursor: &ExportCursor, limit: u32) -> Result<ExportPage> {
        self.measured(Operation::Export, async {
            if limit == 0 || limit > MAX_EXPORT_PAGE {
                return Err(Error::InvalidArgument(format!(
                    "an export page holds 1 to {MAX_EXPORT_PAGE} sessions, not {limit}"
                )));
            }
            self.store().export_page(cursor, limit, self.now()).await
        })
        .await
    }

    /// Stores a session exported from another store as it was: same key (so
    /// the same session id opens it), user, data, version and times. An
    /// older copy already here is brought forward, a newer one is kept, and
    /// an expired session is skipped, so an import can run again.
    pub async fn import(&self, key: &SessionKey, record: &SessionRecord) -> Result<ImportOutcome> {
        self.measured(Operation::Import, async {
            check_import(key, record, &self.config().limits)?;
            self.store().import(key, record, self.now()).await
        })
        .await
    }

    /// [`import`](Self::import) of each of `sessions`, in order, in as few
    /// steps as the store can (one script call on Redis). Every session is
    /// checked before any is written.
    pub async fn import_many(
        &self,
        sessions: &[(SessionKey, SessionRecord)],
    ) -> Result<Vec<ImportOutcome>> {
        self.measured(Operation::Import, async {
            for (key, record) in sessions {
                check_import(key, record, &self.config().limits)?;
            }
            self.store().import_many(sessions, self.now()).await
        })
        .await
    }
}

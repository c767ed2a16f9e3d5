//! Writing back what a caller changed in a session it read earlier: the save
//! rule every web integration shares (axum's layer, and Flask, Django and
//! Starlette through the Python binding).

use crate::data::SessionData;
use crate::error::{Error, Result};
use crate::manager::{Session, SessionManager, Written, check_size, parse};
use crate::record::SessionRecord;
use crate::store::SessionStore;

/// How many compare-and-set writes [`SessionManager::apply_changes`] makes
/// before it gives up with [`Error::Conflict`], when other writers keep
/// changing the session between its reads and its writes.
pub const MAX_APPLY_ATTEMPTS: usize = 16;

/// What the caller of [`SessionManager::apply_changes`] last read (or wrote)
/// of the session: the base its changes are relative to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The session as read by [`get`](SessionManager::get) or
    /// [`peek`](SessionManager::peek), or as written by an earlier
    /// `apply_changes`: the first write needs no read. Only its key, version
    /// and metadata are used; its data is not (the keys say what changed).
    Read(Session),
    /// Only the version (of a session just created, say): the first write
    /// reads the record first.
    Version(u64),
}

impl Basis {
    /// The version the caller's changes are relative to.
    pub(crate) fn version(&self) -> u64 {
        match self {
            Self::Read(session) => session.record.version,
            Self::Version(version) => *version,
        }
    }
}

/// What [`SessionManager::apply_changes`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The changes are stored. The session as written: its version is the
    /// new one, and it is the [`Basis::Read`] for a later write.
    Saved(Session),
    /// The session is gone (unknown, ended, rotated away or expired, maybe
    /// while this call ran): nothing was written, and nothing brought it back.
    Gone,
}

impl<S: SessionStore> SessionManager<S> {
    /// Writes back what a caller changed in the session it read as `basis`:
    /// `data` is everything it wants stored, `keys` are the top-level keys it
    /// set or removed relative to `basis` (its changes), and `base` holds
    /// what those keys were when it read them (a key `base` lacks was absent).
    ///
    /// The first try writes `data` whole, by compare-and-set at `basis`'s
    /// version: one store call for a [`Basis::Read`] (the common case), a
    /// read and a write for a [`Basis::Version`]. If another writer changed
    /// the session meanwhile, it reads the record again and re-applies only
    /// the changes on top of it (each key of `keys` set to its value in
    /// `data`, or removed when `data` lacks it; every other key stays as the
    /// other writer left it), then compare-and-sets again, at most
    /// [`MAX_APPLY_ATTEMPTS`] writes in all before [`Error::Conflict`].
    ///
    /// If the other writer changed one of the same keys (it no longer holds
    /// its `base` value, nor already the value `data` gives it), re-applying
    /// would undo that change: the call fails with [`Error::KeyConflict`]
    /// and writes nothing, so that a caller told "saved" never lost a change
    /// and a caller whose change was not kept is told so.
    ///
    /// A session that is gone, or goes meanwhile, is never written again:
    /// the outcome is [`ApplyOutcome::Gone`]. So is a malformed token. Data
    /// over the manager's [`DataLimits`](crate::DataLimits), as given or once
    /// merged, fails with [`Error::InvalidData`] and writes nothing; a
    /// [`Basis::Read`] of another session than `token`'s fails with
    /// [`Error::InvalidArgument`]. A write counts as activity.
    pub async fn apply_changes(
        &self,
        token: &str,
        basis: Basis,
        data: SessionData,
        keys: &[&str],
        base: &SessionData,
    ) -> Result<ApplyOutcome> {
        self.measured(crate::stats::Operation::ApplyChanges, async {
            let limits = self.config().limits;
            check_size(&data, &limits)?;
            let Ok(key) = parse(token) else {
                return Ok(ApplyOutcome::Gone);
            };
            let version = basis.version();
            let attempts = match basis {
                Basis::Version(_) => MAX_APPLY_ATTEMPTS,
                Basis::Read(read) => {
                    if read.key != key {
                        return Err(Error::InvalidArgument(
                            "the basis is another session than the token's".into(),
                        ));
                    }
                    let now = self.now();
                    match self
                        .write_over(&key, read.record, data.clone(), now)
                        .await?
                    {
                        Written::Saved(record) => {
                            return Ok(ApplyOutcome::Saved(Session { key, record }));
                        }
                        Written::NotFound => return Ok(ApplyOutcome::Gone),
                        Written::Conflict { .. } => {
                            self.note(crate::stats::Stats::retried);
                            MAX_APPLY_ATTEMPTS - 1
                        }
                    }
                }
            };
            let written = self
                .modify(&key, None, attempts, self.now(), |current| {
                    let next = if current.version == version {
                        data.clone() // unchanged since the caller read it
                    } else {
                        check_keys_untouched(current, version, &data, keys, base)?;
                        current.data.with_keys_from(&data, keys, &limits)?
                    };
                    Ok((next, ()))
                })
                .await;
            match written {
                Ok((record, ())) => Ok(ApplyOutcome::Saved(Session { key, record })),
                Err(Error::NotFound) => Ok(ApplyOutcome::Gone),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// Fails with [`Error::KeyConflict`] when another writer changed one of
/// `keys` since the caller read it at `version`: `current` holds neither its
/// `base` value nor the value `data` gives it.
fn check_keys_untouched(
    current: &SessionRecord,
    version: u64,
    data: &SessionData,
    keys: &[&str],
    base: &SessionData,
) -> Result<()> {
    for &key in keys {
        let theirs = current.data.value_of(key);
        if theirs != base.value_of(key) && theirs != data.value_of(key) {
            return Err(Error::KeyConflict {
                key: key.to_owned(),
                expected: version,
                actual: current.version,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

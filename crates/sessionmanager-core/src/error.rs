//! The engine's error type. "Not found" at the store level is `None`, not an error;
//! the manager turns it into [`Error::NotFound`] only where the caller asked for a
//! session that must exist.

use crate::data::DataErrorKind;

/// A boxed error from a store's backend (I/O, driver, protocol).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for results of engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session is unknown, ended, rotated away or expired.
    #[error("session not found (unknown, ended or expired)")]
    NotFound,

    /// A compare-and-set write found another version than the one it expected.
    #[error("session was changed concurrently: expected version {expected}, found {actual}")]
    Conflict {
        /// The version the caller based its write on.
        expected: u64,
        /// The version the store holds now.
        actual: u64,
    },

    /// A write of changes to a session found that another writer had changed
    /// one of the same top-level keys since the caller read it, to another
    /// value: neither change may silently undo the other, so nothing was written.
    #[error(
        "{} was changed by another writer since version {expected} \
         (the session is at version {actual} now); nothing was written",
        crate::data::key_path(key)
    )]
    KeyConflict {
        /// The key both writers changed.
        key: String,
        /// The version the caller based its changes on.
        expected: u64,
        /// The version the store holds now.
        actual: u64,
    },

    /// The user already has the maximum number of sessions and the limit rejects new ones.
    #[error("user already has the maximum of {limit} live sessions")]
    UserLimitReached {
        /// The configured `max_sessions_per_user`.
        limit: u32,
    },

    /// The store holds its configured maximum of live sessions.
    #[error("store is full: it holds its maximum of {max_sessions} live sessions")]
    StoreFull {
        /// The store's configured bound.
        max_sessions: usize,
    },

    /// Session data that is not plain JSON within the configured limits.
    #[error("{path}: {message}")]
    InvalidData {
        /// Where in the data the problem is, like `data['cart'][2]`.
        path: String,
        /// What is wrong there.
        message: String,
        /// Whether the value had a type JSON cannot hold or a value out of range.
        kind: DataErrorKind,
    },

    /// An argument outside its allowed range (a non-positive timeout, an empty user id).
    #[error("{0}")]
    InvalidArgument(String),

    /// The manager or store was closed.
    #[error("the session manager is closed")]
    Closed,

    /// The caller gave up waiting for the store when its host asked (the
    /// Python binding: a signal handler raised, as Ctrl-C's does). The call
    /// may still complete: an interrupted write may or may not have happened.
    #[error(
        "interrupted while waiting for the session store; the call may or may not have taken effect"
    )]
    Interrupted,

    /// The store could not be reached (connection refused, timeout).
    #[error("session store unavailable: {0}")]
    Unavailable(BoxError),

    /// The store failed in another way (corruption, I/O error, driver error).
    #[error("session store error: {0}")]
    Store(BoxError),
}

/// The cause inside [`Error::rotation_target_taken`]: a type of its own, so
/// that no other store error can be mistaken for it.
#[derive(Debug, thiserror::Error)]
#[error("rotation target key already in use")]
struct RotationTargetTaken;

impl Error {
    /// What `SessionStore::rotate` returns when a record already holds the new
    /// key: the same error, word for word, from every store.
    pub fn rotation_target_taken() -> Self {
        Self::Store(Box::new(RotationTargetTaken))
    }

    /// Is this the error of [`Error::rotation_target_taken`]?
    pub fn is_rotation_target_taken(&self) -> bool {
        matches!(self, Self::Store(e) if e.is::<RotationTargetTaken>())
    }

    /// Is this [`Error::NotFound`]?
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }

    /// Is this [`Error::Conflict`] or [`Error::KeyConflict`]?
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::KeyConflict { .. })
    }

    /// Is this a limit being hit ([`Error::UserLimitReached`] or [`Error::StoreFull`])?
    pub fn is_limit(&self) -> bool {
        matches!(self, Self::UserLimitReached { .. } | Self::StoreFull { .. })
    }

    /// Is this a problem with the caller's input rather than with the store?
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::InvalidData { .. } | Self::InvalidArgument(_))
    }

    pub(crate) fn invalid_data(
        path: impl Into<String>,
        kind: DataErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self::InvalidData {
            path: path.into(),
            message: message.into(),
            kind,
        }
    }
}

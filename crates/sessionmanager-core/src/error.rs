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

    /// A rotation found a live session under the new key (the store's
    /// `rotate` reports it so; with keys of 256 random bits it means a
    /// broken random generator or a store changed by hand). Nothing moved.
    #[error("rotation target key already in use")]
    RotationTargetTaken,

    /// The store's tables or files were written by a newer release, whose
    /// layout this one cannot read; nothing was changed.
    #[error(
        "{subject}: written by a newer pysessionmanager (schema version {found}; \
         this one reads up to {supported}); upgrade pysessionmanager to use it"
    )]
    NewerSchema {
        /// The database, as messages name it (a file's path, a schema).
        subject: String,
        /// The version the database records.
        found: i64,
        /// The newest version this release reads.
        supported: i64,
    },

    /// The caller gave up waiting for the store when its host asked (the
    /// Python binding: a signal handler raised, as Ctrl-C's does). The call
    /// may still complete: an interrupted write may or may not have happened.
    #[error(
        "interrupted while waiting for the session store; the call may or may not have taken effect"
    )]
    Interrupted,

    /// The store could not be reached (connection refused, timeout). The
    /// cause is usually a [`StoreFailure`], whose own cause is the driver's
    /// error ([`Error::driver_error`] finds it).
    #[error("session store unavailable: {0}")]
    Unavailable(#[source] BoxError),

    /// The store failed in another way (corruption, I/O error, driver
    /// error), with its cause as for [`Error::Unavailable`].
    #[error("session store error: {0}")]
    Store(#[source] BoxError),
}

/// A store's account of a failure: a message saying what the store was doing
/// and what went wrong (never a password or a token), and the driver's error,
/// when there is one, as its [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct StoreFailure {
    message: String,
    source: Option<BoxError>,
}

impl StoreFailure {
    /// A failure with no driver error behind it (data the store did not
    /// write, a timeout of the store's own).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by the driver's `source`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// Is this [`Error::RotationTargetTaken`]?
    pub fn is_rotation_target_taken(&self) -> bool {
        matches!(self, Self::RotationTargetTaken)
    }

    /// [`Error::Store`] of a [`StoreFailure`]: `message`, caused by the driver's `source`.
    pub fn store(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Store(Box::new(StoreFailure::caused_by(message, source)))
    }

    /// [`Error::Unavailable`] of a [`StoreFailure`]: `message`, caused by the driver's `source`.
    pub fn unavailable(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable(Box::new(StoreFailure::caused_by(message, source)))
    }

    /// The first error of type `E` among this error's causes: the driver's
    /// own error (`rusqlite::Error`, `redis::RedisError`,
    /// `tokio_postgres::Error`) where the store kept it.
    pub fn driver_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            if let Some(found) = error.downcast_ref::<E>() {
                return Some(found);
            }
            cause = error.source();
        }
        None
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

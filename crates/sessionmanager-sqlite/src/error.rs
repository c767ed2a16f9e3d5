//! SQLite errors as engine errors, with what was being done.

use sessionmanager_core::Error;

/// Wraps a SQLite error with the operation it interrupted. A file kept locked
/// by another process past the busy timeout is "unavailable", not a failure
/// of the data, so callers can tell the two apart.
pub(crate) fn store_error(doing: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |err| {
        match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => Error::Unavailable(
            format!("could not {doing}: the database stayed locked by another connection past the busy timeout")
                .into(),
        ),
        Some(rusqlite::ErrorCode::DiskFull) => {
            Error::Store(format!("could not {doing}: the disk is full; nothing of this write was stored").into())
        }
        Some(rusqlite::ErrorCode::SystemIoFailure) => Error::Store(
            format!(
                "could not {doing}: writing to disk failed (disk full, a file size limit, or an I/O error: {err}); nothing of this write was stored"
            )
            .into(),
        ),
        _ => Error::Store(format!("SQLite failed to {doing}: {err}").into()),
    }
    }
}

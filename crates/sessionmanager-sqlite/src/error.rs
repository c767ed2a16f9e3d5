//! SQLite errors as engine errors, with what was being done, keeping the
//! `rusqlite::Error` as their cause (`Error::driver_error`).

use sessionmanager_core::Error;

/// Wraps a SQLite error with the operation it interrupted. A file kept locked
/// by another process past the busy timeout is "unavailable", not a failure
/// of the data, so callers can tell the two apart.
pub(crate) fn store_error(doing: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |err| {
        let code = err.sqlite_error_code();
        match code {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                let message = format!(
                    "could not {doing}: the database stayed locked \
                     by another connection past the busy timeout"
                );
                Error::unavailable(message, err)
            }
            Some(rusqlite::ErrorCode::DiskFull) => {
                let message = format!(
                    "could not {doing}: the disk is full; nothing of this write was stored"
                );
                Error::store(message, err)
            }
            Some(rusqlite::ErrorCode::SystemIoFailure) => {
                let message = format!(
                    "could not {doing}: writing to disk failed (disk full, a file size \
                     limit, or an I/O error: {err}); nothing of this write was stored"
                );
                Error::store(message, err)
            }
            _ => Error::store(format!("SQLite failed to {doing}: {err}"), err),
        }
    }
}

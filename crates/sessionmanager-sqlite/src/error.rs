//! SQLite errors as engine errors, with what was being done.

use sessionmanager_core::Error;

/// Wraps a SQLite error with the operation it interrupted.
pub(crate) fn store_error(doing: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |err| Error::Store(format!("SQLite failed to {doing}: {err}").into())
}

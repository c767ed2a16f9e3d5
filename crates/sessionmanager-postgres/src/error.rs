//! PostgreSQL and pool errors as engine errors, saying what was being done
//! and to which server (never with the password), keeping the
//! `tokio_postgres::Error` as their cause (`Error::driver_error`).
//!
//! A server that cannot be reached, went away or is shutting down is
//! [`Error::Unavailable`] (worth retrying later); everything else, including
//! a wrong password or a missing database, is [`Error::Store`].

use std::time::Duration;

use deadpool_postgres::PoolError;
use sessionmanager_core::Error;

use crate::target::Target;

/// SQLSTATEs that mean "the server is not there for now": class 08
/// (connection exceptions), 57P01 (admin_shutdown), 57P02 (crash_shutdown),
/// 57P03 (cannot_connect_now: starting up, shutting down, recovering) and
/// 53300 (too_many_connections).
fn transient(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// A driver error met while trying to `doing`.
pub(crate) fn query_error(target: &Target, doing: &str, err: tokio_postgres::Error) -> Error {
    if let Some(tls) = tls_error(&err) {
        // A certificate or handshake that is refused now will be refused
        // again: a setting to fix, not a server to wait for.
        let problem = sessionmanager_tls::describe(&tls, crate::config::TLS_OPTION_NAMES);
        return Error::store(
            format!("could not {doing}: TLS with {target} failed: {problem}"),
            tls,
        );
    }
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        let message = db.message();
        let detail = match code {
            "28P01" | "28000" => format!(
                "{target} refused the login: {message} (check \
                 the user and password in the store URL)"
            ),
            "3D000" => format!(
                "{target}: {message} (create it, or name an existing database in the store URL)"
            ),
            "42501" => format!(
                "could not {doing} on {target}: {message} (the user needs \
                 the right to create and use the pysessionmanager tables)"
            ),
            // Insufficient resources: the statement failed whole.
            "53100" | "53200" => format!(
                "could not {doing}: {target} is out of {} \
                 ({message}); nothing of this call was written",
                if code == "53100" {
                    "disk space"
                } else {
                    "memory"
                }
            ),
            _ => format!("could not {doing} on {target}: {message} (SQLSTATE {code})"),
        };
        return if transient(code) {
            Error::unavailable(detail, err)
        } else {
            Error::store(detail, err)
        };
    }
    let cause = causes(&err);
    if err.is_closed() || reached_nothing(&err) {
        let message = format!(
            "could not {doing}: lost or could not open the connection \
             to {target}: {err}{cause} (is the server running?)"
        );
        return Error::unavailable(message, err);
    }
    Error::store(format!("could not {doing} on {target}: {err}{cause}"), err)
}

/// A pool error met while waiting for a connection to `doing`. (The pool has
/// no deadlines of its own; the store's timeout covers the wait.)
pub(crate) fn pool_error(target: &Target, doing: &str, err: PoolError) -> Error {
    match err {
        PoolError::Backend(e) => query_error(target, doing, e),
        PoolError::Closed => Error::Closed,
        other => Error::store(format!("could not {doing} on {target}: {other}"), other),
    }
}

/// A call that did not finish within the store's timeout.
pub(crate) fn timed_out(target: &Target, doing: &str, timeout: Duration) -> Error {
    Error::Unavailable(
        format!(
            "could not {doing}: no answer from {target} within {} ms",
            timeout.as_millis()
        )
        .into(),
    )
}

/// A call that spent most of the store's timeout waiting for a pooled connection.
pub(crate) fn pool_exhausted(
    target: &Target,
    doing: &str,
    timeout: Duration,
    waited: Duration,
    size: usize,
) -> Error {
    Error::Unavailable(
        format!(
            "could not {doing} within {} ms: {} ms of it went to waiting \
             while all {size} pooled connections to {target} were busy; raise \
             the store URL's pool_size (at most the server's max_connections \
             shared by every process), or lower how many calls run at once",
            timeout.as_millis(),
            waited.as_millis().min(timeout.as_millis()),
        )
        .into(),
    )
}

/// Whether the error comes from the network (refused, reset, timed out).
fn reached_nothing(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    // tokio-postgres's own connect timeout has no cause to look at.
    err.to_string().starts_with("timeout")
}

/// ": cause: its cause…" for the message.
fn causes(err: &tokio_postgres::Error) -> String {
    let mut text = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The TLS error behind `err`, if a handshake failed: tokio-postgres keeps
/// the TLS stream's I/O error, which holds the rustls error.
fn tls_error(err: &tokio_postgres::Error) -> Option<rustls::Error> {
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.clone());
        }
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(tls) = inner {
            return Some(tls.clone());
        }
        cause = e.source();
    }
    None
}

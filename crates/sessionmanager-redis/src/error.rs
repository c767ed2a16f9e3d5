//! Redis errors as engine errors: "unavailable" (retrying later may work)
//! for a server that cannot be reached, a clear store error for the rest,
//! always naming the server by `host:port/db` and never by its password,
//! keeping the `redis::RedisError` as their cause (`Error::driver_error`).

use std::time::Duration;

use redis::{ErrorKind, RedisError};
use sessionmanager_core::Error;

use crate::link::ConnectError;

/// What went wrong in one operation.
pub(crate) enum Failure {
    /// Opening a connection failed (refused, unreachable, the handshake refused).
    Connect(ConnectError),
    /// A command failed.
    Command(RedisError),
    /// The server answered something the store did not write.
    Corrupt(String),
    /// A live session already holds the rotation target.
    RotateTargetTaken,
    /// The key has no session in the bucket a script ran in, but a link
    /// there names `bucket` (`lua/prelude.lua`'s `linked`): of the key the
    /// call addressed, or of a rotation's new key if `new_key`.
    Linked { bucket: u16, new_key: bool },
    /// The master has a write, but fewer replicas than `wanted`
    /// acknowledged it within `waited_ms` (the `wait_replicas` setting).
    Unreplicated {
        acked: i64,
        wanted: u32,
        waited_ms: u128,
    },
    /// The cluster could not be found or used as one, in words that name
    /// the nodes; `transient` if waiting may help.
    Cluster { message: String, transient: bool },
}

impl From<RedisError> for Failure {
    fn from(err: RedisError) -> Self {
        let new_key = match err.code() {
            Some("LINKED") => false,
            Some("NEWLINKED") => true,
            _ => return Self::Command(err),
        };
        match err.detail().and_then(|d| d.trim().parse::<u16>().ok()) {
            Some(bucket) if bucket < crate::keys::BUCKETS => Self::Linked { bucket, new_key },
            _ => Self::Corrupt(format!("a link to no bucket: {err}")),
        }
    }
}

impl Failure {
    /// Whether the operation sent nothing that ran and may succeed soon:
    /// the server or sentinels could not be reached, the sentinels named a
    /// master that is a replica now, or a replica refused the write. Through
    /// Sentinel such an operation is tried again (the master may have
    /// moved); refused credentials or certificates are not.
    pub(crate) fn passing(&self) -> bool {
        match self {
            Self::Connect(ConnectError::Redis(err)) => is_unreachable(err),
            Self::Connect(ConnectError::Sentinel(err)) => err.transient,
            Self::Connect(ConnectError::Tls(_) | ConnectError::Name(_)) => false,
            Self::Command(err) => err.code() == Some("READONLY"),
            Self::Corrupt(_)
            | Self::RotateTargetTaken
            | Self::Linked { .. }
            | Self::Unreplicated { .. }
            | Self::Cluster { .. } => false,
        }
    }
}

/// The engine error for `failure` while the store tried `doing` on the server at `address`.
pub(crate) fn engine_error(failure: Failure, doing: &str, address: &str, db: i64) -> Error {
    match failure {
        Failure::Connect(ConnectError::Redis(err)) => connect_error(err, address, db),
        Failure::Connect(ConnectError::Tls(err)) => {
            // A certificate or handshake that is refused now will be refused
            // again: a setting to fix, not a server to wait for.
            let message = format!(
                "cannot connect to Redis at {address} over TLS: {}",
                sessionmanager_tls::describe(&err, crate::config::TLS_OPTION_NAMES)
            );
            Error::store(message, err)
        }
        Failure::Connect(ConnectError::Name(err)) => err,
        Failure::Connect(ConnectError::Sentinel(err)) => {
            let message = format!("cannot find Redis at {address}: {}", err.message);
            match (err.transient, err.source) {
                (true, Some(source)) => Error::unavailable(message, source),
                (true, None) => Error::Unavailable(message.into()),
                (false, Some(source)) => Error::store(message, source),
                (false, None) => Error::Store(message.into()),
            }
        }
        Failure::Command(err) => command_error(err, doing, address),
        Failure::Corrupt(what) => Error::Store(
            format!(
                "could not {doing}: Redis at {address} holds {what}; \
                 was it changed by something else?"
            )
            .into(),
        ),
        Failure::RotateTargetTaken => Error::RotationTargetTaken,
        Failure::Unreplicated {
            acked,
            wanted,
            waited_ms,
        } => Error::Unavailable(
            format!(
                "could not {doing} safely: Redis at {address} has the write, but {acked} of the \
                 {wanted} replicas asked for (wait_replicas) acknowledged it within {waited_ms} \
                 ms; a failover now could lose it"
            )
            .into(),
        ),
        Failure::Cluster {
            message,
            transient: true,
        } => Error::Unavailable(format!("could not {doing}: {message}").into()),
        Failure::Cluster { message, .. } => {
            Error::Store(format!("could not {doing}: {message}").into())
        }
        Failure::Linked { bucket, .. } => Error::Store(
            format!(
                "could not {doing}: Redis at {address} links a session to bucket {bucket}, \
                 which links it elsewhere again; was it changed by something else?"
            )
            .into(),
        ),
    }
}

/// The error for an operation that did not finish within the store's timeout.
pub(crate) fn timed_out(doing: &str, address: &str, timeout: Duration) -> Error {
    Error::Unavailable(
        format!(
            "could not {doing}: Redis at {address} did not answer within {} ms",
            timeout.as_millis()
        )
        .into(),
    )
}

pub(crate) fn is_unreachable(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || matches!(
            err.code(),
            Some("LOADING" | "MASTERDOWN" | "TRYAGAIN" | "BUSY")
        )
}

fn connect_error(err: RedisError, address: &str, db: i64) -> Error {
    if is_unreachable(&err) {
        return Error::unavailable(format!("cannot connect to Redis at {address}: {err}"), err);
    }
    let text = err.to_string();
    let message = if err.kind() == ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
        || text.contains("invalid password")
        || text.contains("invalid username-password")
    {
        if err.code() == Some("NOAUTH") || text.contains("NOAUTH") {
            format!(
                "Redis at {address} requires a password and none was \
                 given; write it in the URL: redis://:password@host:port/db"
            )
        } else {
            format!(
                "Redis at {address} refused the user name or password in the \
                 URL (check them, and percent-encode special characters): {err}"
            )
        }
    } else if text.contains("DB index is out of range") {
        format!(
            "Redis at {address} has no database {db}: the server's `databases` \
             setting is lower (the default is 16, numbered 0 to 15)"
        )
    } else {
        format!("cannot use Redis at {address}: {err}")
    };
    Error::store(message, err)
}

fn command_error(err: RedisError, doing: &str, address: &str) -> Error {
    if is_unreachable(&err) {
        let message = format!("could not {doing}: Redis at {address} is unreachable: {err}");
        return Error::unavailable(message, err);
    }
    let message = match err.code() {
        Some("OOM") => format!(
            "could not {doing}: Redis at {address} is out of memory (maxmemory \
             reached, and its eviction policy refuses writes); nothing was written"
        ),
        Some("READONLY") => format!(
            "could not {doing}: Redis at {address} is a \
             read-only replica; point the store at the primary"
        ),
        Some("NOAUTH") => format!(
            "Redis at {address} requires a password and none was \
             given; write it in the URL: redis://:password@host:port/db"
        ),
        Some("WRONGPASS" | "NOPERM") => format!(
            "could not {doing}: Redis at {address} refused the command for these credentials: {err}"
        ),
        _ => format!("Redis at {address} failed to {doing}: {err}"),
    };
    Error::store(message, err)
}

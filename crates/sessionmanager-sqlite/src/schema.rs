//! Opening a database file: pragmas, and a schema that records its own
//! version so later releases can migrate it forward.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sessionmanager_core::{Error, Result};

use crate::config::{Durability, SqliteConfig};

/// The schema this build writes. Files with a higher version are refused.
pub(crate) const SCHEMA_VERSION: i64 = 1;

const CREATE_V1: &str = "
    CREATE TABLE pysessionmanager_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE sessions (
        key BLOB PRIMARY KEY,
        user_id TEXT NOT NULL,
        data TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        last_active INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        idle_timeout_ms INTEGER NOT NULL,
        sliding INTEGER NOT NULL,
        absolute_expires_at INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    INSERT INTO pysessionmanager_meta (name, value) VALUES ('schema_version', 1);
";

/// Opens a connection to the store's file, changing nothing in it yet.
pub(crate) fn connect(config: &SqliteConfig) -> Result<Connection> {
    let path = config.path.display();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&config.path, flags).map_err(|e| {
        Error::Store(
            format!("cannot open the session database {path}: {e} (does its folder exist, and is it writable?)")
                .into(),
        )
    })?;
    conn.busy_timeout(config.busy_timeout)
        .map_err(|e| describe(&config.path, e))?;
    Ok(conn)
}

/// Switches a connection to WAL journaling and the configured durability.
/// Only after [`prepare`] has accepted the file: switching rewrites its header.
pub(crate) fn configure(conn: &Connection, config: &SqliteConfig) -> Result<()> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| describe(&config.path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Store(
            format!(
                "{}: cannot switch to WAL journaling (got {mode})",
                config.path.display()
            )
            .into(),
        ));
    }
    let synchronous = match config.durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous={synchronous};"))
        .map_err(|e| describe(&config.path, e))
}

/// Creates the schema in an empty file, or checks the one that is there.
/// Never touches a file that holds anything else.
pub(crate) fn prepare(conn: &mut Connection, config: &SqliteConfig) -> Result<()> {
    let path = config.path.display();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| describe(&config.path, e))?;
    let ours: bool = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'pysessionmanager_meta'",
            [],
            |row| row.get::<_, i64>(0).map(|n| n > 0),
        )
        .map_err(|e| describe(&config.path, e))?;
    if ours {
        let version: Option<i64> = tx
            .query_row(
                "SELECT value FROM pysessionmanager_meta WHERE name = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| describe(&config.path, e))?;
        return match version {
            Some(SCHEMA_VERSION) => Ok(()),
            Some(newer) if newer > SCHEMA_VERSION => Err(Error::Store(
                format!("{path} was written by a newer pysessionmanager (schema version {newer}; this one reads up to {SCHEMA_VERSION}); upgrade pysessionmanager to use it").into(),
            )),
            other => Err(Error::Store(
                format!("{path} has an unknown pysessionmanager schema version ({other:?}); it may be damaged").into(),
            )),
        };
    }
    let others: i64 = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| describe(&config.path, e))?;
    if others > 0 {
        return Err(Error::Store(
            format!("{path} is a SQLite database of something else ({others} tables or indexes that are not pysessionmanager's); refusing to touch it").into(),
        ));
    }
    tx.execute_batch(CREATE_V1)
        .map_err(|e| describe(&config.path, e))?;
    tx.commit().map_err(|e| describe(&config.path, e))
}

/// A clear error for a failure while opening `path`.
fn describe(path: &std::path::Path, err: rusqlite::Error) -> Error {
    let path = path.display();
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            Error::Store(format!("{path} is not a SQLite database (refusing to touch it)").into())
        }
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::Unavailable(
                format!("{path} is locked by another process for longer than the busy timeout")
                    .into(),
            )
        }
        Some(
            rusqlite::ErrorCode::ReadOnly
            | rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::PermissionDenied,
        ) => Error::Store(
            format!(
                "cannot write the session database {path}: {err} (is it or its folder read-only?)"
            )
            .into(),
        ),
        _ => Error::Store(format!("SQLite failed on {path}: {err}").into()),
    }
}

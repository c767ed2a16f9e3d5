//! Opening a database file: pragmas, and a schema that records its own
//! version so later releases can migrate it forward.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sessionmanager_core::{Error, Result, Schema};

use crate::config::{Durability, SqliteConfig};

/// The schema of this build. To change it, append a step; never edit a
/// released one, since files in the field were made by it.
pub(crate) const SCHEMA: Schema = Schema {
    create: CREATE_V1,
    steps: &[ADD_USER_EXPIRY_INDEX],
};

/// Version 2: a user's expired sessions are found by an index range, so a
/// create at a per-user limit never reads the user's live rows to trim it.
const ADD_USER_EXPIRY_INDEX: &str =
    "CREATE INDEX sessions_by_user_expiry ON sessions (user_id, expires_at);";

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
        let message = format!(
            "cannot open the session database {path}: {e} (does its folder exist, and is it writable?)"
        );
        Error::store(message, e)
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

/// Creates the schema in an empty file, or checks the one that is there and
/// migrates it forward. Never touches a file that holds anything else.
pub(crate) fn prepare(conn: &mut Connection, config: &SqliteConfig) -> Result<()> {
    prepare_schema(conn, config, &SCHEMA)
}

/// [`prepare`] for a given schema. Everything happens in one immediate
/// transaction, so a failed step leaves the file as it was, and two
/// processes opening an old file at once migrate it once.
fn prepare_schema(conn: &mut Connection, config: &SqliteConfig, schema: &Schema) -> Result<()> {
    let path = config.path.display();
    let fail = |e| describe(&config.path, e);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(fail)?;
    let ours: bool = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'pysessionmanager_meta'",
            [],
            |row| row.get::<_, i64>(0).map(|n| n > 0),
        )
        .map_err(fail)?;
    if !ours {
        let others: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
                [],
                |row| row.get(0),
            )
            .map_err(fail)?;
        if others > 0 {
            return Err(Error::Store(
                format!("{path} is a SQLite database of something else ({others} tables or indexes that are not pysessionmanager's); refusing to touch it").into(),
            ));
        }
        tx.execute_batch(schema.create).map_err(fail)?;
    }
    let found: Option<i64> = tx
        .query_row(
            "SELECT value FROM pysessionmanager_meta WHERE name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(fail)?;
    let subject = path.to_string();
    let current = schema.current(found, &subject)?;
    for (from, step) in schema.steps_from(current) {
        tx.execute_batch(step)
            .map_err(|e| Schema::step_failed(&subject, from, current, e))?;
    }
    let target = schema.version();
    if current < target {
        tx.execute(
            "UPDATE pysessionmanager_meta SET value = ?1 WHERE name = 'schema_version'",
            [target],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// A clear error for a failure while opening `path`.
fn describe(path: &std::path::Path, err: rusqlite::Error) -> Error {
    let path = path.display();
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::store(
            format!("{path} is not a SQLite database (refusing to touch it)"),
            err,
        ),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::unavailable(
                format!("{path} is locked by another process for longer than the busy timeout"),
                err,
            )
        }
        Some(
            rusqlite::ErrorCode::ReadOnly
            | rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::PermissionDenied,
        ) => {
            let message = format!(
                "cannot write the session database {path}: {err} (is it or its folder read-only?)"
            );
            Error::store(message, err)
        }
        _ => Error::store(format!("SQLite failed on {path}: {err}"), err),
    }
}

//! Opening a database file: pragmas, and a schema that records its own
//! version so later releases can migrate it forward.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sessionmanager_core::{Error, Result, Schema};

use crate::config::{Durability, SqliteConfig};

/// The schema of this build. To change it, append a step; never edit a
/// released one, since files in the field were made by it. A new file is
/// made at version 1 and brought forward by the steps, like any other.
pub(crate) const SCHEMA: Schema = Schema {
    create: CREATE_V1,
    steps: &[V2, V3],
};

/// Version 3: rate-limit state in a table of its own (it was kept as
/// session rows whose user id starts with "\0rate\0"; those rows are
/// dropped, so limits start fresh once).
const V3: &str = "
    CREATE TABLE pysessionmanager_rate_limits (
        key BLOB PRIMARY KEY,
        tat_us INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX pysessionmanager_rate_limits_by_expiry
        ON pysessionmanager_rate_limits (expires_at_ms);
    DELETE FROM pysessionmanager_sessions
        WHERE substr(CAST(user_id AS BLOB), 1, 6) = X'007261746500';
";

/// Version 2: tables and columns named as in every SQL store of the project
/// (`pysessionmanager_<table>`, times as `<name>_ms`, as PostgreSQL's), and
/// an index of each user's sessions by expiry, so that a create at a
/// per-user limit never reads the user's live rows to trim the expired.
const V2: &str = "
    ALTER TABLE sessions RENAME TO pysessionmanager_sessions;
    ALTER TABLE pysessionmanager_sessions RENAME COLUMN created_at TO created_at_ms;
    ALTER TABLE pysessionmanager_sessions RENAME COLUMN last_active TO last_active_ms;
    ALTER TABLE pysessionmanager_sessions RENAME COLUMN expires_at TO expires_at_ms;
    ALTER TABLE pysessionmanager_sessions
        RENAME COLUMN absolute_expires_at TO absolute_expires_at_ms;
    DROP INDEX sessions_by_user;
    DROP INDEX sessions_by_expiry;
    CREATE INDEX pysessionmanager_sessions_by_user
        ON pysessionmanager_sessions (user_id, created_at_ms);
    CREATE INDEX pysessionmanager_sessions_by_expiry ON pysessionmanager_sessions (expires_at_ms);
    CREATE INDEX pysessionmanager_sessions_by_user_expiry
        ON pysessionmanager_sessions (user_id, expires_at_ms);
";

const CREATE_V1: &str = "
    CREATE TABLE pysessionmanager_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) \
        WITHOUT ROWID;
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
            "cannot open the session database {path}: {e} \
             (does its folder exist, and is it writable?)"
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
            "SELECT count(*) FROM sqlite_master \
             WHERE type = 'table' AND name = 'pysessionmanager_meta'",
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
                format!(
                    "{path} is a SQLite database of something else ({others} tables or \
                     indexes that are not pysessionmanager's); refusing to touch it"
                )
                .into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The first release's schema, before any step.
    const V1: Schema = Schema {
        create: CREATE_V1,
        steps: &[],
    };
    const ADD_NOTE: &str = "ALTER TABLE sessions ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';";
    const INDEX_NOTE: &str = "CREATE INDEX sessions_by_note ON sessions (note);";
    const INDEX_USER_NOTE: &str = "CREATE INDEX sessions_by_user_note ON sessions (user_id, note);";

    fn open(dir: &tempfile::TempDir) -> (Connection, SqliteConfig) {
        let config = SqliteConfig::new(dir.path().join("sessions.db"));
        (connect(&config).unwrap(), config)
    }

    fn version(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT value FROM pysessionmanager_meta WHERE name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .unwrap()
    }

    #[test]
    fn a_version_1_file_is_migrated_forward_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, config) = open(&dir);
        prepare_schema(&mut conn, &config, &V1).unwrap();
        conn.execute(
            "INSERT INTO sessions VALUES (x'01', 'alice', '{}', 1, 0, 0, 10, 10, 1, NULL)",
            [],
        )
        .unwrap();
        // One version beyond this build's.
        let v4 = Schema {
            create: CREATE_V1,
            steps: &[ADD_NOTE, INDEX_NOTE, INDEX_USER_NOTE],
        };
        assert_eq!(v4.version(), SCHEMA.version() + 1);
        prepare_schema(&mut conn, &config, &v4).unwrap();
        assert_eq!(version(&conn), 4);
        let (user, note): (String, String) = conn
            .query_row("SELECT user_id, note FROM sessions", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((user.as_str(), note.as_str()), ("alice", "v2"));
        // Opening again with the same schema runs nothing twice.
        prepare_schema(&mut conn, &config, &v4).unwrap();
        assert_eq!(version(&conn), 4);
        // An older build refuses the newer file rather than misreading it.
        let err = prepare(&mut conn, &config).unwrap_err().to_string();
        assert!(
            err.contains("newer pysessionmanager (schema version 4"),
            "{err}"
        );
    }

    #[test]
    fn a_file_of_the_first_release_is_migrated_to_this_one() {
        use sessionmanager_core::block_on;
        use sessionmanager_core::{CreateOutcome, SessionKey, SessionStore, Timestamp, UserLimit};

        let dir = tempfile::tempdir().unwrap();
        let (mut conn, config) = open(&dir);
        prepare_schema(&mut conn, &config, &V1).unwrap();
        let far = i64::MAX / 2;
        for key in [1u8, 2] {
            conn.execute(
                "INSERT INTO sessions VALUES (?1, 'alice', '{}', 1, ?2, 0, ?3, 10, 1, NULL)",
                rusqlite::params![[key; 32], i64::from(key), far],
            )
            .unwrap();
        }
        drop(conn);

        let store = crate::SqliteStore::open(config.clone()).unwrap();
        let now = Timestamp(100);
        let listed = block_on(store.list_user("alice", now)).unwrap();
        assert_eq!(listed.len(), 2, "the first release's rows are read");
        let limit = UserLimit {
            max_sessions: 2,
            evict_oldest: true,
        };
        let record = listed[0].1.clone();
        let key = SessionKey::from_bytes([3; 32]);
        let outcome = block_on(store.create(&key, &record, Some(limit), now)).unwrap();
        assert_eq!(outcome, CreateOutcome::Created { evicted: 1 });
        drop(store);

        let (conn, _) = open(&dir);
        assert_eq!(version(&conn), SCHEMA.version());
        let mut indexes = conn
            .prepare(
                "SELECT name FROM sqlite_master \
                 WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap();
        let indexes: Vec<String> = indexes
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            indexes,
            [
                "pysessionmanager_rate_limits_by_expiry",
                "pysessionmanager_sessions_by_expiry",
                "pysessionmanager_sessions_by_user",
                "pysessionmanager_sessions_by_user_expiry"
            ]
        );
    }

    #[test]
    fn rate_limit_rows_of_version_2_are_dropped_and_sessions_kept() {
        use sessionmanager_core::{SessionStore, Timestamp, block_on};

        const V2_ONLY: Schema = Schema {
            create: CREATE_V1,
            steps: &[V2],
        };
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, config) = open(&dir);
        prepare_schema(&mut conn, &config, &V2_ONLY).unwrap();
        let far = i64::MAX / 2;
        for (key, user) in [(1u8, "alice"), (2, "\0rate\0api:alice"), (3, "rate\0x")] {
            conn.execute(
                "INSERT INTO pysessionmanager_sessions VALUES \
                 (?1, ?2, '{}', 1, 0, 0, ?3, 10, 1, NULL)",
                rusqlite::params![[key; 32], user, far],
            )
            .unwrap();
        }
        drop(conn);
        // No sweeper: by the real clock, this test's times are long past.
        let config = SqliteConfig {
            sweep_interval: None,
            ..config
        };
        let store = crate::SqliteStore::open(config).unwrap();
        let now = Timestamp(100);
        assert_eq!(block_on(store.count(now)).unwrap(), 2, "the sessions stay");
        assert_eq!(block_on(store.list_user("alice", now)).unwrap().len(), 1);
        assert_eq!(block_on(store.list_user("rate\0x", now)).unwrap().len(), 1);
        let key = sessionmanager_core::SessionKey::from_bytes([9; 32]);
        assert!(block_on(store.rate_store(&key, None, 5_000_000, now)).unwrap());
        assert_eq!(
            block_on(store.rate_load(&key)).unwrap().tat_us,
            Some(5_000_000)
        );
        assert_eq!(
            block_on(store.count(now)).unwrap(),
            2,
            "rate state is no session"
        );
    }

    #[test]
    fn a_new_file_is_created_at_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, config) = open(&dir);
        let v2 = Schema {
            create: CREATE_V1,
            steps: &[ADD_NOTE],
        };
        prepare_schema(&mut conn, &config, &v2).unwrap();
        assert_eq!(version(&conn), 2);
        conn.query_row("SELECT count(note) FROM sessions", [], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap();
    }

    #[test]
    fn a_failing_step_leaves_the_file_at_its_old_version() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, config) = open(&dir);
        prepare_schema(&mut conn, &config, &V1).unwrap();
        let broken = Schema {
            create: CREATE_V1,
            steps: &[ADD_NOTE, "CREATE INDEX oops ON no_such_table (x);"],
        };
        let err = prepare_schema(&mut conn, &config, &broken)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("from version 2 to 3 failed, and it was left at version 1"),
            "{err}"
        );
        assert_eq!(version(&conn), 1);
        let columns: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'note'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(columns, 0, "the first step was rolled back too");
    }
}

//! The store's tables, created on first use and migrated forward: a
//! `pysessionmanager_meta` table records the schema version, as the SQLite
//! store's file does, and a newer version than this build knows is refused.

pub use sessionmanager_core::Schema;
use sessionmanager_core::{Error, Result};

use crate::conn::Conn;

/// The schema of this build. To change it, append a step; never edit a
/// released one, since databases in the field were made by it.
pub const SCHEMA: Schema = Schema {
    create: CREATE_V1,
    steps: &[ADD_USER_EXPIRY_INDEX, RATE_LIMITS_APART],
};

/// Version 3: rate-limit state in a table of its own. It was kept as session
/// rows whose user id starts with "\0rate\0"; those rows are dropped (limits
/// start fresh once), and `user_id`, which no longer needs to hold NUL,
/// becomes `text` (a rewrite of the table, once).
const RATE_LIMITS_APART: &str = "
    CREATE TABLE pysessionmanager_rate_limits (
        key bytea PRIMARY KEY,
        tat_us bigint NOT NULL,
        expires_at_ms bigint NOT NULL
    );
    CREATE INDEX pysessionmanager_rate_limits_by_expiry
        ON pysessionmanager_rate_limits (expires_at_ms);
    COMMENT ON TABLE pysessionmanager_rate_limits IS
        'pysessionmanager rate-limit state, keyed by the SHA-256 of each limited key: \
        the theoretical arrival time in microseconds, kept until expires_at_ms';
    DELETE FROM pysessionmanager_sessions
        WHERE substring(user_id from 1 for 6) = '\\x007261746500'::bytea;
    ALTER TABLE pysessionmanager_sessions
        ALTER COLUMN user_id TYPE text USING convert_from(user_id, 'UTF8');
    COMMENT ON TABLE pysessionmanager_sessions IS
        'pysessionmanager sessions, keyed by the SHA-256 of each token; \
        *_ms columns are milliseconds since the Unix epoch (UTC)';
";

/// Version 2: a user's expired sessions are found by an index range, so a
/// create at a per-user limit never reads the user's live rows to trim it.
const ADD_USER_EXPIRY_INDEX: &str = "CREATE INDEX pysessionmanager_sessions_by_user_expiry
    ON pysessionmanager_sessions (user_id, expires_at_ms);";

/// Version 1. Times are milliseconds since the Unix epoch (UTC), the engine's
/// clock. `user_id` was the id's UTF-8 bytes (version 3 makes it `text`).
/// `data` is `json`, not `jsonb`: `jsonb` would reorder keys, drop
/// duplicates and respell numbers, and the engine promises data back exactly
/// as written (the same on every store); `json` is still checked and
/// queryable (`data->>'role'`, or `data::jsonb` in an expression index).
pub const CREATE_V1: &str = "
    CREATE TABLE pysessionmanager_meta (name text PRIMARY KEY, value bigint NOT NULL);
    CREATE TABLE pysessionmanager_sessions (
        key bytea PRIMARY KEY,
        user_id bytea NOT NULL,
        data json NOT NULL,
        version bigint NOT NULL,
        created_at_ms bigint NOT NULL,
        last_active_ms bigint NOT NULL,
        expires_at_ms bigint NOT NULL,
        idle_timeout_ms bigint NOT NULL,
        sliding boolean NOT NULL,
        absolute_expires_at_ms bigint
    );
    CREATE INDEX pysessionmanager_sessions_by_user \
        ON pysessionmanager_sessions (user_id, created_at_ms);
    CREATE INDEX pysessionmanager_sessions_by_expiry ON pysessionmanager_sessions (expires_at_ms);
    COMMENT ON TABLE pysessionmanager_sessions IS
        'pysessionmanager sessions, keyed by the SHA-256 of each token; user_id is UTF-8 bytes; \
        *_ms columns are milliseconds since the Unix epoch (UTC)';
    INSERT INTO pysessionmanager_meta (name, value) VALUES ('schema_version', 1);
";

/// Serializes schema work of every process on the database (a transaction-scoped advisory lock).
const MIGRATION_LOCK: i64 = 0x7079_736d_5f6d_6967; // "pysm_mig"

/// Creates the tables if missing, or checks the version there and migrates
/// it forward, in one transaction: a failed step changes nothing, and two
/// processes starting at once migrate once.
pub(crate) async fn prepare(conn: &mut Conn, schema: &Schema) -> Result<()> {
    conn.begin(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"
    ))
    .await?;
    let result = migrate(conn, schema).await;
    let result = conn.rollback_on_error(result).await;
    result?;
    conn.commit().await
}

async fn migrate(conn: &mut Conn, schema: &Schema) -> Result<()> {
    let found = conn
        .query_one(
            "SELECT to_regclass('pysessionmanager_meta') IS NOT NULL, \
             to_regclass('pysessionmanager_sessions') IS NOT NULL, \
             current_schema(), current_setting('server_encoding')",
            &[],
        )
        .await?;
    let (meta, sessions): (bool, bool) = (found.get(0), found.get(1));
    let namespace: Option<String> = found.get(2);
    let namespace =
        namespace.unwrap_or_else(|| "(none: search_path names no existing schema)".into());
    let encoding: String = found.get(3);
    if encoding != "UTF8" {
        return Err(Error::Store(
            format!(
                "the database's encoding is {encoding}; pysessionmanager needs \
                 a UTF8 database (CREATE DATABASE … ENCODING 'UTF8')"
            )
            .into(),
        ));
    }
    if !meta {
        if sessions {
            return Err(Error::Store(
                format!(
                    "schema {namespace:?} has a table pysessionmanager_sessions without \
                     pysessionmanager_meta: it is not pysessionmanager's (or damaged); \
                     refusing to touch it"
                )
                .into(),
            ));
        }
        conn.batch(schema.create).await?;
    }
    let found: Option<i64> = conn
        .query_opt(
            "SELECT value FROM pysessionmanager_meta WHERE name = 'schema_version'",
            &[],
        )
        .await?
        .map(|row| row.get(0));
    let subject = format!("the pysessionmanager tables in schema {namespace:?}");
    let current = schema.current(found, &subject)?;
    for (from, step) in schema.steps_from(current) {
        conn.batch(step)
            .await
            .map_err(|e| Schema::step_failed(&subject, from, current, e))?;
    }
    let target = schema.version();
    if current < target {
        conn.execute(
            "UPDATE pysessionmanager_meta SET value = $1 WHERE name = 'schema_version'",
            &[&target],
        )
        .await?;
    }
    Ok(())
}

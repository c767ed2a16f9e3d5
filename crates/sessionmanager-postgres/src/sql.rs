//! Every statement the store sends. Times are milliseconds since the Unix
//! epoch, always the engine's `now` (a parameter), never the server's clock.
//! `data` is a `json` column: PostgreSQL checks it is JSON and keeps the text
//! exactly (key order, number spelling), as every other store does.

/// The columns every query that returns sessions selects, in [`crate::row::record`]'s order.
macro_rules! columns {
    () => {
        "key, user_id, data::text, version, created_at_ms, last_active_ms, \
         expires_at_ms, idle_timeout_ms, sliding, absolute_expires_at_ms"
    };
}

/// Inserts a session unless a live one holds the key; an expired one is replaced.
/// `$11` is now. Changes one row if it stored the session.
pub(crate) const INSERT: &str = "INSERT INTO pysessionmanager_sessions
        (key, user_id, data, version, created_at_ms, last_active_ms, expires_at_ms,
        idle_timeout_ms, sliding, absolute_expires_at_ms)
    VALUES ($1, $2, $3::text::json, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (key) DO UPDATE SET
        user_id = EXCLUDED.user_id, data = EXCLUDED.data, version = EXCLUDED.version,
        created_at_ms = EXCLUDED.created_at_ms, last_active_ms = EXCLUDED.last_active_ms,
        expires_at_ms = EXCLUDED.expires_at_ms, idle_timeout_ms = EXCLUDED.idle_timeout_ms,
        sliding = EXCLUDED.sliding, absolute_expires_at_ms = EXCLUDED.absolute_expires_at_ms
    WHERE pysessionmanager_sessions.expires_at_ms <= $11";

/// Inside a create's transaction, under the user's lock: drops the user's
/// expired rows, and returns whether a live row holds the key (`$3`) and how
/// many live sessions the user (`$1`) has at now (`$2`), then what each
/// dropped row was: one row per dropped row, or one with NULLs for none.
pub(crate) const USER_LIMIT_STATE: &str = "WITH trimmed AS (
        DELETE FROM pysessionmanager_sessions WHERE user_id = $1 AND expires_at_ms <= $2
        RETURNING key, user_id, created_at_ms, expires_at_ms
    ), state AS (
        SELECT
            EXISTS (SELECT 1 FROM pysessionmanager_sessions
                WHERE key = $3 AND expires_at_ms > $2) AS taken,
            (SELECT count(*) FROM pysessionmanager_sessions
                WHERE user_id = $1 AND expires_at_ms > $2) AS live
    )
    SELECT state.taken, state.live,
        trimmed.key, trimmed.user_id, trimmed.created_at_ms, trimmed.expires_at_ms
    FROM state LEFT JOIN trimmed ON true";

/// Ends the user's (`$1`) `$2` oldest sessions.
pub(crate) const EVICT_OLDEST: &str = "DELETE FROM pysessionmanager_sessions WHERE key IN (
        SELECT key FROM pysessionmanager_sessions WHERE user_id = $1
        ORDER BY created_at_ms, key LIMIT $2)";

/// The live session under `$1` at now (`$2`).
pub(crate) const LOAD: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM pysessionmanager_sessions WHERE key = $1 AND expires_at_ms > $2"
);

/// Whether a live session is under `$1` at now (`$2`).
pub(crate) const EXISTS: &str =
    "SELECT 1 FROM pysessionmanager_sessions WHERE key = $1 AND expires_at_ms > $2";

/// The version of the live session under `$1` at now (`$2`).
pub(crate) const VERSION: &str =
    "SELECT version FROM pysessionmanager_sessions WHERE key = $1 AND expires_at_ms > $2";

/// Compare-and-set: writes data and version if the live row (`$5`, now `$6`)
/// still has version `$7`; activity times only move forward.
pub(crate) const SAVE: &str =
    "UPDATE pysessionmanager_sessions SET data = $1::text::json, version = $2,
        last_active_ms = GREATEST(last_active_ms, $3), expires_at_ms = GREATEST(expires_at_ms, $4)
    WHERE key = $5 AND expires_at_ms > $6 AND version = $7";

/// Records activity on the live row `$3` (now `$4`), never moving times backwards.
pub(crate) const TOUCH: &str = "UPDATE pysessionmanager_sessions SET
        last_active_ms = GREATEST(last_active_ms, $1), expires_at_ms = GREATEST(expires_at_ms, $2)
    WHERE key = $3 AND expires_at_ms > $4";

/// Removes the row `$1`; returns what it was (its expiry tells whether it
/// was live).
pub(crate) const DELETE: &str = "DELETE FROM pysessionmanager_sessions WHERE key = $1
    RETURNING key, user_id, created_at_ms, expires_at_ms";

/// Moves the live record at `$2` (at now, `$3`) to `$1` unless a record,
/// live or expired, holds `$1`: whether one does, and how many rows moved.
pub(crate) const ROTATE: &str = "WITH target AS (
        SELECT EXISTS (SELECT 1 FROM pysessionmanager_sessions WHERE key = $1) AS taken
    ), moved AS (
        UPDATE pysessionmanager_sessions SET key = $1
        WHERE key = $2 AND expires_at_ms > $3 AND NOT (SELECT taken FROM target)
        RETURNING 1
    )
    SELECT (SELECT taken FROM target), (SELECT count(*) FROM moved)";

/// Up to `$3` sessions live at `$2` after key `$1` (empty: from the
/// start), in key order: a walk of the primary key.
pub(crate) const EXPORT_PAGE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM pysessionmanager_sessions WHERE key > $1 AND expires_at_ms > $2 \
     ORDER BY key LIMIT $3"
);

/// The user's (`$1`) live sessions at now (`$2`), oldest first.
pub(crate) const LIST_USER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM pysessionmanager_sessions WHERE user_id = $1 \
     AND expires_at_ms > $2 ORDER BY created_at_ms, key"
);

/// Removes the user's (`$1`) sessions but `$2` (may be NULL); returns how
/// many were live at now (`$3`), then what each expired one was: one row per
/// expired one, or one with NULLs for none.
pub(crate) const DELETE_USER: &str = "WITH ended AS (
        DELETE FROM pysessionmanager_sessions WHERE user_id = $1 AND key IS DISTINCT FROM $2
        RETURNING key, user_id, created_at_ms, expires_at_ms
    ), live AS (
        SELECT count(*) AS n FROM ended WHERE expires_at_ms > $3
    )
    SELECT live.n, expired.key, expired.user_id, expired.created_at_ms, expired.expires_at_ms
    FROM live LEFT JOIN ended AS expired ON expired.expires_at_ms <= $3";

/// Removes up to `$2` rows expired at now (`$1`), skipping rows another call
/// is writing, so sweeping never waits on (or blocks) the application;
/// returns what each was.
pub(crate) const SWEEP: &str = "DELETE FROM pysessionmanager_sessions WHERE key IN (
        SELECT key FROM pysessionmanager_sessions WHERE expires_at_ms <= $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING key, user_id, created_at_ms, expires_at_ms";

/// How many sessions are live at now (`$1`).
pub(crate) const COUNT: &str =
    "SELECT count(*) FROM pysessionmanager_sessions WHERE expires_at_ms > $1";

/// The rate-limit state of key `$1`, passed or not, and the server's clock
/// in microseconds (`clock_timestamp()`: the time of this statement, not of
/// its transaction).
pub(crate) const RATE_LOAD: &str = "SELECT \
    (SELECT tat_us FROM pysessionmanager_rate_limits WHERE key = $1), \
    (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// Stores state `$2` (mattering until `$3`) for key `$1` where there is none
/// that still matters at now (`$4`).
pub(crate) const RATE_INSERT: &str = "INSERT INTO pysessionmanager_rate_limits
        (key, tat_us, expires_at_ms) VALUES ($1, $2, $3)
    ON CONFLICT (key) DO UPDATE SET tat_us = EXCLUDED.tat_us, expires_at_ms = EXCLUDED.expires_at_ms
    WHERE pysessionmanager_rate_limits.expires_at_ms <= $4";

/// Replaces key `$1`'s state with `$2` (mattering until `$3`) if it is still
/// `$4` and matters at now (`$5`).
pub(crate) const RATE_UPDATE: &str = "UPDATE pysessionmanager_rate_limits
    SET tat_us = $2, expires_at_ms = $3
    WHERE key = $1 AND tat_us = $4 AND expires_at_ms > $5";

/// Removes up to `$2` rate-limit states that stopped mattering at now
/// (`$1`), skipping rows a hit is writing.
pub(crate) const RATE_SWEEP: &str = "DELETE FROM pysessionmanager_rate_limits WHERE key IN (
        SELECT key FROM pysessionmanager_rate_limits WHERE expires_at_ms <= $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)";

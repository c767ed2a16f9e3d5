//! Every statement the store runs. Tables and columns are named as in every
//! SQL store of this project: `pysessionmanager_<table>`, and times as
//! `<name>_ms`, milliseconds since the Unix epoch, always the engine's `now`
//! (a parameter), never SQLite's clock.

/// The columns every query that returns sessions selects, in
/// [`crate::row::record`]'s order.
macro_rules! columns {
    () => {
        "key, user_id, data, version, created_at_ms, last_active_ms, \
         expires_at_ms, idle_timeout_ms, sliding, absolute_expires_at_ms"
    };
}

/// Inserts a session unless a live one holds the key; an expired one is
/// replaced. `?11` is now. Changes one row if it stored the session.
pub(crate) const INSERT: &str = concat!(
    "INSERT INTO pysessionmanager_sessions (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT (key) DO UPDATE SET (",
    columns!(),
    ") = (excluded.key, excluded.user_id, excluded.data, excluded.version,
        excluded.created_at_ms, excluded.last_active_ms, excluded.expires_at_ms,
        excluded.idle_timeout_ms, excluded.sliding, excluded.absolute_expires_at_ms)
    WHERE pysessionmanager_sessions.expires_at_ms <= ?11"
);

/// The live session under `?1` at now (`?2`).
pub(crate) const LOAD: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM pysessionmanager_sessions WHERE key = ?1 AND expires_at_ms > ?2"
);

/// Up to `?3` sessions live at `?2` after key `?1` (an empty blob: from
/// the start), in key order: a walk of the primary key.
pub(crate) const EXPORT_PAGE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM pysessionmanager_sessions WHERE key > ?1 AND expires_at_ms > ?2
    ORDER BY key LIMIT ?3"
);

/// Whether a live session is under `?1` at now (`?2`).
pub(crate) const LIVE_KEY: &str =
    "SELECT 1 FROM pysessionmanager_sessions WHERE key = ?1 AND expires_at_ms > ?2";

/// Whether any session, live or not, is under `?1`.
pub(crate) const ANY_KEY: &str = "SELECT 1 FROM pysessionmanager_sessions WHERE key = ?1";

/// Compare-and-set: data `?1` and version `?2` where the live (at `?6`)
/// session `?5` is still at version `?7`; activity `?3` and expiry `?4`
/// only ever move forward.
pub(crate) const SAVE: &str = "UPDATE pysessionmanager_sessions SET data = ?1, version = ?2,
        last_active_ms = max(last_active_ms, ?3), expires_at_ms = max(expires_at_ms, ?4)
    WHERE key = ?5 AND expires_at_ms > ?6 AND version = ?7";

/// The version of the live (at `?2`) session `?1`.
pub(crate) const VERSION: &str =
    "SELECT version FROM pysessionmanager_sessions WHERE key = ?1 AND expires_at_ms > ?2";

/// Moves activity (`?1`) and expiry (`?2`) of the live (at `?4`) session
/// `?3` forward, never back.
pub(crate) const TOUCH: &str = "UPDATE pysessionmanager_sessions
    SET last_active_ms = max(last_active_ms, ?1), expires_at_ms = max(expires_at_ms, ?2)
    WHERE key = ?3 AND expires_at_ms > ?4";

/// Removes session `?1`; returns what it was (its expiry tells whether it
/// was live).
pub(crate) const DELETE: &str = "DELETE FROM pysessionmanager_sessions WHERE key = ?1
    RETURNING key, user_id, created_at_ms, expires_at_ms";

/// Moves the live (at `?3`) session `?2` to key `?1`.
pub(crate) const ROTATE: &str =
    "UPDATE pysessionmanager_sessions SET key = ?1 WHERE key = ?2 AND expires_at_ms > ?3";

/// The live (at `?2`) sessions of user `?1`, oldest first.
pub(crate) const LIST_USER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM pysessionmanager_sessions WHERE user_id = ?1 AND expires_at_ms > ?2
    ORDER BY created_at_ms, key"
);

/// Removes up to `?3` sessions of user `?1` but `?2` (may be NULL);
/// returns what each was (its expiry tells whether it was live).
pub(crate) const DELETE_USER_BATCH: &str = "DELETE FROM pysessionmanager_sessions
    WHERE key IN (SELECT key FROM pysessionmanager_sessions
        WHERE user_id = ?1 AND key IS NOT ?2 LIMIT ?3)
    RETURNING key, user_id, created_at_ms, expires_at_ms";

/// Removes user `?1`'s sessions expired at now (`?2`); returns what each was.
pub(crate) const TRIM_USER: &str = "DELETE FROM pysessionmanager_sessions
    WHERE user_id = ?1 AND expires_at_ms <= ?2
    RETURNING key, user_id, created_at_ms, expires_at_ms";

/// How many sessions user `?1` has (after [`TRIM_USER`]: live ones).
pub(crate) const COUNT_USER: &str =
    "SELECT count(*) FROM pysessionmanager_sessions WHERE user_id = ?1";

/// Ends user `?1`'s `?2` oldest sessions.
pub(crate) const EVICT_OLDEST: &str = "DELETE FROM pysessionmanager_sessions WHERE key IN (
    SELECT key FROM pysessionmanager_sessions WHERE user_id = ?1
    ORDER BY created_at_ms, key LIMIT ?2)";

/// Removes up to `?2` sessions expired at now (`?1`); returns what each was.
pub(crate) const SWEEP: &str = "DELETE FROM pysessionmanager_sessions WHERE key IN (
    SELECT key FROM pysessionmanager_sessions WHERE expires_at_ms <= ?1 LIMIT ?2)
    RETURNING key, user_id, created_at_ms, expires_at_ms";

/// How many sessions are live at now (`?1`).
pub(crate) const COUNT: &str =
    "SELECT count(*) FROM pysessionmanager_sessions WHERE expires_at_ms > ?1";

/// The rate-limit state of key `?1`, passed or not.
pub(crate) const RATE_LOAD: &str = "SELECT tat_us FROM pysessionmanager_rate_limits WHERE key = ?1";

/// Stores state `?2` (mattering until `?3`) for key `?1` where there is none
/// that still matters at now (`?4`).
pub(crate) const RATE_INSERT: &str = "INSERT INTO pysessionmanager_rate_limits
    (key, tat_us, expires_at_ms) VALUES (?1, ?2, ?3)
    ON CONFLICT (key) DO UPDATE SET tat_us = excluded.tat_us, expires_at_ms = excluded.expires_at_ms
    WHERE pysessionmanager_rate_limits.expires_at_ms <= ?4";

/// Replaces key `?1`'s state with `?2` (mattering until `?3`) if it is still
/// `?4` and matters at now (`?5`).
pub(crate) const RATE_UPDATE: &str = "UPDATE pysessionmanager_rate_limits
    SET tat_us = ?2, expires_at_ms = ?3
    WHERE key = ?1 AND tat_us = ?4 AND expires_at_ms > ?5";

/// Removes up to `?2` rate-limit states that stopped mattering at now (`?1`).
pub(crate) const RATE_SWEEP: &str = "DELETE FROM pysessionmanager_rate_limits WHERE key IN (
    SELECT key FROM pysessionmanager_rate_limits WHERE expires_at_ms <= ?1 LIMIT ?2)";

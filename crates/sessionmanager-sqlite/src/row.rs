//! Reading session rows.

use rusqlite::Row;
use sessionmanager_core::{ExpiredSession, SessionData, SessionKey, SessionRecord, Timestamp};

/// A row selected with the store's session columns (see `sql.rs`) as a key and record.
pub(crate) fn record(row: &Row<'_>) -> rusqlite::Result<(SessionKey, SessionRecord)> {
    let key: [u8; 32] = row.get(0)?;
    let user_id: String = row.get(1)?;
    let data: String = row.get(2)?;
    let data = SessionData::from_stored_json(data).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok((
        SessionKey::from_bytes(key),
        SessionRecord {
            user_id: user_id.into(),
            data,
            version: row.get::<_, i64>(3)? as u64,
            created_at: Timestamp(row.get(4)?),
            last_active: Timestamp(row.get(5)?),
            expires_at: Timestamp(row.get(6)?),
            idle_timeout_ms: row.get(7)?,
            sliding: row.get(8)?,
            absolute_expires_at: row.get::<_, Option<i64>>(9)?.map(Timestamp),
        },
    ))
}

/// A row a delete returned as `key, user_id, created_at_ms, expires_at_ms`
/// (see `sql.rs`): the session it removed, expired or not (its
/// `expires_at` tells).
pub(crate) fn removed(row: &Row<'_>) -> rusqlite::Result<ExpiredSession> {
    Ok(ExpiredSession {
        key: SessionKey::from_bytes(row.get(0)?),
        user_id: row.get::<_, String>(1)?.into(),
        created_at: Timestamp(row.get(2)?),
        expires_at: Timestamp(row.get(3)?),
    })
}

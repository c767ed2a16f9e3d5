//! Reading session rows.

use sessionmanager_core::{
    Error, ExpiredSession, Result, SessionData, SessionKey, SessionRecord, Timestamp,
};
use tokio_postgres::Row;

/// A row selected with the store's session columns as a key and record.
pub(crate) fn record(row: &Row) -> Result<(SessionKey, SessionRecord)> {
    read(row).map_err(|e| {
        Error::Store(format!("a stored session row is unreadable (damaged table?): {e}").into())
    })
}

fn read(
    row: &Row,
) -> Result<(SessionKey, SessionRecord), Box<dyn std::error::Error + Send + Sync>> {
    let key: &[u8] = row.try_get(0)?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| format!("a key of {} bytes, not 32", key.len()))?;
    let user_id: &str = row.try_get(1)?;
    let data: String = row.try_get(2)?;
    Ok((
        SessionKey::from_bytes(key),
        SessionRecord {
            user_id: user_id.into(),
            data: SessionData::from_stored_json(data)?,
            version: row.try_get::<_, i64>(3)? as u64,
            created_at: Timestamp(row.try_get(4)?),
            last_active: Timestamp(row.try_get(5)?),
            expires_at: Timestamp(row.try_get(6)?),
            idle_timeout_ms: row.try_get(7)?,
            sliding: row.try_get(8)?,
            absolute_expires_at: row.try_get::<_, Option<i64>>(9)?.map(Timestamp),
        },
    ))
}

/// The session a delete removed, from the columns `key, user_id,
/// created_at_ms, expires_at_ms` starting at `first` (see `sql.rs`), expired
/// or not (its `expires_at` tells). `None` where they are NULL (a statement's
/// row that names no removed session) or the key is not one this store
/// wrote (another length).
pub(crate) fn removed(row: &Row, first: usize) -> Option<ExpiredSession> {
    let key: [u8; 32] = row.get::<_, Option<&[u8]>>(first)?.try_into().ok()?;
    Some(ExpiredSession {
        key: SessionKey::from_bytes(key),
        user_id: row.get::<_, String>(first + 1).into(),
        created_at: Timestamp(row.get(first + 2)),
        expires_at: Timestamp(row.get(first + 3)),
    })
}

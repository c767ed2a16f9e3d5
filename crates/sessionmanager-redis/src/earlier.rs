//! Moving the sessions a store of an earlier layout left (see `keys`) into
//! the current one, when a store opens a server that holds some: each
//! session keeps its key, user, data, version and times, so nobody is
//! logged out by the upgrade.

use std::sync::Arc;

use crate::connection::Connection;
use sessionmanager_core::Timestamp;

use crate::error::Failure;
use crate::import::{Importing, import_batch};
use crate::keys;
use crate::store::{Shared, decode_sessions};

/// Sessions moved per round: a few milliseconds of the server's time.
const BATCH: u32 = 200;

/// Moves one batch, answering how many entries of the earlier expiry
/// index it read (0 once none is left).
pub(crate) async fn move_batch(
    shared: &Arc<Shared>,
    conn: &Connection,
    now: Timestamp,
) -> Result<i64, Failure> {
    let index = shared.keys.earlier_expiry();
    let mut conn = conn.clone();
    let mut flat: Vec<Option<Vec<u8>>> = shared
        .scripts
        .earlier_read
        .prepare_invoke()
        .key(&index)
        .arg(shared.keys.prefix())
        .arg(now.millis())
        .arg(BATCH)
        .invoke_async(&mut conn)
        .await?;
    if flat.is_empty() {
        return Err(Failure::Corrupt(
            "an empty answer to reading old sessions".into(),
        ));
    }
    let read = flat
        .remove(0)
        .and_then(|n| std::str::from_utf8(&n).ok()?.parse::<i64>().ok())
        .unwrap_or_default();
    let sessions = decode_sessions(flat, now)?;
    if sessions.is_empty() {
        return Ok(read);
    }
    let items: Vec<Importing> = sessions
        .iter()
        .map(|(key, record)| Importing::new(&shared.keys, key, record))
        .collect();
    import_batch(shared, &conn, &items, now).await?;
    let mut drop = shared.scripts.earlier_drop.prepare_invoke();
    drop.key(&index).arg(shared.keys.prefix()).arg(now.millis());
    for (key, _) in &sessions {
        drop.arg(keys::member(key));
    }
    drop.invoke_async::<i64>(&mut conn).await?;
    Ok(read)
}

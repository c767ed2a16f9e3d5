//! Writing back what a request changed, by the rules every integration
//! shares (the Python side's `RequestState.save`).

use serde_json::Value;
use sessionmanager_core::{Error, SessionData, SessionToken};

use crate::anonymous::anonymous_user_id;
use crate::backend::Backend;
use crate::error::SessionError;
use crate::state::Data;

/// How many times a save re-reads and re-applies its changes when other
/// requests keep writing the same session in between.
pub(crate) const MAX_SAVE_ATTEMPTS: usize = 16;

/// What the response phase takes out of the request's state.
pub(crate) struct Pending {
    pub(crate) sid: Option<SessionToken>,
    pub(crate) version: u64,
    pub(crate) stored: Data,
    pub(crate) data: Data,
}

/// Writes what the request changed and returns the session the cookie should
/// carry, or `None` when the visitor has no session (a cookie they sent
/// should then be deleted). A failed request writes nothing.
pub(crate) async fn save(
    backend: &dyn Backend,
    pending: Pending,
    failed: bool,
) -> Result<Option<SessionToken>, SessionError> {
    let Pending {
        sid,
        version,
        stored,
        data,
    } = pending;
    if failed {
        return Ok(sid);
    }
    let Some(sid) = sid else {
        if data.is_empty() {
            return Ok(None); // an empty visitor session is never stored
        }
        let data = SessionData::from_map(&data, &backend.limits())?;
        let token = backend.create(&anonymous_user_id()?, data).await?;
        return Ok(Some(token));
    };
    if data == stored {
        return Ok(Some(sid));
    }
    if data.is_empty() {
        backend.end(sid.as_str()).await?; // cleared: the visitor logged out or reset
        return Ok(None);
    }
    write_changes(backend, sid, version, stored, data).await
}

/// Compare-and-set the new data; if another request wrote meanwhile,
/// re-apply only this request's changes on top of what it wrote.
async fn write_changes(
    backend: &dyn Backend,
    sid: SessionToken,
    mut version: u64,
    stored: Data,
    data: Data,
) -> Result<Option<SessionToken>, SessionError> {
    let changed: Vec<(&String, &Value)> = data
        .iter()
        .filter(|&(key, value)| stored.get(key) != Some(value))
        .collect();
    let removed: Vec<&String> = stored.keys().filter(|k| !data.contains_key(*k)).collect();
    let limits = backend.limits();
    let mut target = SessionData::from_map(&data, &limits)?;
    let mut last_conflict = None;
    for _ in 0..MAX_SAVE_ATTEMPTS {
        match backend.set_data(sid.as_str(), target, version).await {
            Ok(_) => return Ok(Some(sid)),
            Err(conflict @ Error::Conflict { .. }) => last_conflict = Some(conflict),
            // Ended meanwhile (say, "log out everywhere"): never bring it back.
            Err(Error::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let Some(fresh) = backend.peek(sid.as_str()).await? else {
            return Ok(None);
        };
        version = fresh.record.version;
        let mut merged = fresh.record.data.to_map();
        for key in &removed {
            merged.shift_remove(*key);
        }
        for (key, value) in &changed {
            merged.insert((*key).clone(), (*value).clone());
        }
        target = SessionData::from_map(&merged, &limits)?;
    }
    Err(last_conflict
        .expect("the loop only runs again after a conflict")
        .into())
}

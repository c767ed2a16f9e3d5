//! Writing back what a request changed, by the rules every integration
//! shares (the Python side's `RequestState.save`); the compare-and-set and
//! its retries are the engine's [`SessionManager::apply_changes`].
//!
//! [`SessionManager::apply_changes`]: sessionmanager_core::SessionManager::apply_changes

use sessionmanager_core::{ApplyOutcome, Basis, SessionData, SessionToken};

use crate::anonymous::anonymous_user_id;
use crate::backend::Backend;
use crate::error::SessionError;
use crate::state::Data;

/// What the response phase takes out of the request's state.
pub(crate) struct Pending {
    pub(crate) sid: Option<SessionToken>,
    pub(crate) basis: Basis,
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
        basis,
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
    // The keys this request set or removed: none means nothing changed; they
    // are all that is re-applied when another request wrote meanwhile.
    let keys: Vec<&str> = data
        .iter()
        .filter(|&(key, value)| stored.get(key) != Some(value))
        .map(|(key, _)| key.as_str())
        .chain(
            stored
                .keys()
                .filter(|key| !data.contains_key(*key))
                .map(String::as_str),
        )
        .collect();
    if keys.is_empty() {
        return Ok(Some(sid));
    }
    if data.is_empty() {
        backend.end(sid.as_str()).await?; // cleared: the visitor logged out or reset
        return Ok(None);
    }
    let target = SessionData::from_map(&data, &backend.limits())?;
    // What the changed keys held when this request read them: a concurrent
    // request that changed one of them too makes the save a conflict.
    let base: Data = keys
        .iter()
        .filter_map(|&key| Some((key.to_owned(), stored.get(key)?.clone())))
        .collect();
    let base = SessionData::from_map(&base, &backend.limits())?;
    match backend
        .apply_changes(sid.as_str(), basis, target, &keys, &base)
        .await?
    {
        ApplyOutcome::Saved(_) => Ok(Some(sid)),
        // Ended meanwhile (say, "log out everywhere"): never bring it back.
        ApplyOutcome::Gone => Ok(None),
    }
}

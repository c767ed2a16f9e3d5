//! Writing back what a request changed, by the rule every integration
//! shares ([`save_step`]); the compare-and-set and its retries are the
//! engine's [`SessionManager::apply_changes`].
//!
//! [`SessionManager::apply_changes`]: sessionmanager_core::SessionManager::apply_changes

use sessionmanager_core::{ApplyOutcome, Basis, SaveStep, SessionData, SessionToken, save_step};

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
    let Ok(step) = save_step(failed, sid.is_some(), &stored, &data);
    let (keys, sid) = match (step, sid) {
        (SaveStep::Apply(keys), Some(sid)) => (keys, sid),
        (SaveStep::Create, _) => {
            let data = SessionData::from_map(&data, &backend.limits())?;
            let token = backend
                .create(&anonymous_user_id()?, data, Default::default())
                .await?;
            return Ok(Some(token));
        }
        (SaveStep::End, Some(sid)) => {
            backend.end(sid.as_str()).await?;
            return Ok(None);
        }
        // Nothing to write (`End` and `Apply` come only with a stored session).
        (_, sid) => return Ok(sid),
    };
    let target = SessionData::from_map(&data, &backend.limits())?;
    // What the changed keys held when this request read them: a concurrent
    // request that changed one of them too makes the save a conflict.
    let base: Data = keys
        .iter()
        .filter_map(|key| Some((key.clone(), stored.get(key)?.clone())))
        .collect();
    let base = SessionData::from_map(&base, &backend.limits())?;
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    match backend
        .apply_changes(sid.as_str(), basis, target, &keys, &base)
        .await?
    {
        ApplyOutcome::Saved(_) => Ok(Some(sid)),
        // Ended meanwhile (say, "log out everywhere"): never bring it back.
        ApplyOutcome::Gone => Ok(None),
    }
}

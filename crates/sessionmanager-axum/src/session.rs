//! [`Session`]: the handler's view of the request's session.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sessionmanager_core::{Basis, CreateOptions, Error, SessionData, SessionToken};

use crate::anonymous::{ANONYMOUS_PREFIX, is_anonymous};
use crate::error::SessionError;
use crate::state::{Phase, Shared, State, chosen_lifetime};

/// The request's session: a JSON object of values, kept server-side, found
/// by the cookie. Extract it in a handler (`session: Session`) behind a
/// [`SessionLayer`](crate::SessionLayer).
///
/// Reads and changes are in memory (an insert also serializes the whole
/// data once, to check it against the manager's limits at once); what the
/// request changed is written when the response goes out, by the rules in
/// the [crate documentation](crate). Clones share one state, so a clone moved
/// into another task of the same request sees and makes the same changes;
/// changes made after the response has gone out are not saved.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Reads the stored session the cookie names, once per request (clones
    /// share the result). A forged, ended or expired cookie is no session.
    pub(crate) async fn ensure_loaded(&self) -> Result<(), SessionError> {
        let token = {
            let state = self.shared.lock();
            if state.phase != Phase::Unloaded {
                return Ok(());
            }
            state.incoming.token.clone()
        };
        let found = match &token {
            Some(token) => self.shared.backend.load(token.as_str()).await?,
            None => None,
        };
        let mut state = self.shared.lock();
        // Another clone may have loaded meanwhile; the first to finish wins.
        if state.phase == Phase::Unloaded {
            let default = self.shared.backend.default_expiry();
            state.adopt_loaded(token, found, &default);
        }
        Ok(())
    }

    /// The value at `key`, deserialized into `T`; `None` if absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let state = self.shared.lock();
        match state.data.get(key) {
            Some(value) => Ok(Some(T::deserialize(value)?)),
            None => Ok(None),
        }
    }

    /// The JSON value at `key`, if any.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.shared.lock().data.get(key).cloned()
    }

    /// Sets `key` to `value` serialized as JSON. Fails, changing nothing, if
    /// `value` does not serialize or the data would break the manager's limits
    /// (size, nesting), so the handler learns it here rather than the response
    /// failing later.
    pub fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        self.insert_value(key, serde_json::to_value(value)?)
            .map(drop)
    }

    /// Sets `key` to the JSON `value` and returns the value it replaces.
    /// Fails, changing nothing, if the data would break the manager's limits.
    pub fn insert_value(&self, key: &str, value: Value) -> Result<Option<Value>, SessionError> {
        let mut state = self.shared.lock();
        open(&state)?;
        let previous = state.data.insert(key.to_owned(), value);
        if let Err(e) = SessionData::from_map(&state.data, &self.shared.backend.limits()) {
            match previous {
                Some(previous) => state.data.insert(key.to_owned(), previous),
                None => state.data.shift_remove(key),
            };
            return Err(e.into());
        }
        Ok(previous)
    }

    /// Removes `key` and returns its value deserialized into `T`. The key is
    /// removed even if the value does not deserialize.
    pub fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match self.remove_value(key) {
            Some(value) => Ok(Some(T::deserialize(value)?)),
            None => Ok(None),
        }
    }

    /// Removes `key` and returns its JSON value. After the response has gone
    /// out this changes nothing stored.
    pub fn remove_value(&self, key: &str) -> Option<Value> {
        self.shared.lock().data.shift_remove(key)
    }

    /// Whether the session holds no data.
    pub fn is_empty(&self) -> bool {
        self.shared.lock().data.is_empty()
    }

    /// Removes all data. A stored session left empty is ended when the
    /// response goes out and its cookie deleted: for a logged-in user that is
    /// a logout (the same as [`Session::logout`], only without the store call now).
    /// After the response has gone out this changes nothing stored.
    pub fn clear(&self) {
        self.shared.lock().data.clear();
    }

    /// The session id (the cookie's value), or `None` while nothing is
    /// stored: a visitor's session is created only when the response goes
    /// out with data in it.
    pub fn id(&self) -> Option<SessionToken> {
        self.shared.lock().sid.clone()
    }

    /// The logged-in user, or `None` for a visitor.
    pub fn user_id(&self) -> Option<String> {
        let state = self.shared.lock();
        state
            .user_id
            .as_deref()
            .filter(|user| !is_anonymous(user))
            .map(str::to_owned)
    }

    /// Logs `user_id` in: the session's data moves to a fresh session owned
    /// by the user and the old session ends, so an id planted before login
    /// (session fixation) is worthless after it; the response sets the new
    /// cookie. Per-user limits of the manager apply, as to any new session.
    ///
    /// A visitor's data comes along, and so does the data of the same user
    /// logging in again; a login as another user than the session's starts
    /// from empty data, so one user never sees what another left behind.
    ///
    /// Fails for an empty user id or one starting with
    /// [`ANONYMOUS_PREFIX`], which is reserved for visitors.
    pub async fn login(&self, user_id: &str) -> Result<(), SessionError> {
        self.login_with(user_id, CreateOptions::default()).await
    }

    /// [`login`](Self::login), with a lifetime of the new session's own
    /// ("remember me" for 30 days, or 15 minutes on a shared computer):
    /// `options` set its idle and absolute timeouts, and its cookie lives as
    /// long (`Max-Age`), at login and at later responses.
    pub async fn login_with(
        &self,
        user_id: &str,
        options: CreateOptions,
    ) -> Result<(), SessionError> {
        if is_anonymous(user_id) {
            return Err(Error::InvalidArgument(format!(
                "user ids starting with {ANONYMOUS_PREFIX:?} are reserved for visitors"
            ))
            .into());
        }
        let backend = &self.shared.backend;
        let (data, old, generation, switching) = {
            let state = self.shared.lock();
            open(&state)?;
            // Another user's data never passes to this one; a visitor's does.
            let switching = state
                .user_id
                .as_deref()
                .is_some_and(|owner| !is_anonymous(owner) && owner != user_id);
            let data = if switching {
                Default::default()
            } else {
                state.data.clone()
            };
            (data, state.sid.clone(), state.generation, switching)
        };
        let token = backend
            .create(
                user_id,
                SessionData::from_map(&data, &backend.limits())?,
                options,
            )
            .await?;
        let clash = {
            let mut state = self.shared.lock();
            let clash = open(&state)
                .err()
                .or_else(|| (state.generation != generation).then_some(SessionError::Interleaved));
            if clash.is_none() {
                // A new session is at version 1. The handler's data stays as it
                // is: changes another task made while this awaited are saved later.
                state.sid = Some(token.clone());
                state.user_id = Some(Arc::from(user_id));
                state.basis = Basis::Version(1);
                if switching {
                    state.data = data.clone();
                }
                state.stored = data;
                state.generation += 1;
                state.own_lifetime = chosen_lifetime(&options);
            }
            clash
        };
        if let Some(clash) = clash {
            backend.end(token.as_str()).await?;
            return Err(clash);
        }
        if let Some(old) = old {
            backend.end(old.as_str()).await?;
        }
        Ok(())
    }

    /// Ends the session now and empties the data; the response deletes the
    /// cookie. Data set after this starts a new visitor session.
    pub async fn logout(&self) -> Result<(), SessionError> {
        let sid = {
            let mut state = self.shared.lock();
            open(&state)?;
            let sid = state.sid.take();
            state.forget();
            state.data.clear();
            state.generation += 1;
            sid
        };
        if let Some(sid) = sid {
            self.shared.backend.end(sid.as_str()).await?;
        }
        Ok(())
    }
}

/// Changes are refused once the response is being finished: they would be lost.
fn open(state: &State) -> Result<(), SessionError> {
    match state.phase {
        Phase::Closed => Err(SessionError::Finished),
        Phase::Open | Phase::Unloaded => Ok(()),
    }
}

/// Shows whether a session is stored and whose, never the id or the data.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Session")
            .field("stored", &state.sid.is_some())
            .field("user_id", &state.user_id)
            .field("keys", &state.data.len())
            .finish_non_exhaustive()
    }
}

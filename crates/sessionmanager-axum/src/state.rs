//! One request's tie between the handler's view of the session and the
//! store: the Rust twin of the Python integrations' `RequestState`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use sessionmanager_core::{
    Basis, CreateOptions, ExpiryPolicy, Session as Stored, SessionRecord, SessionToken,
};

use crate::backend::Backend;
use crate::cookie::Incoming;

/// Session data as the handler sees it: a JSON object.
pub(crate) type Data = Map<String, Value>;

/// Where a request's session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No handler asked for the session: the store is not read, and the
    /// response is left alone.
    Unloaded,
    /// Loaded; the handler may read and change it.
    Open,
    /// The response is being finished; later changes are not saved.
    Closed,
}

/// The mutable part of a request's session. No `Debug`: it holds the
/// token and the user's data, which do not belong in logs.
pub(crate) struct State {
    pub(crate) incoming: Incoming,
    pub(crate) phase: Phase,
    /// The stored session this request is tied to, if any.
    pub(crate) sid: Option<SessionToken>,
    pub(crate) user_id: Option<Arc<str>>,
    /// What this request last read or wrote of the stored session: the base
    /// its changes are written over.
    pub(crate) basis: Basis,
    /// The data as stored when this request last read or wrote it.
    pub(crate) stored: Data,
    /// The data as the handler has it now.
    pub(crate) data: Data,
    /// Bumped by every login and logout, so one that awaited the store can
    /// tell whether another task of the same request logged in or out meanwhile.
    pub(crate) generation: u64,
    /// How long the cookie lives when the session chose its own lifetime
    /// (at a login with options); `None`: the layer's `max_age`.
    pub(crate) own_lifetime: Option<Duration>,
}

impl State {
    fn new(incoming: Incoming) -> Self {
        Self {
            incoming,
            phase: Phase::Unloaded,
            sid: None,
            user_id: None,
            basis: Basis::Version(0),
            stored: Data::new(),
            data: Data::new(),
            generation: 0,
            own_lifetime: None,
        }
    }

    /// Adopts what a load found: the session, or nothing.
    pub(crate) fn adopt_loaded(
        &mut self,
        token: Option<SessionToken>,
        found: Option<Stored>,
        default: &ExpiryPolicy,
    ) {
        if let (Some(token), Some(found)) = (token, found) {
            let data = found.record.data.to_map();
            self.own_lifetime = own_lifetime(&found.record, default);
            self.sid = Some(token);
            self.user_id = Some(found.record.user_id.clone());
            self.basis = Basis::Read(found);
            self.stored = data.clone();
            self.data = data;
        }
        self.phase = Phase::Open;
    }

    /// Drops the tie to the stored session, which is gone; the data stays
    /// with the handler (the caller clears it where that is meant).
    pub(crate) fn forget(&mut self) {
        self.sid = None;
        self.user_id = None;
        self.basis = Basis::Version(0);
        self.stored = Data::new();
        self.own_lifetime = None;
    }
}

/// The lifetime `record` chose at its creation, if not `default`'s: its
/// idle timeout, or less when its absolute deadline comes sooner.
fn own_lifetime(record: &SessionRecord, default: &ExpiryPolicy) -> Option<Duration> {
    let chose = record.idle_timeout_ms != default.idle_timeout_ms
        || (record.absolute_expires_at.is_some() && default.absolute_timeout_ms.is_none());
    if !chose {
        return None;
    }
    let until_deadline = record
        .absolute_expires_at
        .map(|deadline| deadline.millis() - record.last_active.millis());
    let ms = until_deadline.map_or(record.idle_timeout_ms, |left| {
        left.min(record.idle_timeout_ms)
    });
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// The lifetime a login's `options` choose, if any: the shorter of its
/// idle and absolute timeouts.
pub(crate) fn chosen_lifetime(options: &CreateOptions) -> Option<Duration> {
    let chosen = [options.idle_timeout_ms, options.absolute_timeout_ms];
    let ms = chosen.into_iter().flatten().min()?;
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// What the layer puts in the request's extensions: private, so only the
/// extractor (which loads the session first) can turn it into a [`Session`];
/// an `Extension<Session>` taken straight from the request would be one whose
/// changes are never saved.
///
/// [`Session`]: crate::Session
#[derive(Clone)]
pub(crate) struct Slot(pub(crate) Arc<Shared>);

/// The request's session state, shared by every clone of the extractor.
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn Backend>,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(backend: Arc<dyn Backend>, incoming: Incoming) -> Self {
        Self {
            backend,
            state: Mutex::new(State::new(incoming)),
        }
    }

    /// The state. Never held across an `.await`; every change under it is a
    /// few map operations, so the state is consistent even if a holder panicked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

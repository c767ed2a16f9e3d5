//! The manager behind a type-erased, object-safe face, so that [`Session`](crate::Session)
//! and the layer's service need no store type parameter. One boxed future per
//! store call; a request makes at most a handful.

use std::future::Future;
use std::pin::Pin;

use sessionmanager_core::{
    ApplyOutcome, Basis, CreateOptions, DataLimits, Error, ExpiryPolicy, Result, Session as Stored,
    SessionData, SessionManager, SessionStore, SessionToken,
};

/// A boxed `Send` future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the web layer needs from a [`SessionManager`].
pub(crate) trait Backend: Send + Sync + 'static {
    /// The live session `token` names, counted as activity; `None` for an
    /// unknown, ended, expired or malformed token.
    fn load<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Stored>>>;
    /// Starts a session, with the manager's default expiry where `options`
    /// leave it.
    fn create<'a>(
        &'a self,
        user_id: &'a str,
        data: SessionData,
        options: CreateOptions,
    ) -> BoxFuture<'a, Result<SessionToken>>;
    /// Writes back a request's changes: [`SessionManager::apply_changes`].
    fn apply_changes<'a>(
        &'a self,
        token: &'a str,
        basis: Basis,
        data: SessionData,
        keys: &'a [&'a str],
        base: &'a SessionData,
    ) -> BoxFuture<'a, Result<ApplyOutcome>>;
    /// Ends the session; ending an unknown one does nothing.
    fn end<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The manager's bounds on session data.
    fn limits(&self) -> DataLimits;
    /// The expiry sessions get unless their creation chose another.
    fn default_expiry(&self) -> ExpiryPolicy;
}

fn found(result: Result<Stored>) -> Result<Option<Stored>> {
    match result {
        Ok(session) => Ok(Some(session)),
        Err(Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

impl<S: SessionStore> Backend for SessionManager<S> {
    fn load<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Stored>>> {
        Box::pin(async move { found(self.get(token).await) })
    }

    fn create<'a>(
        &'a self,
        user_id: &'a str,
        data: SessionData,
        options: CreateOptions,
    ) -> BoxFuture<'a, Result<SessionToken>> {
        Box::pin(SessionManager::create(self, user_id, data, options))
    }

    fn apply_changes<'a>(
        &'a self,
        token: &'a str,
        basis: Basis,
        data: SessionData,
        keys: &'a [&'a str],
        base: &'a SessionData,
    ) -> BoxFuture<'a, Result<ApplyOutcome>> {
        Box::pin(SessionManager::apply_changes(
            self, token, basis, data, keys, base,
        ))
    }

    fn end<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(SessionManager::end(self, token))
    }

    fn default_expiry(&self) -> ExpiryPolicy {
        self.config().expiry
    }

    fn limits(&self) -> DataLimits {
        self.config().limits
    }
}

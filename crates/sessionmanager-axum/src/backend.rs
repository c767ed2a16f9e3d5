//! The manager behind a type-erased, object-safe face, so that [`Session`](crate::Session)
//! and the layer's service need no store type parameter. One boxed future per
//! store call; a request makes at most a handful.

use std::future::Future;
use std::pin::Pin;

use sessionmanager_core::{
    DataLimits, Error, Result, Session as Stored, SessionData, SessionManager, SessionStore,
    SessionToken,
};

/// A boxed `Send` future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the web layer needs from a [`SessionManager`].
pub(crate) trait Backend: Send + Sync + 'static {
    /// The live session `token` names, counted as activity; `None` for an
    /// unknown, ended, expired or malformed token.
    fn load<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Stored>>>;
    /// Like `load`, without counting as activity.
    fn peek<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Stored>>>;
    /// Starts a session with the manager's default expiry.
    fn create<'a>(
        &'a self,
        user_id: &'a str,
        data: SessionData,
    ) -> BoxFuture<'a, Result<SessionToken>>;
    /// Compare-and-set of the whole data; the new version.
    fn set_data<'a>(
        &'a self,
        token: &'a str,
        data: SessionData,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<u64>>;
    /// Ends the session; ending an unknown one does nothing.
    fn end<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The manager's bounds on session data.
    fn limits(&self) -> DataLimits;
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

    fn peek<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Stored>>> {
        Box::pin(async move { found(SessionManager::peek(self, token).await) })
    }

    fn create<'a>(
        &'a self,
        user_id: &'a str,
        data: SessionData,
    ) -> BoxFuture<'a, Result<SessionToken>> {
        Box::pin(SessionManager::create(
            self,
            user_id,
            data,
            Default::default(),
        ))
    }

    fn set_data<'a>(
        &'a self,
        token: &'a str,
        data: SessionData,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(SessionManager::set_data(
            self,
            token,
            data,
            Some(expected_version),
        ))
    }

    fn end<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(SessionManager::end(self, token))
    }

    fn limits(&self) -> DataLimits {
        self.config().limits
    }
}

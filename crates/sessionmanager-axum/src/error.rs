//! The crate's error type, which is also the extractor's rejection.

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;

/// What can go wrong with a request's session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A handler asked for [`Session`](crate::Session) but no
    /// [`SessionLayer`](crate::SessionLayer) runs in front of it.
    #[error("no SessionLayer in front of this handler: add one with Router::layer")]
    MissingLayer,

    /// A value could not be turned into JSON, or JSON into the type asked for.
    #[error("session value: {0}")]
    Json(#[from] serde_json::Error),

    /// The engine refused or failed: data beyond the manager's limits
    /// ([`Error::InvalidData`](sessionmanager_core::Error::InvalidData)), a
    /// bad or reserved user id, a per-user session limit, a store failure, or
    /// a save that kept conflicting with other requests.
    #[error(transparent)]
    Engine(#[from] sessionmanager_core::Error),

    /// A login or logout awaited the store while another task of the same
    /// request logged in or out; this one was undone.
    #[error("another task of this request logged in or out meanwhile")]
    Interleaved,

    /// The response is already being finished, so changes would not be saved.
    #[error("the response is already finished; session changes are no longer saved")]
    Finished,
}

impl SessionError {
    /// The HTTP status that fits: 403 when a login meets a per-user session
    /// limit that rejects, 409 when a concurrent request of the same visitor
    /// changed what this one changed (the client may retry), 503 when the
    /// store is unreachable or full, 500 otherwise (the rest are bugs or
    /// store failures, not the client's doing).
    pub fn status(&self) -> StatusCode {
        use sessionmanager_core::Error;
        match self {
            Self::Engine(Error::UserLimitReached { .. }) => StatusCode::FORBIDDEN,
            Self::Engine(e) if e.is_conflict() => StatusCode::CONFLICT,
            Self::Engine(Error::Unavailable(_) | Error::StoreFull { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A bare status with its reason phrase as body: the error's own text may
/// name store internals (file paths, hosts) that clients should not see.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let status = self.status();
        (status, status.canonical_reason().unwrap_or("error")).into_response()
    }
}

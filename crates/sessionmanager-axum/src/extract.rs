//! `Session` as an axum extractor.

use axum_core::extract::FromRequestParts;
use http::request::Parts;

use crate::error::SessionError;
use crate::session::Session;
use crate::state::Slot;

/// Takes the request's [`Session`] that the [`SessionLayer`](crate::SessionLayer)
/// put in its extensions, and reads the stored session the first time a
/// handler of the request asks for it. Fails with
/// [`SessionError::MissingLayer`] without the layer, or with the store's
/// error if it cannot be read; a forged, ended or expired cookie is no error,
/// just no session.
impl<St: Send + Sync> FromRequestParts<St> for Session {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let Slot(shared) = parts
            .extensions
            .get::<Slot>()
            .cloned()
            .ok_or(SessionError::MissingLayer)?;
        let session = Session::new(shared);
        session.ensure_loaded().await?;
        Ok(session)
    }
}

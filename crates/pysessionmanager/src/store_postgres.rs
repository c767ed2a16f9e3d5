//! `postgresql://` (and `postgres://`) store URLs: the PostgreSQL store.
//! The URL format and its options are `sessionmanager_postgres::url`'s.

use std::sync::Arc;

use sessionmanager_core::{Clock, Error};
use sessionmanager_postgres::{PostgresConfig, PostgresStore};

use crate::store::OpenError;

/// Opens the PostgreSQL store `url` names, judging expiry by `clock`.
pub(crate) fn open_postgres(url: &str, clock: Arc<dyn Clock>) -> Result<PostgresStore, OpenError> {
    let config = PostgresConfig::from_url(url).map_err(|e| match e {
        Error::InvalidArgument(message) => OpenError::BadUrl(message),
        other => OpenError::Store(other),
    })?;
    PostgresStore::open(PostgresConfig { clock, ..config }).map_err(OpenError::Store)
}

/// A `postgresql://` URL with every password hidden (in the user info and in
/// a `password=` option), or `None` for other schemes.
pub(crate) fn redact_postgres(scheme: &str, url: &str) -> Option<String> {
    ["postgres", "postgresql"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
        .then(|| sessionmanager_postgres::url::redact(url))
}

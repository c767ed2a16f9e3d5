//! `postgresql://` (and `postgres://`) store URLs: the PostgreSQL store.
//! The URL format and its options are `PostgresConfig::from_url`'s.

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

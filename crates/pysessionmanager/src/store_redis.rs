//! `redis://` (and `valkey://`) URLs: the Redis store.

use sessionmanager_redis::{RedisConfig, RedisStore};

use crate::store::OpenError;

/// Opens `redis://[user[:password]@]host[:port][/db][?prefix=...&timeout_ms=...]`.
/// The URL's own errors name the wrong part; the server's (down, wrong
/// password, no such database) come from connecting, which `open` does
/// right away so they surface when the manager is built.
pub(crate) fn open_redis(url: &str) -> Result<RedisStore, OpenError> {
    // The message names the wrong part; it never quotes the URL, which may
    // hold a password where the parser did not expect one.
    let config = RedisConfig::from_url(url)
        .map_err(|e| OpenError::BadUrl(format!("bad Redis store URL: {e}")))?;
    RedisStore::open(config).map_err(OpenError::Store)
}

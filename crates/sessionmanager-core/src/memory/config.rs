//! Settings of the memory store, and its `memory://` URLs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::url;

/// Settings of a [`MemoryStore`](super::MemoryStore).
#[derive(Clone)]
pub struct MemoryStoreConfig {
    /// How many independently locked shards to split sessions over.
    pub shards: usize,
    /// At most this many sessions; creation beyond it fails with [`Error::StoreFull`].
    pub max_sessions: Option<usize>,
    /// How often the background sweeper wakes; `None` runs no sweeper
    /// (expired sessions are then removed only by `purge_expired`).
    pub sweep_interval: Option<Duration>,
    /// The clock the sweeper judges expiry by. It must be the manager's
    /// ([`ManagerConfig::clock`](crate::ManagerConfig::clock)): with another
    /// clock the sweeper could remove sessions the manager still considers
    /// live. [`SessionManager::in_memory`](crate::SessionManager::in_memory)
    /// wires this up for you.
    pub clock: Arc<dyn Clock>,
}

impl MemoryStoreConfig {
    /// Shards by default.
    pub const DEFAULT_SHARDS: usize = 64;
    /// Most shards a URL may ask for.
    pub const MAX_SHARDS: usize = 4096;
    /// How often the sweeper wakes by default.
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

    /// Settings from a store URL: `memory://`, with the options
    /// `max_sessions=N`, `shards=N` (at most [`Self::MAX_SHARDS`]) and
    /// `sweep_interval_ms=N` (0: no sweeper). Fails with
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming the
    /// wrong part. The clock is the system's; set the manager's.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url::after_scheme(url, &["memory"])?;
        let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !host.is_empty() && host != "/" {
            return Err(Error::InvalidArgument(format!(
                "memory:// takes no host or path, got {host:?}; \
                 write \"memory://\" or \"memory://?max_sessions=N\""
            )));
        }
        let mut config = Self::default();
        for (name, value) in url::options(query) {
            let number = || {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "memory:// option {name} must be a positive integer, got {value:?}"
                        ))
                    })
            };
            match name {
                "max_sessions" => config.max_sessions = Some(number()?),
                "shards" => config.shards = number()?.min(Self::MAX_SHARDS),
                "sweep_interval_ms" => {
                    config.sweep_interval = url::sweep_interval(value, "memory://")?;
                }
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "unknown memory:// option {name:?}; known \
                         options: max_sessions, shards, sweep_interval_ms"
                    )));
                }
            }
        }
        Ok(config)
    }
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        Self {
            shards: Self::DEFAULT_SHARDS,
            max_sessions: None,
            sweep_interval: Some(Self::DEFAULT_SWEEP_INTERVAL),
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for MemoryStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStoreConfig")
            .field("shards", &self.shards)
            .field("max_sessions", &self.max_sessions)
            .field("sweep_interval", &self.sweep_interval)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_settings_and_bad_ones_say_why() {
        let c = MemoryStoreConfig::from_url(
            "MEMORY://?max_sessions=10&shards=9000&sweep_interval_ms=0",
        )
        .unwrap();
        assert_eq!(
            (c.max_sessions, c.shards, c.sweep_interval),
            (Some(10), MemoryStoreConfig::MAX_SHARDS, None)
        );
        let d = MemoryStoreConfig::from_url("memory://").unwrap();
        assert_eq!(d.shards, MemoryStoreConfig::DEFAULT_SHARDS);
        for (url, why) in [
            ("memory://host", "takes no host"),
            ("memory://?max_sessions=0", "positive integer"),
            ("memory://?nope=1", "unknown memory:// option"),
            (
                "memory://?sweep_interval_ms=x",
                "whole number of milliseconds",
            ),
            ("sqlite:///x.db", "does not start with memory://"),
        ] {
            let err = MemoryStoreConfig::from_url(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}

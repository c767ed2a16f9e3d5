//! Settings of a [`SqliteStore`](crate::SqliteStore).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sessionmanager_core::{Clock, Error, Result, SystemClock};

/// What a committed write survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Survives the application crashing (`synchronous=NORMAL` in WAL mode);
    /// the last commits before a power loss or OS crash may be lost.
    #[default]
    Normal,
    /// Also survives power loss and OS crashes (`synchronous=FULL`): every
    /// commit waits for the disk.
    Full,
}

/// Settings of a SQLite store.
#[derive(Clone)]
pub struct SqliteConfig {
    /// The database file; created if missing (its folder must exist).
    pub path: PathBuf,
    /// What a committed write survives.
    pub durability: Durability,
    /// How long a write waits for another process's lock before failing.
    pub busy_timeout: Duration,
    /// Read connections, so reads never wait behind the writer.
    pub readers: usize,
    /// How often the background sweeper removes expired rows; `None` for never.
    pub sweep_interval: Option<Duration>,
    /// The clock the sweeper judges expiry by; must be the manager's.
    pub clock: Arc<dyn Clock>,
}

impl SqliteConfig {
    /// How long a write waits for another process's lock by default.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
    /// Read connections by default.
    pub const DEFAULT_READERS: usize = 4;
    /// How often the sweeper runs by default.
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

    /// Defaults for the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Normal,
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            readers: Self::DEFAULT_READERS,
            sweep_interval: Some(Self::DEFAULT_SWEEP_INTERVAL),
            clock: Arc::new(SystemClock),
        }
    }

    /// Settings from a store URL: `sqlite:///relative/path.db` or
    /// `sqlite:////absolute/path.db` (the SQLAlchemy convention), with the
    /// options `durability=normal|full`, `busy_timeout_ms=N` and
    /// `sweep_interval_ms=N` (0: no sweeper). Fails with
    /// [`Error::InvalidArgument`] naming the wrong part. The clock is the
    /// system's; set the manager's.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = sessionmanager_core::url::after_scheme(url, &["sqlite"])?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let Some(path) = location.strip_prefix('/').filter(|p| !p.is_empty()) else {
            return Err(Error::InvalidArgument(format!(
                "sqlite:// needs a file path, like \"sqlite:///sessions.db\" (relative) or \
                 \"sqlite:////var/lib/app/sessions.db\" (absolute); got \"sqlite://{rest}\""
            )));
        };
        let mut config = Self::new(path);
        for (name, value) in sessionmanager_core::url::options(query) {
            match name {
                "durability" => {
                    config.durability = match value {
                        "normal" => Durability::Normal,
                        "full" => Durability::Full,
                        _ => {
                            return Err(Error::InvalidArgument(format!(
                                "sqlite:// option durability must be \
                                 \"normal\" or \"full\", got {value:?}"
                            )));
                        }
                    }
                }
                "sweep_interval_ms" => {
                    config.sweep_interval =
                        sessionmanager_core::url::sweep_interval(value, "sqlite://")?;
                }
                "busy_timeout_ms" => {
                    config.busy_timeout =
                        value
                            .parse::<u64>()
                            .map(Duration::from_millis)
                            .map_err(|_| {
                                Error::InvalidArgument(format!(
                                    "sqlite:// option busy_timeout_ms must be a \
                                     whole number of milliseconds, got {value:?}"
                                ))
                            })?;
                }
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "unknown sqlite:// option {name:?}; known options: \
                         durability, busy_timeout_ms, sweep_interval_ms"
                    )));
                }
            }
        }
        Ok(config)
    }
}

impl fmt::Debug for SqliteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConfig")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("busy_timeout", &self.busy_timeout)
            .field("readers", &self.readers)
            .field("sweep_interval", &self.sweep_interval)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_settings_and_bad_ones_say_why() {
        let c = SqliteConfig::from_url(
            "sqlite:////var/s.db?durability=full&busy_timeout_ms=20&sweep_interval_ms=0",
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/var/s.db"));
        assert_eq!(
            (c.durability, c.busy_timeout, c.sweep_interval),
            (Durability::Full, Duration::from_millis(20), None)
        );
        assert_eq!(
            SqliteConfig::from_url("sqlite:///s.db").unwrap().path,
            PathBuf::from("s.db")
        );
        for (url, why) in [
            ("sqlite://", "needs a file path"),
            ("sqlite:///s.db?durability=half", "\"normal\" or \"full\""),
            (
                "sqlite:///s.db?busy_timeout_ms=-1",
                "whole number of milliseconds",
            ),
            ("sqlite:///s.db?x=1", "unknown sqlite:// option"),
            ("memory://", "does not start with sqlite://"),
        ] {
            let err = SqliteConfig::from_url(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}

//! Settings of a [`SqliteStore`](crate::SqliteStore).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sessionmanager_core::{Clock, SystemClock};

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
    /// Defaults for the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            sweep_interval: Some(Duration::from_secs(1)),
            clock: Arc::new(SystemClock),
        }
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

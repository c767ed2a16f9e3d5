//! An embedded, persistent session store on SQLite: bundled (nothing to
//! install), WAL mode, keyed by the SHA-256 of each token, with expired rows
//! swept in bounded batches by a background thread.
//!
//! ```
//! use std::sync::Arc;
//! use sessionmanager_core::{block_on, ManagerConfig, SessionData, SessionManager, SystemClock};
//! use sessionmanager_sqlite::{SqliteConfig, SqliteStore};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(SqliteConfig::new(dir.path().join("sessions.db"))).unwrap();
//! let manager = SessionManager::new(store, ManagerConfig::default());
//! let token =
//!     block_on(manager.create("12345", SessionData::empty(), Default::default())).unwrap();
//! assert!(block_on(manager.is_active(token.as_str())).unwrap());
//! ```

mod config;
mod error;
pub mod fork;
mod row;
mod schema;
mod sql;
mod store;
mod sweeper;
mod writer;

pub use config::{Durability, SqliteConfig};
pub use store::SqliteStore;

//! A PostgreSQL session store for sessionmanager-core: one table keyed by the
//! SHA-256 of each token, insert-if-absent creation, compare-and-set writes
//! (`UPDATE … WHERE version = $n`), expiry judged by the engine's clock in
//! every statement, expired rows swept in bounded batches by a background
//! thread, and a pool of connections with statements prepared once per
//! connection. It brings its own small tokio runtime, so it works from any
//! thread with [`sessionmanager_core::block_on`].
//!
//! ```no_run
//! use sessionmanager_core::{block_on, ManagerConfig, SessionData, SessionManager};
//! use sessionmanager_postgres::{PostgresConfig, PostgresStore};
//!
//! let config = PostgresConfig::from_url("postgresql://app:secret@127.0.0.1:5432/app").unwrap();
//! let store = PostgresStore::open(config).unwrap();
//! let manager = SessionManager::new(store, ManagerConfig::default());
//! let token =
//!     block_on(manager.create("12345", SessionData::empty(), Default::default())).unwrap();
//! assert!(block_on(manager.is_active(token.as_str())).unwrap());
//! ```
#![forbid(unsafe_code)]

mod config;
mod conn;
mod error;
mod executor;
mod row;
mod schema;
mod sql;
mod store;
mod sweeper;
mod target;

pub use config::PostgresConfig;
#[doc(hidden)]
pub use schema::{CREATE_V1, SCHEMA, Schema};
pub use store::PostgresStore;
/// The driver, to build a [`tokio_postgres::Config`] by hand.
pub use tokio_postgres;

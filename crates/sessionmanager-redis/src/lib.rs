//! A Redis / Valkey session store for sessionmanager-core: sessions that
//! every process and machine of an application reaches.
//!
//! - Keys are a configurable prefix plus the SHA-256 of the token, so the
//!   store shares a database with other data safely.
//! - Redis expires records itself, at the absolute `expires_at` of each one
//!   (`PEXPIREAT`, only ever moved forward); the per-user index is a sorted
//!   set scored by expiry, trimmed of expired sessions by every create and
//!   every write that moves an expiry, and expiring with its last session,
//!   so it never leaks.
//! - Every write (create with a user limit, compare-and-set, touch, rotate,
//!   end all of a user's sessions) is one Lua script, atomic on the server;
//!   merges and counters are one script that edits the stored data in place,
//!   falling back to the manager's read and compare-and-set for what it declines.
//! - Sessions are filed in 1024 buckets, each user's in the user's bucket
//!   with the user's indexes, each bucket with its own expiry index, and
//!   the tokens the store has the manager issue carry their user's bucket:
//!   every script touches one bucket, found from the session's key alone
//!   (see the `keys` module for the layout and what a token reveals).
//! - No `KEYS` and no `SCAN`: `count` and `purge_expired` read the buckets'
//!   indexes.
//! - One multiplexed connection, shared by all threads, replaced when the
//!   server goes away; every operation has a timeout.
//! - Through Sentinel ([`Server::Sentinel`], `redis+sentinel://`), the store
//!   asks the sentinels for the master, follows their `+switch-master`
//!   announcements, and retries within its timeout what a failover refused
//!   before it ran.
//! - On a Redis or Valkey Cluster ([`Server::Cluster`], `redis+cluster://`),
//!   the store reads which master serves each hash slot and sends every
//!   call to the master of its session's slot, one round trip as on one
//!   server; it follows `MOVED` and `ASK`, and retries within its timeout
//!   what a moving slot or a failover refused before it ran.
//!
//! Which to choose: [`RedisConfig::new`] for one server (or a managed
//! service's single endpoint), [`RedisConfig::sentinel`] for a master that
//! Sentinel fails over, [`RedisConfig::cluster`] for a cluster (a managed
//! service in cluster mode). The same store type and the same
//! [`SessionStore`](sessionmanager_core::SessionStore) contract serve all
//! three, so a manager (and the axum layer) does not change with them.
//! [`RedisConfig::wait_replicas`] makes each write wait for replicas, on
//! any of them.
//!
//! Expiry is judged by the manager's clock (the `now` every store call gets);
//! Redis's own clock only removes records at the same deadlines. Keep the
//! two in step (NTP), as with any shared store: a manager whose clock runs
//! behind the server's sees sessions vanish early, never late.
//!
//! What the server should be: a standalone Redis (tested with 7.0) or Valkey,
//! a master that Sentinel manages, or a cluster of them, with `appendonly
//! yes` if sessions must survive a restart
//! (`appendfsync always` loses no acknowledged write, even to `kill -9`),
//! and `maxmemory-policy noeviction` (the default) or a `volatile-*` policy
//! that may end sessions early: an `allkeys-*` policy may also evict the
//! indexes, and then `count` and the per-user limits lose track.
//!
//! ```no_run
//! use sessionmanager_core::{block_on, ManagerConfig, SessionData, SessionManager};
//! use sessionmanager_redis::{RedisConfig, RedisStore};
//!
//! let store = RedisStore::open(RedisConfig::from_url("redis://127.0.0.1:6379/0")?)?;
//! let manager = SessionManager::new(store, ManagerConfig::default());
//! let token = block_on(manager.create("12345", SessionData::empty(), Default::default()))?;
//! assert!(block_on(manager.is_active(token.as_str()))?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buckets;
mod cluster;
mod codec;
mod config;
mod connection;
mod driver;
mod earlier;
mod error;
mod import;
mod keys;
mod link;
mod scripts;
mod sentinel;
mod store;

pub use config::{Address, RedisConfig, SentinelConfig, Server};
pub use sessionmanager_tls::{TlsFiles, Verify};
pub use store::RedisStore;

//! Server-side sessions for [axum](https://docs.rs/axum): a tower layer,
//! [`SessionLayer`], and an extractor, [`Session`], over a
//! [`SessionManager`](sessionmanager_core::SessionManager). The cookie holds
//! only a random session id; the data (JSON) stays in the manager's store.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use sessionmanager_axum::{Session, SessionError, SessionLayer};
//! use sessionmanager_core::{ManagerConfig, SessionManager};
//!
//! async fn visits(session: Session) -> Result<String, SessionError> {
//!     let n = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", n)?;
//!     Ok(format!("visit number {n}"))
//! }
//!
//! async fn login(session: Session) -> Result<&'static str, SessionError> {
//!     session.login("alice").await?; // new id, old one dead
//!     Ok("welcome")
//! }
//!
//! let manager = Arc::new(SessionManager::in_memory(ManagerConfig::default()).unwrap());
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .route("/login", get(login))
//!     .layer(SessionLayer::new(manager));
//! ```
//!
//! # The rules
//!
//! The same as the Python integrations (Flask, Django, Starlette):
//!
//! - The cookie is `HttpOnly`, `Secure` and `SameSite=Lax` unless configured
//!   otherwise ([`SessionLayer::with_secure`] and friends).
//! - A visitor whose session stays empty gets no stored session and no
//!   cookie, so anonymous requests cannot flood the store. A visitor's
//!   session is stored, under a user id `anonymous:<random>`, when a response
//!   goes out with data in it.
//! - An invalid, forged, ended or expired cookie is simply no session (and
//!   the response deletes it). Only well-formed ids reach the store.
//! - Only what the request changed is written, by compare-and-set: when
//!   another request wrote the same session meanwhile, this request's changes
//!   are re-applied on top of that write, so two concurrent requests changing
//!   different keys both keep their change. A session emptied by the
//!   request is ended; one ended elsewhere meanwhile ("log out everywhere")
//!   is never brought back.
//! - Nothing is written when the response is a 5xx (`login` and `logout`
//!   take effect when called).
//! - [`Session::login`] moves the data to a fresh session owned by the user
//!   and ends the old one (session fixation defence); [`Session::logout`]
//!   ends the session and the response deletes the cookie.
//! - The store is read only when a handler extracts [`Session`], once per
//!   request; other requests (static files, health checks) cost nothing.
//!
//! A save that fails (store down, data grown past the limits by a merge)
//! replaces the response with a bare 500 or 503 whose extensions hold the
//! `Arc<SessionError>`, for a logging layer to report.
//!
//! # Stores that block
//!
//! The store's futures run on the task that serves the request. The memory
//! store never waits. The SQLite store (`sessionmanager-sqlite`) does its
//! file I/O synchronously inside those futures (one statement or one short
//! transaction per call, and a request makes a few calls: a read, a write,
//! two more at login); meanwhile that runtime worker thread runs nothing
//! else. Under tokio's multi-threaded runtime (the default of
//! `#[tokio::main]`) the other workers carry on, which is fine for calls this
//! short; under the `current_thread` runtime every other request waits, so
//! use the multi-threaded runtime with SQLite. With `Durability::Full` each
//! write also waits for the disk: give the runtime more worker threads
//! (`#[tokio::main(worker_threads = N)]`) rather than wrapping requests in
//! `spawn_blocking`.

#![forbid(unsafe_code)]

/// The README's Rust examples (the engine's and this crate's), compiled and
/// run as doc tests here, the crate that has every dependency they use.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

mod anonymous;
mod backend;
mod config;
mod cookie;
mod error;
mod extract;
mod layer;
mod save;
mod service;
mod session;
mod state;

pub use anonymous::ANONYMOUS_PREFIX;
pub use config::SameSite;
pub use error::SessionError;
pub use layer::SessionLayer;
pub use service::SessionService;
pub use session::Session;

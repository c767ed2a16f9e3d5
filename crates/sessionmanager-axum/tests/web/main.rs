//! The layer and extractor against a real axum `Router` and real stores,
//! driven with `tower::ServiceExt::oneshot`. One test binary, to link axum once.

mod app;
mod concurrency;
mod config;
mod cookies;
mod login;
mod rules;
mod sqlite;

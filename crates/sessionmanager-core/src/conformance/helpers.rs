//! Setup and assertion helpers shared by the conformance checks.

use std::fmt::Debug;
use std::sync::Arc;

use super::IDLE_MS;
use crate::{
    Clock, CreateOptions, CreateOutcome, DataErrorKind, DataLimits, Error, ExpiryPolicy,
    ManagerConfig, ManualClock, Result, Session, SessionData, SessionKey, SessionManager,
    SessionRecord, SessionStore, SessionToken, SystemClock, Timestamp, block_on,
};

/// The expiry policy of every check: `IDLE_MS` sliding, no absolute cap.
fn policy() -> ExpiryPolicy {
    ExpiryPolicy {
        idle_timeout_ms: IDLE_MS,
        sliding: true,
        absolute_timeout_ms: None,
    }
}

/// A fresh clock (at the current wall-clock time, so stores that also keep
/// real TTLs see realistic deadlines), a store built on it, and a manager
/// reading the same clock with `IDLE_MS` sliding expiry, adjusted by `configure`.
pub(super) fn setup<S: SessionStore>(
    make_store: &impl Fn(ManualClock) -> S,
    configure: impl FnOnce(&mut ManagerConfig),
) -> (SessionManager<S>, ManualClock) {
    let (store, clock) = raw_store(make_store);
    let mut config = ManagerConfig {
        expiry: policy(),
        clock: Arc::new(clock.clone()),
        ..ManagerConfig::default()
    };
    configure(&mut config);
    (SessionManager::new(store, config), clock)
}

/// A fresh clock, as in [`setup`], and a store built on it, for the checks
/// that call the store contract directly.
pub(super) fn raw_store<S: SessionStore>(
    make_store: &impl Fn(ManualClock) -> S,
) -> (S, ManualClock) {
    let clock = ManualClock::new(SystemClock.now());
    let store = make_store(clock.clone());
    (store, clock)
}

/// A new record for `user` created at `now` under the checks' expiry policy.
pub(super) fn raw_record(user: &str, json: &str, now: Timestamp) -> SessionRecord {
    SessionRecord::new(Arc::from(user), data(json), &policy(), now)
}

/// Stores `record` under the fresh `key` at its `created_at`, with no user
/// limit, and asserts that the store created it.
#[track_caller]
pub(super) fn store_insert<S: SessionStore>(store: &S, key: &SessionKey, record: &SessionRecord) {
    assert_eq!(
        ok(
            block_on(store.create(key, record, None, record.created_at)),
            "store create"
        ),
        CreateOutcome::Created { evicted: 0 },
        "store create of a fresh key without a limit"
    );
}

/// The keys `SessionStore::list_user` returns for `user` at `now`, in order.
#[track_caller]
pub(super) fn store_listed_keys<S: SessionStore>(
    store: &S,
    user: &str,
    now: Timestamp,
) -> Vec<SessionKey> {
    ok(block_on(store.list_user(user, now)), "store list_user")
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

#[track_caller]
pub(super) fn data(json: &str) -> SessionData {
    let limits = DataLimits {
        max_bytes: 1 << 20,
        ..DataLimits::default()
    };
    ok(SessionData::from_json_str(json, &limits), "test data")
}

/// Data just over the default `max_bytes`.
pub(super) fn too_big() -> SessionData {
    data(&format!(
        r#"{{"big":"{}"}}"#,
        "x".repeat(DataLimits::DEFAULT_MAX_BYTES)
    ))
}

pub(super) fn fresh_token() -> SessionToken {
    ok(SessionToken::generate(), "generate a token")
}

#[track_caller]
pub(super) fn create<S: SessionStore>(
    m: &SessionManager<S>,
    user: &str,
    json: &str,
) -> SessionToken {
    ok(
        block_on(m.create(user, data(json), CreateOptions::default())),
        &format!("create a session for {user:?}"),
    )
}

#[track_caller]
pub(super) fn create_with_idle<S: SessionStore>(
    m: &SessionManager<S>,
    user: &str,
    idle_timeout_ms: i64,
) -> SessionToken {
    let options = CreateOptions {
        idle_timeout_ms: Some(idle_timeout_ms),
        ..Default::default()
    };
    ok(
        block_on(m.create(user, SessionData::empty(), options)),
        &format!("create a session for {user:?} with idle timeout {idle_timeout_ms} ms"),
    )
}

#[track_caller]
pub(super) fn get<S: SessionStore>(m: &SessionManager<S>, token: &SessionToken) -> SessionRecord {
    ok(block_on(m.get(token.as_str())), "get").record
}

#[track_caller]
pub(super) fn peek<S: SessionStore>(m: &SessionManager<S>, token: &SessionToken) -> SessionRecord {
    ok(block_on(m.peek(token.as_str())), "peek").record
}

#[track_caller]
pub(super) fn active<S: SessionStore>(m: &SessionManager<S>, token: &SessionToken) -> bool {
    ok(block_on(m.is_active(token.as_str())), "is_active")
}

#[track_caller]
pub(super) fn list<S: SessionStore>(m: &SessionManager<S>, user: &str) -> Vec<Session> {
    ok(block_on(m.list_user(user)), "list_user")
}

/// The keys `list_user` returns for `user`, in order.
#[track_caller]
pub(super) fn listed_keys<S: SessionStore>(m: &SessionManager<S>, user: &str) -> Vec<SessionKey> {
    list(m, user).iter().map(|s| s.key).collect()
}

#[track_caller]
pub(super) fn count<S: SessionStore>(m: &SessionManager<S>) -> u64 {
    ok(block_on(m.count()), "count")
}

#[track_caller]
pub(super) fn purge<S: SessionStore>(m: &SessionManager<S>) -> u64 {
    ok(block_on(m.purge_expired()), "purge_expired")
}

#[track_caller]
pub(super) fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what}: expected success, got {e:?} ({e})"),
    }
}

#[track_caller]
pub(super) fn expect_err<T: Debug>(result: Result<T>, what: &str) -> Error {
    match result {
        Ok(value) => panic!("{what}: expected an error, got Ok({value:?})"),
        Err(e) => e,
    }
}

#[track_caller]
pub(super) fn expect_not_found<T: Debug>(result: Result<T>, what: &str) {
    let e = expect_err(result, what);
    assert!(e.is_not_found(), "{what}: expected NotFound, got {e:?}");
}

#[track_caller]
pub(super) fn assert_invalid_data(e: &Error, expected: DataErrorKind, what: &str) {
    assert!(
        matches!(e, Error::InvalidData { kind, .. } if *kind == expected),
        "{what}: expected InvalidData of kind {expected:?}, got {e:?}"
    );
}

//! `apply_changes` against a memory store wrapped in a spy that counts store
//! calls and lets "another request" write or end the session just before
//! each of the manager's writes, so every race is deterministic.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::*;
use crate::{
    Clock, CreateOutcome, DataLimits, ManagerConfig, ManualClock, MemoryStore, MemoryStoreConfig,
    SaveOutcome, SessionKey, SessionRecord, SessionToken, Timestamp, UserLimit, block_on,
};

/// What another request does just before one of the manager's writes.
#[derive(Clone, Copy, Debug)]
enum Meanwhile {
    /// Writes this JSON as the session's data (a new version).
    Write(&'static str),
    /// Ends the session.
    End,
}

/// A memory store that counts the manager's loads and saves and runs the
/// queued [`Meanwhile`]s, one before each save (then `always`, if set).
struct Spy {
    inner: MemoryStore,
    loads: AtomicUsize,
    saves: AtomicUsize,
    queued: Mutex<VecDeque<Meanwhile>>,
    always: Mutex<Option<Meanwhile>>,
}

impl Spy {
    fn next_meanwhile(&self) -> Option<Meanwhile> {
        let queued = self
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        queued.or(*self.always.lock().unwrap_or_else(PoisonError::into_inner))
    }

    async fn run(&self, meanwhile: Meanwhile, key: &SessionKey, now: Timestamp) -> Result<()> {
        match meanwhile {
            Meanwhile::Write(json) => {
                let Some(mut record) = self.inner.load(key, now).await? else {
                    return Ok(());
                };
                let version = record.version;
                record.data = data(json);
                record.version += 1;
                let outcome = self.inner.save(key, &record, version, now).await?;
                assert_eq!(outcome, SaveOutcome::Saved, "the other writer's write");
            }
            Meanwhile::End => {
                self.inner.delete(key, now).await?;
            }
        }
        Ok(())
    }
}

impl SessionStore for Spy {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
    ) -> Result<CreateOutcome> {
        self.inner.create(key, record, limit, now).await
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.inner.load(key, now).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        expected_version: u64,
        now: Timestamp,
    ) -> Result<SaveOutcome> {
        self.saves.fetch_add(1, Ordering::Relaxed);
        if let Some(meanwhile) = self.next_meanwhile() {
            self.run(meanwhile, key, now).await?;
        }
        self.inner.save(key, record, expected_version, now).await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_active: Timestamp,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        self.inner.touch(key, last_active, expires_at, now).await
    }

    async fn delete(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        self.inner.delete(key, now).await
    }

    async fn rotate(&self, old: &SessionKey, new: &SessionKey, now: Timestamp) -> Result<bool> {
        self.inner.rotate(old, new, now).await
    }

    async fn list_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<(SessionKey, SessionRecord)>> {
        self.inner.list_user(user_id, now).await
    }

    async fn delete_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
        now: Timestamp,
    ) -> Result<u64> {
        self.inner.delete_user(user_id, keep, now).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        self.inner.purge_expired(now).await
    }

    async fn count(&self, now: Timestamp) -> Result<u64> {
        self.inner.count(now).await
    }

    async fn export_page(
        &self,
        cursor: &crate::ExportCursor,
        limit: u32,
        now: Timestamp,
    ) -> Result<crate::ExportPage> {
        self.inner.export_page(cursor, limit, now).await
    }

    async fn rate_load(&self, key: &SessionKey) -> Result<crate::RateRead> {
        self.inner.rate_load(key).await
    }

    async fn rate_store(
        &self,
        key: &SessionKey,
        expected: Option<i64>,
        tat_us: i64,
        now: Timestamp,
    ) -> Result<bool> {
        self.inner.rate_store(key, expected, tat_us, now).await
    }
}

fn data(json: &str) -> SessionData {
    SessionData::from_json_str(json, &DataLimits::default()).unwrap()
}

/// A manager over a fresh spy, with `max_bytes` of data per session.
fn manager(max_bytes: usize) -> (SessionManager<Spy>, ManualClock) {
    let clock = ManualClock::new(Timestamp(1_700_000_000_000));
    let inner = MemoryStore::open(MemoryStoreConfig {
        clock: Arc::new(clock.clone()),
        sweep_interval: None,
        ..MemoryStoreConfig::default()
    })
    .unwrap();
    let spy = Spy {
        inner,
        loads: AtomicUsize::new(0),
        saves: AtomicUsize::new(0),
        queued: Mutex::new(VecDeque::new()),
        always: Mutex::new(None),
    };
    let config = ManagerConfig {
        clock: Arc::new(clock.clone()),
        limits: DataLimits {
            max_bytes,
            ..DataLimits::default()
        },
        ..ManagerConfig::default()
    };
    (SessionManager::new(spy, config), clock)
}

/// A session of "alice" holding `json`, read back, with the counters reset.
fn session(m: &SessionManager<Spy>, json: &str) -> (SessionToken, Session) {
    let token = block_on(m.create("alice", data(json), Default::default())).unwrap();
    let read = block_on(m.peek(token.as_str())).unwrap();
    calls(m);
    (token, read)
}

/// The (loads, saves) since the last call, resetting both.
fn calls(m: &SessionManager<Spy>) -> (usize, usize) {
    let store = m.store();
    (
        store.loads.swap(0, Ordering::Relaxed),
        store.saves.swap(0, Ordering::Relaxed),
    )
}

fn then(m: &SessionManager<Spy>, meanwhile: Meanwhile) {
    m.store().queued.lock().unwrap().push_back(meanwhile);
}

fn stored(m: &SessionManager<Spy>, token: &SessionToken) -> (String, u64) {
    let read = block_on(m.peek(token.as_str())).unwrap();
    calls(m);
    (read.record.data.as_json().to_owned(), read.record.version)
}

/// `apply_changes` with the data of a [`Basis::Read`] as the base (none
/// for a [`Basis::Version`]).
fn apply(
    m: &SessionManager<Spy>,
    token: &SessionToken,
    basis: Basis,
    json: &str,
    keys: &[&str],
) -> Result<ApplyOutcome> {
    let base = match &basis {
        Basis::Read(read) => read.record.data.clone(),
        Basis::Version(_) => SessionData::empty(),
    };
    apply_over(m, token, basis, json, keys, &base)
}

fn apply_over(
    m: &SessionManager<Spy>,
    token: &SessionToken,
    basis: Basis,
    json: &str,
    keys: &[&str],
    base: &SessionData,
) -> Result<ApplyOutcome> {
    block_on(m.apply_changes(token.as_str(), basis, data(json), keys, base))
}

#[test]
fn without_a_conflict_a_read_basis_costs_one_write() {
    let (m, clock) = manager(1024);
    let (token, read) = session(&m, r#"{"a":1,"b":1}"#);
    clock.advance(5_000);
    let outcome = apply(
        &m,
        &token,
        Basis::Read(read),
        r#"{"b":2,"c":3}"#,
        &["a", "b", "c"],
    );
    let Ok(ApplyOutcome::Saved(written)) = outcome else {
        panic!("saved, got {outcome:?}");
    };
    assert_eq!(calls(&m), (0, 1), "no read, one compare-and-set");
    assert_eq!(written.record.version, 2);
    assert_eq!(
        written.record.last_active,
        clock.now(),
        "a write is activity"
    );
    assert_eq!(stored(&m, &token), (r#"{"b":2,"c":3}"#.to_owned(), 2));
    assert_eq!(
        block_on(m.peek(token.as_str())).unwrap(),
        written,
        "the outcome is the session as stored"
    );
    calls(&m);

    // The written session is the basis of the next write.
    let outcome = apply(&m, &token, Basis::Read(written), r#"{"b":2}"#, &["c"]);
    assert!(matches!(outcome, Ok(ApplyOutcome::Saved(_))), "{outcome:?}");
    assert_eq!(calls(&m), (0, 1));
    assert_eq!(stored(&m, &token), (r#"{"b":2}"#.to_owned(), 3));
}

#[test]
fn a_version_basis_reads_then_writes() {
    let (m, _clock) = manager(1024);
    let (token, _) = session(&m, r#"{"a":1}"#);
    let outcome = apply(&m, &token, Basis::Version(1), r#"{"a":2}"#, &["a"]);
    assert!(matches!(outcome, Ok(ApplyOutcome::Saved(_))), "{outcome:?}");
    assert_eq!(calls(&m), (1, 1));
    assert_eq!(stored(&m, &token), (r#"{"a":2}"#.to_owned(), 2));

    // A version that is already stale merges on the first try.
    let base = data(r#"{"a":2}"#);
    let outcome = apply_over(
        &m,
        &token,
        Basis::Version(1),
        r#"{"b":1}"#,
        &["a", "b"],
        &base,
    );
    assert!(matches!(outcome, Ok(ApplyOutcome::Saved(_))), "{outcome:?}");
    assert_eq!(calls(&m), (1, 1));
    assert_eq!(stored(&m, &token), (r#"{"b":1}"#.to_owned(), 3));
}

#[test]
fn a_conflict_reapplies_only_the_changed_keys_over_the_other_write() {
    let (m, _clock) = manager(1024);
    let (token, read) = session(&m, r#"{"a":1,"b":1,"c":1}"#);
    then(&m, Meanwhile::Write(r#"{"a":1,"b":2,"c":1,"d":9}"#));
    // This request changed only "a"; its view of "b" and "d" is stale.
    let outcome = apply(
        &m,
        &token,
        Basis::Read(read),
        r#"{"a":5,"b":1,"c":1}"#,
        &["a"],
    );
    let Ok(ApplyOutcome::Saved(written)) = outcome else {
        panic!("saved, got {outcome:?}");
    };
    assert_eq!(calls(&m), (1, 2), "write, read again, write");
    assert_eq!(
        stored(&m, &token),
        (r#"{"a":5,"b":2,"c":1,"d":9}"#.to_owned(), 3),
        "the other writer's keys are kept"
    );
    assert_eq!(written.record.version, 3);
}

#[test]
fn removed_keys_stay_removed_after_a_conflict() {
    let (m, _clock) = manager(1024);
    let (token, read) = session(&m, r#"{"a":1,"b":1,"c":1}"#);
    then(&m, Meanwhile::Write(r#"{"a":1,"b":2,"c":1}"#));
    // This request removed "c" and set "e".
    let outcome = apply(
        &m,
        &token,
        Basis::Read(read),
        r#"{"a":1,"b":1,"e":0}"#,
        &["c", "e"],
    );
    assert!(matches!(outcome, Ok(ApplyOutcome::Saved(_))), "{outcome:?}");
    assert_eq!(stored(&m, &token), (r#"{"a":1,"b":2,"e":0}"#.to_owned(), 3));
}

#[test]
fn a_key_both_writers_changed_is_a_key_conflict_that_writes_nothing() {
    let (m, _clock) = manager(1024);
    // The other writer changed "cart" too: re-applying would drop its item.
    let (token, read) = session(&m, r#"{"cart":[1],"n":0}"#);
    then(&m, Meanwhile::Write(r#"{"cart":[1,2],"n":0}"#));
    let outcome = apply(
        &m,
        &token,
        Basis::Read(read),
        r#"{"cart":[1,3],"n":0}"#,
        &["cart"],
    );
    let Err(Error::KeyConflict {
        key,
        expected,
        actual,
    }) = outcome
    else {
        panic!("a key conflict, got {outcome:?}");
    };
    assert_eq!((key.as_str(), expected, actual), ("cart", 1, 2));
    assert_eq!(calls(&m), (1, 1), "write, read again, no second write");
    assert_eq!(
        stored(&m, &token),
        (r#"{"cart":[1,2],"n":0}"#.to_owned(), 2)
    );

    // A removal of a key the other writer changed, or a set of one it
    // added, conflicts the same way.
    for (meanwhile, json, keys) in [
        (r#"{"cart":[9],"n":0}"#, r#"{"n":0}"#, &["cart"][..]),
        (
            r#"{"cart":[1,2],"n":0,"new":1}"#,
            r#"{"cart":[1,2],"n":0,"new":2}"#,
            &["new"][..],
        ),
    ] {
        let (token, read) = session(&m, r#"{"cart":[1,2],"n":0}"#);
        then(&m, Meanwhile::Write(meanwhile));
        let outcome = apply(&m, &token, Basis::Read(read), json, keys);
        assert!(
            matches!(outcome, Err(Error::KeyConflict { .. })),
            "{outcome:?}"
        );
        assert_eq!(stored(&m, &token), (meanwhile.to_owned(), 2));
    }

    // Both made the same change, or the other writer changed only other
    // keys: nothing is undone, so the write goes ahead.
    let (token, read) = session(&m, r#"{"a":1,"b":1}"#);
    then(&m, Meanwhile::Write(r#"{"a":2,"b":1}"#));
    let outcome = apply(
        &m,
        &token,
        Basis::Read(read),
        r#"{"a":2,"b":5}"#,
        &["a", "b"],
    );
    assert!(matches!(outcome, Ok(ApplyOutcome::Saved(_))), "{outcome:?}");
    assert_eq!(stored(&m, &token), (r#"{"a":2,"b":5}"#.to_owned(), 3));
}

#[test]
fn a_session_ended_meanwhile_is_gone_and_stays_gone() {
    let (m, _clock) = manager(1024);
    let (token, read) = session(&m, r#"{"a":1}"#);
    then(&m, Meanwhile::End);
    let outcome = apply(&m, &token, Basis::Read(read), r#"{"a":2}"#, &["a"]);
    assert_eq!(outcome.unwrap(), ApplyOutcome::Gone);
    assert_eq!(calls(&m), (0, 1));

    // Ended after a conflict, between the re-read and the second write.
    let (token, read) = session(&m, r#"{"a":1}"#);
    then(&m, Meanwhile::Write(r#"{"a":1,"b":1}"#));
    then(&m, Meanwhile::End);
    let outcome = apply(&m, &token, Basis::Read(read), r#"{"a":2}"#, &["a"]);
    assert_eq!(outcome.unwrap(), ApplyOutcome::Gone);
    assert_eq!(calls(&m), (1, 2));

    assert!(!block_on(m.is_active(token.as_str())).unwrap());
    assert_eq!(block_on(m.count()).unwrap(), 0, "nothing was brought back");
}

#[test]
fn a_gone_session_is_never_resurrected() {
    let (m, _clock) = manager(1024);
    let (token, read) = session(&m, r#"{"a":1}"#);
    block_on(m.end(token.as_str())).unwrap();
    calls(&m);
    for basis in [Basis::Read(read), Basis::Version(1)] {
        let outcome = apply(&m, &token, basis, r#"{"a":2}"#, &["a"]);
        assert_eq!(outcome.unwrap(), ApplyOutcome::Gone);
    }
    assert_eq!(
        calls(&m),
        (1, 1),
        "the read basis tried its write, the version its read"
    );
    let empty = SessionData::empty();
    let malformed =
        block_on(m.apply_changes("not a token", Basis::Version(1), data("{}"), &[], &empty));
    assert_eq!(malformed.unwrap(), ApplyOutcome::Gone);
    assert_eq!(calls(&m), (0, 0));
    assert_eq!(block_on(m.count()).unwrap(), 0);
}

#[test]
fn it_gives_up_after_max_attempts_writes() {
    let (m, _clock) = manager(1024);
    let (token, read) = session(&m, r#"{"n":0}"#);
    *m.store().always.lock().unwrap() = Some(Meanwhile::Write(r#"{"n":0,"o":1}"#));
    let outcome = apply(&m, &token, Basis::Read(read), r#"{"n":1}"#, &["n"]);
    let Err(Error::Conflict { expected, actual }) = outcome else {
        panic!("a conflict, got {outcome:?}");
    };
    assert_eq!(actual, expected + 1, "the other writer was one write ahead");
    assert_eq!(calls(&m), (MAX_APPLY_ATTEMPTS - 1, MAX_APPLY_ATTEMPTS));
    *m.store().always.lock().unwrap() = None;
    let (json, version) = stored(&m, &token);
    assert_eq!(
        json, r#"{"n":0,"o":1}"#,
        "only the other writer's writes landed"
    );
    assert_eq!(version, 1 + MAX_APPLY_ATTEMPTS as u64);
}

#[test]
fn data_over_the_limit_writes_nothing() {
    let (m, _clock) = manager(24);
    let (token, read) = session(&m, r#"{"a":"0123456789"}"#);
    let err = apply(
        &m,
        &token,
        Basis::Read(read.clone()),
        r#"{"a":"0123456789","b":"0123456789"}"#,
        &["b"],
    );
    assert!(matches!(err, Err(Error::InvalidData { .. })), "{err:?}");
    assert_eq!(calls(&m), (0, 0), "refused before any store call");

    // Fits alone, but not merged with what another request wrote meanwhile.
    then(&m, Meanwhile::Write(r#"{"a":"0123456789"}"#));
    let err = apply(
        &m,
        &token,
        Basis::Read(read),
        r#"{"b":"0123456789"}"#,
        &["b"],
    );
    assert!(matches!(err, Err(Error::InvalidData { .. })), "{err:?}");
    assert_eq!(calls(&m), (1, 1));
    assert_eq!(stored(&m, &token), (r#"{"a":"0123456789"}"#.to_owned(), 2));
}

#[test]
fn a_basis_of_another_session_is_refused() {
    let (m, _clock) = manager(1024);
    let (token, _) = session(&m, r#"{"a":1}"#);
    let (_, other) = session(&m, r#"{"b":1}"#);
    let err = apply(&m, &token, Basis::Read(other), r#"{"a":2}"#, &["a"]);
    assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
    assert_eq!(calls(&m), (0, 0));
    assert_eq!(stored(&m, &token), (r#"{"a":1}"#.to_owned(), 1));
}

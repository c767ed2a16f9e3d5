//! Through the manager: `apply_changes`, the web integrations' save.

use super::IDLE_MS;
use super::helpers::{active, count, create, data, list, ok, peek, setup};
use crate::{
    ApplyOutcome, Basis, Clock, ManualClock, Result, Session, SessionData, SessionManager,
    SessionStore, SessionToken, block_on,
};

fn apply<S: SessionStore>(
    m: &SessionManager<S>,
    token: &SessionToken,
    basis: Basis,
    json: &str,
    keys: &[&str],
) -> Result<ApplyOutcome> {
    let base = match &basis {
        Basis::Read(read) => read.record.data.clone(),
        Basis::Version(_) => SessionData::empty(),
    };
    block_on(m.apply_changes(token.as_str(), basis, data(json), keys, &base))
}

#[track_caller]
fn saved(outcome: Result<ApplyOutcome>, what: &str) -> Session {
    match ok(outcome, what) {
        ApplyOutcome::Saved(session) => session,
        ApplyOutcome::Gone => panic!("{what}: expected Saved, got Gone"),
    }
}

/// `apply_changes` writes the whole data over a session read earlier (even
/// one refreshed meanwhile, keeping its owner, creation time and listing);
/// after another write it re-applies only its keys, removals included,
/// unless the other write changed one of them too (`KeyConflict`, nothing
/// written); a session ended or expired is `Gone` and stays gone.
pub fn check_apply_changes<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let token = create(&m, "alice", r#"{"a":1,"b":1,"c":1}"#);
    let read = ok(block_on(m.peek(token.as_str())), "peek");

    // Another request's read refreshes the sliding expiry meanwhile.
    clock.set(t0.plus_millis(IDLE_MS / 2));
    ok(block_on(m.get(token.as_str())), "get");
    let t1 = t0.plus_millis(IDLE_MS / 2 + 1_000);
    clock.set(t1);
    let written = saved(
        apply(
            &m,
            &token,
            Basis::Read(read),
            r#"{"a":2,"b":1,"c":1}"#,
            &["a"],
        ),
        "apply_changes over a session read earlier",
    );
    let r = peek(&m, &token);
    assert_eq!(written.record, r, "Saved carries the session as stored");
    assert_eq!(
        (r.data.as_json(), r.version),
        (r#"{"a":2,"b":1,"c":1}"#, 2),
        "the whole data is written at the next version"
    );
    assert_eq!(
        (
            r.user_id.as_ref(),
            r.created_at,
            r.last_active,
            r.expires_at
        ),
        ("alice", t0, t1, t1.plus_millis(IDLE_MS)),
        "owner and creation kept, the write is activity"
    );
    let listed = list(&m, "alice");
    assert_eq!(listed.len(), 1, "still listed once for its user");
    assert_eq!(listed[0].record, r, "the listing shows the write");

    // Another request writes; this one removed "c" and set "e".
    ok(
        block_on(m.update(token.as_str(), &data(r#"{"b":2,"d":9}"#))),
        "update",
    );
    saved(
        apply(
            &m,
            &token,
            Basis::Read(written),
            r#"{"a":2,"b":1,"e":0}"#,
            &["c", "e"],
        ),
        "apply_changes after another write",
    );
    let r = peek(&m, &token);
    assert_eq!(
        (r.data.as_json(), r.version),
        (r#"{"a":2,"b":2,"d":9,"e":0}"#, 4),
        "only the changed keys are re-applied; the removed one stays removed"
    );
    let by_version = saved(
        apply(&m, &token, Basis::Version(4), r#"{"f":1}"#, &["f"]),
        "apply_changes from a version",
    );
    assert_eq!(
        (by_version.record.data.as_json(), by_version.record.version),
        (r#"{"f":1}"#, 5),
        "at the version read, the whole data is written"
    );

    ok(block_on(m.end(token.as_str())), "end");
    for basis in [Basis::Read(by_version), Basis::Version(5)] {
        let outcome = ok(apply(&m, &token, basis, r#"{"g":1}"#, &["g"]), "after end");
        assert_eq!(outcome, ApplyOutcome::Gone, "an ended session is gone");
    }
    assert!(!active(&m, &token), "an ended session is not brought back");

    let token = create(&m, "bob", r#"{"a":1}"#);
    let read = ok(block_on(m.peek(token.as_str())), "peek");
    clock.set(clock.now().plus_millis(IDLE_MS));
    let outcome = ok(
        apply(&m, &token, Basis::Read(read), r#"{"a":2}"#, &["a"]),
        "after expiry",
    );
    assert_eq!(outcome, ApplyOutcome::Gone, "an expired session is gone");
    assert_eq!(count(&m), 0, "nothing is brought back");
    let empty = SessionData::empty();
    let outcome = block_on(m.apply_changes(
        token.as_str(),
        Basis::Version(1),
        empty.clone(),
        &[],
        &empty,
    ));
    assert_eq!(ok(outcome, "after expiry, by version"), ApplyOutcome::Gone);

    // Another request changed the same key meanwhile: nothing is written.
    let token = create(&m, "carol", r#"{"cart":["tea"],"n":1}"#);
    let read = ok(block_on(m.peek(token.as_str())), "peek");
    let mug = serde_json::json!("mug");
    ok(block_on(m.append(token.as_str(), "cart", &mug)), "append");
    let outcome = apply(
        &m,
        &token,
        Basis::Read(read),
        r#"{"cart":["tea","cup"],"n":1}"#,
        &["cart"],
    );
    match outcome {
        Err(crate::Error::KeyConflict {
            key,
            expected,
            actual,
        }) => {
            assert_eq!((key.as_str(), expected, actual), ("cart", 1, 2));
        }
        other => panic!("a change to a key another request changed: {other:?}"),
    }
    let r = peek(&m, &token);
    assert_eq!(
        (r.data.as_json(), r.version),
        (r#"{"cart":["tea","mug"],"n":1}"#, 2),
        "a key conflict writes nothing"
    );
}

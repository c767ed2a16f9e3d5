//! Through the manager: what [`SessionManager::stats`](crate::SessionManager::stats)
//! counts, which depends on what the store reports (evictions, purges).

use super::IDLE_MS;
use super::helpers::{create, create_with_idle, data, expect_err, ok, purge, setup};
use crate::{
    Basis, Clock, EndReason, ErrorKind, LimitAction, ManualClock, Operation, Session, SessionData,
    SessionStore, StatsSnapshot, block_on,
};

/// Every counter moves by exactly what was done: creations, logouts by
/// token and by key, evictions at the user limit, ending a user's others,
/// rotations, purged expiries, a retried write and errors by kind; each
/// operation's latency counts its calls. With metrics off there are none.
pub fn check_stats_count_what_happened<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |config| {
        config.max_sessions_per_user = Some(2);
        config.on_limit = LimitAction::EvictOldest;
    });
    let stats = |m: &crate::SessionManager<S>| -> StatsSnapshot { m.stats().expect("metrics on") };
    let t0 = clock.now();
    let a1 = create(&m, "alice", "{}");
    let a2 = create(&m, "alice", "{}");
    let _a3 = create(&m, "alice", "{}"); // evicts a1
    let b1 = create(&m, "bob", "{}");
    let b2 = create(&m, "bob", "{}");
    let short = create_with_idle(&m, "carol", IDLE_MS / 2);
    ok(block_on(m.end(a1.as_str())), "end an evicted session");
    ok(block_on(m.end(a2.as_str())), "end");
    let b1_key = b1.key().to_hex();
    assert!(ok(
        block_on(m.end_session_by_key("bob", &b1_key)),
        "end by key"
    ));
    let rotated = ok(block_on(m.rotate(b2.as_str())), "rotate");
    let read: Session = ok(block_on(m.get(rotated.as_str())), "get");
    ok(
        block_on(m.update(rotated.as_str(), &data(r#"{"x":1}"#))),
        "update",
    );
    let basis = Basis::Read(read);
    let outcome = block_on(m.apply_changes(
        rotated.as_str(),
        basis,
        data(r#"{"y":1}"#),
        &["y"],
        &SessionData::empty(),
    ));
    ok(outcome, "apply_changes over a stale read");
    let conflict = block_on(m.set_data(rotated.as_str(), SessionData::empty(), Some(1)));
    expect_err(conflict, "set_data at a stale version");
    expect_err(
        block_on(m.create("", SessionData::empty(), Default::default())),
        "bad user",
    );
    create(&m, "dave", "{}");
    create(&m, "dave", "{}");
    assert_eq!(ok(block_on(m.end_user("dave", None)), "end_user"), 2);
    clock.set(t0.plus_millis(IDLE_MS / 2));
    assert_eq!(purge(&m), 1, "the short session is purged");
    assert!(!ok(block_on(m.is_active(short.as_str())), "is_active"));

    let s = stats(&m);
    assert_eq!(s.created, 8, "sessions created");
    assert_eq!(s.ended(EndReason::Evicted), 1, "evicted by the user limit");
    assert_eq!(
        s.ended(EndReason::Logout),
        2,
        "a1 was gone already: a2 and b1"
    );
    assert_eq!(s.ended(EndReason::EndedWithUser), 2, "dave's two");
    assert_eq!(s.rotated, 1, "rotations");
    assert_eq!(s.expired, 1, "purged");
    assert_eq!(
        s.retries, 1,
        "apply_changes wrote again after its stale first try"
    );
    assert_eq!(s.errors(ErrorKind::Conflict), 1, "the stale set_data");
    assert_eq!(s.errors(ErrorKind::InvalidInput), 1, "the empty user id");
    assert_eq!(
        s.errors.iter().map(|e| e.1).sum::<u64>(),
        2,
        "no other errors"
    );
    assert_eq!(
        s.latency(Operation::Create).count,
        9,
        "creates, the refused one included"
    );
    assert_eq!(s.latency(Operation::End).count, 2);
    assert_eq!(s.latency(Operation::IsActive).count, 1);
    assert_eq!(s.latency(Operation::Increment).count, 0);
    let create_latency = s.latency(Operation::Create);
    assert!(create_latency.sum.as_nanos() > 0, "creates took time");

    let (quiet, _) = setup(&make_store, |config| config.metrics = false);
    create(&quiet, "alice", "{}");
    assert_eq!(quiet.stats(), None, "metrics off: nothing counted");
}

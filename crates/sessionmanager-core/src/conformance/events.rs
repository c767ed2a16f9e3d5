//! Through the manager: the lifecycle events a subscriber receives, which
//! depend on what the store reports (evictions, deletes, rotations).

use super::IDLE_MS;
use super::helpers::{
    create, create_with_idle, expect_err, fresh_token, ok, raw_record, setup, store_insert,
};
use crate::{
    Clock, EndReason, EventKind, LimitAction, ManualClock, SessionKey, SessionStore, Subscription,
    block_on,
};

fn drain(subscription: &Subscription) -> Vec<(EventKind, SessionKey, String)> {
    std::iter::from_fn(|| subscription.try_next())
        .map(|e| (e.kind, e.key, e.user_id.to_string()))
        .collect()
}

/// A subscriber sees each creation, eviction by the user limit, logout by
/// token or key, rotation and end with the user's others, once, with the
/// session's key and user; an end of a session already gone reports
/// nothing. A full channel drops events and counts them; no operation fails.
pub fn check_events_name_what_happened<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |config| {
        config.max_sessions_per_user = Some(2);
        config.on_limit = LimitAction::EvictOldest;
    });
    let events = m.subscribe(100);
    let t0 = clock.now();
    // A millisecond apart, so "oldest" is the order of creation.
    let a1 = create(&m, "alice", "{}");
    clock.set(t0.plus_millis(1));
    let a2 = create(&m, "alice", "{}");
    clock.set(t0.plus_millis(2));
    let a3 = create(&m, "alice", "{}");
    ok(block_on(m.end(a2.as_str())), "end");
    ok(block_on(m.end(a2.as_str())), "end again");
    let rotated = ok(block_on(m.rotate(a3.as_str())), "rotate");
    let b1 = create(&m, "bob", "{}");
    assert!(ok(
        block_on(m.end_session_by_key("bob", &b1.key().to_hex())),
        "by key"
    ));
    let d1 = create(&m, "dave", "{}");
    let d2 = create(&m, "dave", "{}");
    assert_eq!(
        ok(block_on(m.end_user("dave", Some(d2.as_str()))), "end_user"),
        1
    );
    expect_err(block_on(m.rotate(a2.as_str())), "rotate an ended session");

    use EndReason::{EndedWithUser, Evicted, Logout};
    use EventKind::{Created, Ended};
    let (alice, bob, dave) = ("alice".to_owned(), "bob".to_owned(), "dave".to_owned());
    let expected = vec![
        (Created, a1.key(), alice.clone()),
        (Created, a2.key(), alice.clone()),
        (Ended(Evicted), a1.key(), alice.clone()),
        (Created, a3.key(), alice.clone()),
        (Ended(Logout), a2.key(), alice.clone()),
        (
            EventKind::Rotated {
                new_key: rotated.key(),
            },
            a3.key(),
            alice,
        ),
        (Created, b1.key(), bob.clone()),
        (Ended(Logout), b1.key(), bob),
        (Created, d1.key(), dave.clone()),
        (Created, d2.key(), dave.clone()),
        (Ended(EndedWithUser), d1.key(), dave),
    ];
    assert_eq!(drain(&events), expected, "every event, once, in order");

    let small = m.subscribe(1);
    create(&m, "erin", "{}");
    create(&m, "erin", "{}");
    assert_eq!(drain(&small).len(), 1, "a full channel takes no more");
    assert_eq!(m.stats().expect("metrics on").events_dropped, 1);
    assert_eq!(
        drain(&events).len(),
        2,
        "other subscribers still get every event"
    );
    drop((events, small));
    create(&m, "erin", "{}");
}

/// A purge reports each expired session once, with its key, user and
/// times, and live ones not at all (see [`SessionStore::watch_expiry`]).
pub fn check_expiry_events<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let events = m.subscribe(100);
    let t0 = clock.now();
    let short: Vec<_> = (0..3)
        .map(|i| create_with_idle(&m, &format!("user{i}"), IDLE_MS / 2))
        .collect();
    let long = create(&m, "user0", "{}");
    drain(&events);
    clock.set(t0.plus_millis(IDLE_MS / 2));
    assert_eq!(ok(block_on(m.purge_expired()), "purge"), 3);
    assert_eq!(ok(block_on(m.purge_expired()), "purge again"), 0);
    let mut expired: Vec<_> = std::iter::from_fn(|| events.try_next()).collect();
    expired.sort_by_key(|e| e.user_id.clone());
    let keys: Vec<_> = expired.iter().map(|e| (e.kind.clone(), e.key)).collect();
    let mut wanted: Vec<_> = short
        .iter()
        .map(|t| (EventKind::Expired, t.key()))
        .collect();
    wanted.sort_by_key(|(_, key)| {
        short
            .iter()
            .position(|t| t.key() == *key)
            .expect("one of them")
    });
    assert_eq!(keys, wanted, "each expired session once, the live one not");
    assert_eq!(expired[1].user_id.as_ref(), "user1");
    assert_eq!(expired[0].expires_at, t0.plus_millis(IDLE_MS / 2));
    assert_eq!(expired[0].created_at, t0);
    assert!(ok(block_on(m.is_active(long.as_str())), "is_active"));
}

/// An expired session that a call meets and removes, rather than a sweep,
/// is reported expired once as well: by an end (which reports no end: only
/// a live session ends), by an end of its user's sessions (whose live ones
/// end), and by a create under a user limit, whether that create succeeds
/// or is refused; a purge after them reports nothing twice.
pub fn check_expired_sessions_calls_remove_are_reported<S: SessionStore>(
    make_store: impl Fn(ManualClock) -> S,
) {
    let (m, clock) = setup(&make_store, |config| {
        config.max_sessions_per_user = Some(3);
        config.on_limit = LimitAction::Reject;
    });
    let events = m.subscribe(1_000);
    let t0 = clock.now();
    let short = |user: &str| create_with_idle(&m, user, IDLE_MS / 2);
    let ended = short("ann");
    let ann = create(&m, "ann", "{}");
    let bo = create(&m, "bo", "{}");
    // More than one batch of Redis' `delete_user` (SQLite's batches are
    // tested with its store), past the limit: through the store, created
    // so that they expire with the short ones.
    let many: Vec<_> = (0..120)
        .map(|_| {
            let key = fresh_token().key();
            let born = t0.plus_millis(-IDLE_MS / 2);
            store_insert(m.store(), &key, &raw_record("bo", "{}", born));
            key
        })
        .collect();
    let limited = [short("cy"), short("cy")];
    let cy = create(&m, "cy", "{}");
    let refused = short("di");
    let di = [create(&m, "di", "{}"), create(&m, "di", "{}")];
    drain(&events);
    clock.set(t0.plus_millis(IDLE_MS / 2));
    let expired = |key: SessionKey, user: &str| (EventKind::Expired, key, user.to_owned());

    ok(block_on(m.end(ended.as_str())), "end an expired session");
    ok(block_on(m.end(ended.as_str())), "end it again");
    ok(block_on(m.end(ann.as_str())), "end a live one");
    assert_eq!(
        drain(&events),
        [
            expired(ended.key(), "ann"),
            (EventKind::Ended(EndReason::Logout), ann.key(), "ann".into()),
        ]
    );

    assert_eq!(ok(block_on(m.end_user("bo", None)), "end_user"), 1);
    let mut got = drain(&events);
    got.sort_by_key(|e| format!("{e:?}"));
    let mut wanted: Vec<_> = many.iter().map(|&k| expired(k, "bo")).collect();
    wanted.push((
        EventKind::Ended(EndReason::EndedWithUser),
        bo.key(),
        "bo".into(),
    ));
    wanted.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(got, wanted, "end_user: the expired expired, the live ended");

    let made = create(&m, "cy", "{}");
    let mut got = drain(&events);
    got.sort_by_key(|e| format!("{e:?}"));
    let mut wanted: Vec<_> = limited.iter().map(|t| expired(t.key(), "cy")).collect();
    wanted.push((EventKind::Created, made.key(), "cy".into()));
    wanted.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(got, wanted, "a create under the limit");
    assert!(ok(block_on(m.is_active(cy.as_str())), "is_active"));

    // A third live session of di's, past the limit (a store's create has
    // none), beside the expired one: the manager's create is refused. (A
    // store may report the expired one here already.)
    let full = fresh_token().key();
    store_insert(m.store(), &full, &raw_record("di", "{}", clock.now()));
    let err = expect_err(
        block_on(m.create("di", crate::SessionData::empty(), Default::default())),
        "a create over the limit",
    );
    assert!(
        matches!(err, crate::Error::UserLimitReached { .. }),
        "{err:?}"
    );
    ok(block_on(m.purge_expired()), "purge");
    ok(block_on(m.purge_expired()), "purge again");
    assert_eq!(
        drain(&events),
        [expired(refused.key(), "di")],
        "the refused create or the purge reports it, once"
    );
    for token in &di {
        assert!(ok(block_on(m.is_active(token.as_str())), "is_active"));
    }
    assert!(ok(block_on(m.store().load(&full, clock.now())), "load").is_some());
}

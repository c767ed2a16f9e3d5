//! Through the manager: a user's sessions (`list_user`, `end_user`) and the
//! per-user session limit.

use super::IDLE_MS;
use super::helpers::{
    active, count, create, create_with_idle, data, expect_err, list, listed_keys, ok, peek, setup,
};
use crate::{
    Clock, CreateOptions, Error, LimitAction, ManualClock, SessionData, SessionKey, SessionStore,
    block_on,
};

/// `list_user` returns the user's live sessions sorted by `(created_at, key)`,
/// only the user's own, without counting as activity.
pub fn check_list_user<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let a = create(&m, "alice", r#"{"i":"a"}"#);
    let expiring = create_with_idle(&m, "alice", IDLE_MS / 2);
    clock.set(t0.plus_millis(10));
    let b = create(&m, "alice", r#"{"i":"b"}"#);
    let c = create(&m, "alice", r#"{"i":"c"}"#);
    clock.set(t0.plus_millis(20));
    let d = create(&m, "alice", r#"{"i":"d"}"#);
    let bob = create(&m, "bob", "{}");
    ok(
        block_on(m.update(a.as_str(), &data(r#"{"w":1}"#))),
        "update a",
    );

    clock.set(t0.plus_millis(IDLE_MS / 2));
    assert!(!active(&m, &expiring), "the short session has expired");
    let (b_key, c_key) = (b.key(), c.key());
    let mut expected = vec![a.key(), b_key.min(c_key), b_key.max(c_key), d.key()];
    let listed = list(&m, "alice");
    let keys: Vec<SessionKey> = listed.iter().map(|s| s.key).collect();
    assert_eq!(
        keys, expected,
        "list_user: live sessions by (created_at, key); a's write does not reorder"
    );
    for session in &listed {
        let token = [&a, &b, &c, &d]
            .into_iter()
            .find(|t| t.key() == session.key)
            .expect("listed key is one of alice's");
        assert_eq!(
            session.record,
            peek(&m, token),
            "list_user returns the stored records"
        );
    }
    assert_eq!(
        peek(&m, &b).last_active,
        t0.plus_millis(10),
        "list_user is not activity"
    );
    let bobs = listed_keys(&m, "bob");
    assert_eq!(bobs, vec![bob.key()], "list_user of another user");
    assert!(
        list(&m, "nobody").is_empty(),
        "list_user of an unknown user"
    );

    ok(block_on(m.end(b.as_str())), "end b");
    expected.retain(|k| *k != b_key);
    let keys = listed_keys(&m, "alice");
    assert_eq!(keys, expected, "list_user after ending one");
}

/// `end_user` ends all of a user's sessions except `keep` and returns how
/// many live ones ended; expired ones are not counted and other users are untouched.
pub fn check_end_user<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let a = create(&m, "alice", "{}");
    let b = create(&m, "alice", "{}");
    let expiring = create_with_idle(&m, "alice", IDLE_MS / 2);
    let bob = create(&m, "bob", "{}");
    clock.set(t0.plus_millis(IDLE_MS / 2));
    assert!(!active(&m, &expiring), "the short session has expired");

    let end_user = |user: &str, keep: Option<&str>| {
        ok(
            block_on(m.end_user(user, keep)),
            &format!("end_user({user:?})"),
        )
    };
    assert_eq!(
        end_user("alice", Some(b.as_str())),
        1,
        "end_user with keep returns the live sessions ended (expired not counted)"
    );
    assert!(!active(&m, &a), "end_user ended a");
    assert!(active(&m, &b), "end_user kept `keep`");
    assert!(active(&m, &bob), "end_user spared another user");
    assert_eq!(
        end_user("alice", Some(b.as_str())),
        0,
        "end_user with only `keep` left"
    );
    assert!(active(&m, &b), "end_user kept `keep` again");
    assert_eq!(end_user("alice", None), 1, "end_user without keep");
    assert!(!active(&m, &b), "end_user without keep ends all");
    assert!(list(&m, "alice").is_empty(), "no sessions left to list");
    assert_eq!(end_user("alice", None), 0, "end_user with nothing left");
    assert_eq!(end_user("nobody", None), 0, "end_user of an unknown user");

    let c = create(&m, "alice", "{}");
    assert_eq!(
        end_user("alice", Some(bob.as_str())),
        1,
        "keep naming another user's session"
    );
    assert!(!active(&m, &c), "alice's session ended");
    assert!(
        active(&m, &bob),
        "bob's session, named as keep, is untouched"
    );
    let d = create(&m, "alice", "{}");
    assert_eq!(
        end_user("alice", Some("not a token")),
        1,
        "keep that is not a token"
    );
    assert!(!active(&m, &d), "a malformed keep protects nothing");
    assert_eq!(count(&m), 1, "only bob's session is left");

    // More sessions than a store ends in one batch: every one ends but `keep`.
    let many: Vec<_> = (0..1_100).map(|_| create(&m, "carol", "{}")).collect();
    assert_eq!(
        end_user("carol", Some(many[700].as_str())),
        1_099,
        "end_user of 1,100 sessions, one kept"
    );
    assert!(active(&m, &many[700]), "the kept one of many");
    assert_eq!(list(&m, "carol").len(), 1, "only the kept one is listed");
    assert_eq!(count(&m), 2, "bob's and carol's kept session are left");
}

/// With `max_sessions_per_user` and `EvictOldest`, a create at the limit ends
/// the user's oldest session by `created_at` (not by activity) and spares
/// other users.
pub fn check_user_limit_evict_oldest<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |config| {
        config.max_sessions_per_user = Some(2);
        config.on_limit = LimitAction::EvictOldest;
    });
    let t0 = clock.now();
    let a = create(&m, "alice", r#"{"i":"a"}"#);
    clock.set(t0.plus_millis(10));
    let b = create(&m, "alice", r#"{"i":"b"}"#);
    let bob1 = create(&m, "bob", "{}");
    let bob2 = create(&m, "bob", "{}");
    clock.set(t0.plus_millis(20));
    ok(block_on(m.touch(a.as_str())), "touch a");
    ok(
        block_on(m.update(a.as_str(), &data(r#"{"w":1}"#))),
        "update a",
    );

    clock.set(t0.plus_millis(30));
    let c = create(&m, "alice", r#"{"i":"c"}"#);
    assert!(
        !active(&m, &a),
        "the oldest-created session is evicted, though most recently active"
    );
    assert!(active(&m, &b) && active(&m, &c), "the newer sessions stay");
    let keys = listed_keys(&m, "alice");
    assert_eq!(keys, vec![b.key(), c.key()], "list_user after an eviction");

    clock.set(t0.plus_millis(40));
    let d = create(&m, "alice", "{}");
    assert!(!active(&m, &b), "the next create evicts the next oldest");
    let keys = listed_keys(&m, "alice");
    assert_eq!(
        keys,
        vec![c.key(), d.key()],
        "list_user after two evictions"
    );
    assert!(
        active(&m, &bob1) && active(&m, &bob2),
        "another user at the limit is untouched"
    );
    assert_eq!(count(&m), 4, "count with two users at the limit");
}

/// With `max_sessions_per_user` and `Reject`, a create at the limit fails with
/// `UserLimitReached` and changes nothing; ending a session makes room.
pub fn check_user_limit_reject<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |config| {
        config.max_sessions_per_user = Some(2);
        config.on_limit = LimitAction::Reject;
    });
    let a = create(&m, "alice", r#"{"i":"a"}"#);
    clock.advance(10);
    let b = create(&m, "alice", r#"{"i":"b"}"#);
    let before = list(&m, "alice");
    clock.advance(10);
    let e = expect_err(
        block_on(m.create("alice", SessionData::empty(), CreateOptions::default())),
        "create at the limit with Reject",
    );
    assert!(
        matches!(e, Error::UserLimitReached { limit: 2 }),
        "expected UserLimitReached {{ limit: 2 }}, got {e:?}"
    );
    assert!(e.is_limit(), "is_limit on {e:?}");
    assert_eq!(
        list(&m, "alice"),
        before,
        "a rejected create changes nothing"
    );
    assert_eq!(count(&m), 2, "count after a rejected create");
    let bob = create(&m, "bob", "{}");
    assert!(active(&m, &bob), "another user is not limited");

    ok(block_on(m.end(a.as_str())), "end a");
    let c = create(&m, "alice", "{}");
    let keys = listed_keys(&m, "alice");
    assert_eq!(keys, vec![b.key(), c.key()], "ending a session makes room");
}

/// The per-user limit counts live sessions only: an expired session neither
/// blocks a `Reject` create nor makes `EvictOldest` end a live one.
pub fn check_user_limit_counts_only_live<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    for action in [LimitAction::Reject, LimitAction::EvictOldest] {
        let (m, clock) = setup(&make_store, |config| {
            config.max_sessions_per_user = Some(2);
            config.on_limit = action;
        });
        let t0 = clock.now();
        let expiring = create_with_idle(&m, "alice", IDLE_MS / 2);
        clock.set(t0.plus_millis(10));
        let b = create(&m, "alice", "{}");
        clock.set(t0.plus_millis(IDLE_MS / 2));
        assert!(!active(&m, &expiring), "{action:?}: short session expired");
        let c = ok(
            block_on(m.create("alice", SessionData::empty(), CreateOptions::default())),
            &format!("{action:?}: create when one of two sessions has expired"),
        );
        assert!(
            active(&m, &b),
            "{action:?}: the live session is not evicted"
        );
        let keys = listed_keys(&m, "alice");
        assert_eq!(
            keys,
            vec![b.key(), c.key()],
            "{action:?}: list_user after the create"
        );
    }
}

/// `end_session_by_key` ends a session by its public key, only the given
/// user's: another user's key is as unknown as a key that names nothing.
pub fn check_end_session_by_key<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, _) = setup(&make_store, |_| {});
    let phone = create(&m, "alice", r#"{"device":"phone"}"#);
    let laptop = create(&m, "alice", r#"{"device":"laptop"}"#);
    let bob = create(&m, "bob", "{}");
    let end = |user: &str, key: &str| ok(block_on(m.end_session_by_key(user, key)), "end by key");
    let phone_key = phone.key().to_hex();

    assert!(!end("bob", &phone_key), "bob cannot end alice's session");
    assert!(active(&m, &phone), "and it stays live");
    assert!(!end("alice", &bob.key().to_hex()), "nor alice bob's");
    assert!(active(&m, &bob));
    assert!(
        end("alice", &phone_key.to_uppercase()),
        "alice ends her phone"
    );
    assert!(!active(&m, &phone));
    assert!(active(&m, &laptop), "her laptop stays");
    assert!(!end("alice", &phone_key), "ending it again ends nothing");
    assert!(!end("alice", &"0".repeat(64)), "a key that names nothing");
    assert_eq!(list(&m, "alice").len(), 1);

    for bad in ["", "xyz", &phone_key[..63], laptop.as_str()] {
        let err = expect_err(block_on(m.end_session_by_key("alice", bad)), "a bad key");
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
        assert!(err.to_string().contains("64 hex digits"), "{err}");
        assert!(
            !err.to_string().contains(bad) || bad.is_empty(),
            "echoes {bad:?}: {err}"
        );
    }
    let err = expect_err(
        block_on(m.end_session_by_key("alice", laptop.as_str())),
        "an id",
    );
    assert!(err.to_string().contains("looks like a session id"), "{err}");
    assert!(active(&m, &laptop), "a refused call ends nothing");
    let err = expect_err(block_on(m.end_session_by_key("", &phone_key)), "no user");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

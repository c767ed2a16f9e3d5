//! The [`SessionStore`](crate::SessionStore) contract, called directly.

use super::IDLE_MS;
use super::helpers::{
    data, fresh_token, ok, raw_record, raw_store, store_insert, store_listed_keys,
};
use crate::{
    Clock, CreateOutcome, ManualClock, SaveOutcome, SessionKey, SessionRecord, SessionStore,
    Timestamp, UserLimit, block_on,
};

/// `SessionStore::create` stores the record as given and `load` returns it
/// unchanged; `list_user` and `count` see it.
pub fn check_store_create_load<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let now = clock.now();
    let key = fresh_token().key();
    let mut record = raw_record("alice", r#"{"b":1,"a":[1,{"x":null}],"s":"é\n"}"#, now);
    record.absolute_expires_at = Some(now.plus_millis(2 * IDLE_MS));
    assert_eq!(
        ok(
            block_on(store.create(&key, &record, None, now)),
            "store create"
        ),
        CreateOutcome::Created { evicted: 0 },
        "store create of a new key"
    );
    assert_eq!(
        ok(block_on(store.load(&key, now)), "store load"),
        Some(record.clone()),
        "store load returns exactly what was created"
    );
    assert_eq!(
        ok(
            block_on(store.load(&fresh_token().key(), now)),
            "store load"
        ),
        None,
        "store load of an unknown key"
    );
    let listed = ok(block_on(store.list_user("alice", now)), "store list_user");
    assert_eq!(
        listed,
        vec![(key, record.clone())],
        "store list_user of the owner"
    );
    assert!(
        ok(block_on(store.list_user("bob", now)), "store list_user").is_empty(),
        "store list_user of another user"
    );
    assert_eq!(
        ok(block_on(store.count(now)), "store count"),
        1,
        "store count"
    );
    let later = now.plus_millis(IDLE_MS - 1);
    assert_eq!(
        ok(block_on(store.load(&key, later)), "store load"),
        Some(record.clone()),
        "store load 1 ms before expires_at"
    );
    assert_eq!(
        ok(block_on(store.load(&key, record.expires_at)), "store load"),
        None,
        "store load at expires_at"
    );
    assert_eq!(
        ok(block_on(store.count(record.expires_at)), "store count"),
        0,
        "store count at expires_at"
    );
    assert!(
        ok(
            block_on(store.list_user("alice", record.expires_at)),
            "store list_user"
        )
        .is_empty(),
        "store list_user at expires_at"
    );
}

/// `SessionStore::create` on a key whose record has expired but may not be
/// swept yet replaces it: an expired record is as good as absent, and the
/// new owner's listings show it.
pub fn check_store_create_over_expired<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let key = fresh_token().key();
    let old = raw_record("alice", r#"{"old":true}"#, clock.now());
    store_insert(&store, &key, &old);
    clock.advance(IDLE_MS);
    let now = clock.now();
    assert_eq!(ok(block_on(store.load(&key, now)), "load"), None, "expired");
    let new = raw_record("bob", r#"{"new":true}"#, now);
    assert_eq!(
        ok(block_on(store.create(&key, &new, None, now)), "create"),
        CreateOutcome::Created { evicted: 0 },
        "store create over an expired record"
    );
    assert_eq!(
        ok(block_on(store.load(&key, now)), "load"),
        Some(new.clone()),
        "the new record replaced the expired one"
    );
    assert_eq!(
        store_listed_keys(&store, "bob", now),
        vec![key],
        "the new owner lists it"
    );
    assert_eq!(
        ok(block_on(store.count(now)), "count"),
        1,
        "one record counted"
    );
    let again = raw_record("bob", "{}", now);
    assert_eq!(
        ok(block_on(store.create(&key, &again, None, now)), "create"),
        CreateOutcome::KeyTaken,
        "the new record is live, so the key is taken again"
    );
}

/// `SessionStore::create` on a key that holds a live record returns
/// `KeyTaken` and writes nothing: not the new record and, with a user limit,
/// no eviction either.
pub fn check_store_create_key_taken<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let now = clock.now();
    let key = fresh_token().key();
    let original = raw_record("alice", r#"{"original":true}"#, now);
    store_insert(&store, &key, &original);
    let load = |what: &str| ok(block_on(store.load(&key, now)), what);

    let intruder = raw_record("mallory", r#"{"intruder":true}"#, now);
    assert_eq!(
        ok(block_on(store.create(&key, &intruder, None, now)), "create"),
        CreateOutcome::KeyTaken,
        "store create on a taken key (other user)"
    );
    let same_user = raw_record("alice", r#"{"second":true}"#, now);
    assert_eq!(
        ok(
            block_on(store.create(&key, &same_user, None, now)),
            "create"
        ),
        CreateOutcome::KeyTaken,
        "store create on a taken key (same user)"
    );
    assert_eq!(
        load("load"),
        Some(original.clone()),
        "KeyTaken left the record"
    );

    let other_key = fresh_token().key();
    let mallory_own = raw_record("mallory", "{}", now);
    store_insert(&store, &other_key, &mallory_own);
    let evicting = UserLimit {
        max_sessions: 1,
        evict_oldest: true,
    };
    assert_eq!(
        ok(
            block_on(store.create(&key, &intruder, Some(evicting), now)),
            "create"
        ),
        CreateOutcome::KeyTaken,
        "store create with an evicting limit on another user's key"
    );
    assert_eq!(
        ok(block_on(store.load(&other_key, now)), "load"),
        Some(mallory_own.clone()),
        "KeyTaken evicted none of the creating user's sessions"
    );
    assert_eq!(
        ok(
            block_on(store.create(&key, &same_user, Some(evicting), now)),
            "create"
        ),
        CreateOutcome::KeyTaken,
        "store create with an evicting limit on the same user's own key"
    );
    assert_eq!(
        load("load"),
        Some(original.clone()),
        "KeyTaken with a limit left the record (no evict-then-overwrite)"
    );
    let rejecting = UserLimit {
        max_sessions: 1,
        evict_oldest: false,
    };
    let outcome = ok(
        block_on(store.create(&key, &same_user, Some(rejecting), now)),
        "create",
    );
    assert!(
        matches!(
            outcome,
            CreateOutcome::KeyTaken | CreateOutcome::UserLimitReached
        ),
        "store create on a taken key at a rejecting limit: got {outcome:?}"
    );
    assert_eq!(
        load("load"),
        Some(original),
        "a refused create left the record"
    );
    assert_eq!(ok(block_on(store.count(now)), "count"), 2, "store count");
}

/// `SessionStore::create` with a `UserLimit` reports how many sessions it
/// evicted, evicts oldest `created_at` first, refuses with
/// `UserLimitReached` when not evicting, and ignores expired sessions.
pub fn check_store_user_limit<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let t0 = clock.now();
    let keys: Vec<SessionKey> = (0..4).map(|_| fresh_token().key()).collect();
    for (i, key) in keys.iter().take(3).enumerate() {
        store_insert(
            &store,
            key,
            &raw_record("alice", "{}", t0.plus_millis(i as i64)),
        );
    }
    let now = t0.plus_millis(10);
    let reject = UserLimit {
        max_sessions: 3,
        evict_oldest: false,
    };
    let newcomer = raw_record("alice", "{}", now);
    assert_eq!(
        ok(
            block_on(store.create(&keys[3], &newcomer, Some(reject), now)),
            "create"
        ),
        CreateOutcome::UserLimitReached,
        "store create at a rejecting limit"
    );
    assert_eq!(
        ok(block_on(store.load(&keys[3], now)), "load"),
        None,
        "a rejected create wrote nothing"
    );
    assert_eq!(
        ok(block_on(store.count(now)), "count"),
        3,
        "a rejected create evicted nothing"
    );
    let evict = UserLimit {
        max_sessions: 2,
        evict_oldest: true,
    };
    assert_eq!(
        ok(
            block_on(store.create(&keys[3], &newcomer, Some(evict), now)),
            "create"
        ),
        CreateOutcome::Created { evicted: 2 },
        "store create evicting down to max_sessions - 1 before adding"
    );
    assert_eq!(
        store_listed_keys(&store, "alice", now),
        vec![keys[2], keys[3]],
        "the two oldest by created_at were evicted"
    );

    // Expired sessions do not count towards the limit.
    let expires = ok(block_on(store.load(&keys[2], now)), "load")
        .expect("keys[2] is live")
        .expires_at;
    let bob_old = fresh_token().key();
    let mut short = raw_record("bob", "{}", now);
    short.expires_at = now.plus_millis(5);
    store_insert(&store, &bob_old, &short);
    let later = now.plus_millis(5);
    assert!(later < expires, "alice's sessions are still live");
    let bob_new = fresh_token().key();
    let one = UserLimit {
        max_sessions: 1,
        evict_oldest: false,
    };
    assert_eq!(
        ok(
            block_on(store.create(&bob_new, &raw_record("bob", "{}", later), Some(one), later)),
            "create"
        ),
        CreateOutcome::Created { evicted: 0 },
        "an expired session does not count towards a rejecting limit"
    );
}

/// `SessionStore::save` is compare-and-set on the version (`Conflict { actual }`
/// otherwise), `NotFound` for missing and expired records, and never moves
/// `last_active` or `expires_at` backwards.
pub fn check_store_save_cas<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let t0 = clock.now();
    let key = fresh_token().key();
    let record = raw_record("alice", r#"{"v":1}"#, t0);
    store_insert(&store, &key, &record);
    let load = |now: Timestamp| ok(block_on(store.load(&key, now)), "load");
    let save = |next: &SessionRecord, expected: u64, now: Timestamp| {
        ok(
            block_on(store.save(&key, next, expected, now)),
            &format!("save expecting version {expected}"),
        )
    };

    let mut next = record.clone();
    next.data = data(r#"{"v":2}"#);
    next.version = 2;
    assert_eq!(
        save(&next, 5, t0),
        SaveOutcome::Conflict { actual: 1 },
        "save with a wrong expected version"
    );
    assert_eq!(
        load(t0),
        Some(record.clone()),
        "a conflicting save wrote nothing"
    );
    assert_eq!(
        save(&next, 1, t0),
        SaveOutcome::Saved,
        "save at the right version"
    );
    assert_eq!(load(t0), Some(next.clone()), "the saved record is stored");
    assert_eq!(
        save(&next, 1, t0),
        SaveOutcome::Conflict { actual: 2 },
        "a second save based on the old version"
    );

    let mut backwards = next.clone();
    backwards.version = 3;
    backwards.data = data(r#"{"v":3}"#);
    backwards.last_active = t0.plus_millis(-1_000);
    backwards.expires_at = t0.plus_millis(10);
    assert_eq!(save(&backwards, 2, t0), SaveOutcome::Saved, "save");
    let stored = load(t0).expect("saved record is live");
    assert_eq!(
        (
            stored.version,
            stored.data.as_json(),
            stored.last_active,
            stored.expires_at
        ),
        (3, r#"{"v":3}"#, t0, t0.plus_millis(IDLE_MS)),
        "save writes version and data but never moves last_active or expires_at backwards"
    );
    let t1 = t0.plus_millis(500);
    let mut forwards = stored.clone();
    forwards.version = 4;
    forwards.last_active = t1;
    forwards.expires_at = t1.plus_millis(IDLE_MS);
    assert_eq!(save(&forwards, 3, t1), SaveOutcome::Saved, "save");
    assert_eq!(
        load(t1),
        Some(forwards.clone()),
        "save moves last_active and expires_at forwards"
    );

    let missing = fresh_token().key();
    assert_eq!(
        ok(
            block_on(store.save(&missing, &forwards, 4, t1)),
            "save missing"
        ),
        SaveOutcome::NotFound,
        "save under an unknown key"
    );
    assert_eq!(
        ok(block_on(store.load(&missing, t1)), "load"),
        None,
        "save never creates a record"
    );
    let deadline = forwards.expires_at;
    let mut revive = forwards.clone();
    revive.version = 5;
    revive.expires_at = deadline.plus_millis(IDLE_MS);
    assert_eq!(
        save(&revive, 4, deadline),
        SaveOutcome::NotFound,
        "save on a record expired at `now`"
    );
    assert_eq!(
        load(deadline.plus_millis(-1)).map(|r| (r.version, r.expires_at)),
        Some((4, deadline)),
        "a save on an expired record revived nothing"
    );
}

/// `SessionStore::touch` moves `last_active` and `expires_at` forward only
/// (each independently), keeps data and version, and answers `false` for
/// missing and expired records without reviving them.
pub fn check_store_touch<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let t0 = clock.now();
    let key = fresh_token().key();
    let record = raw_record("alice", r#"{"v":1}"#, t0);
    store_insert(&store, &key, &record);
    let touch = |last: Timestamp, expires: Timestamp, now: Timestamp| {
        ok(block_on(store.touch(&key, last, expires, now)), "touch")
    };
    let times = |now: Timestamp| {
        let r = ok(block_on(store.load(&key, now)), "load").expect("record is live");
        assert_eq!(
            (r.version, r.data.as_json()),
            (1, r#"{"v":1}"#),
            "touch keeps data and version"
        );
        (r.last_active, r.expires_at)
    };
    let t1 = t0.plus_millis(100);
    assert!(
        touch(t1, t1.plus_millis(IDLE_MS), t1),
        "touch a live record"
    );
    assert_eq!(
        times(t1),
        (t1, t1.plus_millis(IDLE_MS)),
        "touch moves both forward"
    );
    assert!(touch(t0, t0.plus_millis(IDLE_MS), t1), "touch backwards");
    assert_eq!(
        times(t1),
        (t1, t1.plus_millis(IDLE_MS)),
        "touch never moves times backwards"
    );
    let t2 = t0.plus_millis(200);
    assert!(
        touch(t2, t0.plus_millis(IDLE_MS), t2),
        "touch with a later last_active only"
    );
    assert_eq!(
        times(t2),
        (t2, t1.plus_millis(IDLE_MS)),
        "touch takes the later of each time independently"
    );
    assert!(
        touch(t0, t2.plus_millis(IDLE_MS), t2),
        "touch with a later expires_at only"
    );
    assert_eq!(
        times(t2),
        (t2, t2.plus_millis(IDLE_MS)),
        "touch takes the later of each time independently"
    );

    let missing = fresh_token().key();
    assert!(
        !ok(
            block_on(store.touch(&missing, t2, t2.plus_millis(IDLE_MS), t2)),
            "touch missing"
        ),
        "touch of an unknown key is false"
    );
    assert_eq!(
        ok(block_on(store.load(&missing, t2)), "load"),
        None,
        "touch never creates a record"
    );
    let deadline = t2.plus_millis(IDLE_MS);
    assert!(
        !touch(deadline, deadline.plus_millis(IDLE_MS), deadline),
        "touch of a record expired at `now` is false"
    );
    assert_eq!(
        times(deadline.plus_millis(-1)),
        (t2, deadline),
        "touching an expired record revived nothing"
    );
    assert_eq!(
        ok(block_on(store.load(&key, deadline)), "load"),
        None,
        "still expired"
    );
}

/// `SessionStore::delete` answers whether a live record was removed;
/// `SessionStore::rotate` moves a live record to a new key atomically and
/// answers `false` for missing and expired ones.
pub fn check_store_delete_rotate<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let now = clock.now();
    let (a, b, c) = (
        fresh_token().key(),
        fresh_token().key(),
        fresh_token().key(),
    );
    let rec_a = raw_record("alice", r#"{"i":"a"}"#, now);
    let rec_b = raw_record("alice", r#"{"i":"b"}"#, now.plus_millis(1));
    let rec_c = raw_record("alice", r#"{"i":"c"}"#, now.plus_millis(2));
    let later = now.plus_millis(2);
    for (key, record) in [(&a, &rec_a), (&b, &rec_b), (&c, &rec_c)] {
        store_insert(&store, key, record);
    }
    let delete = |key: &SessionKey, at: Timestamp| ok(block_on(store.delete(key, at)), "delete");
    assert!(delete(&a, later), "delete a live record is true");
    assert!(!delete(&a, later), "delete it again is false");
    assert!(
        !delete(&fresh_token().key(), later),
        "delete an unknown key is false"
    );
    assert_eq!(
        ok(block_on(store.load(&a, later)), "load"),
        None,
        "deleted record is gone"
    );

    let n = fresh_token().key();
    assert!(
        ok(block_on(store.rotate(&b, &n, later)), "rotate"),
        "rotate a live record"
    );
    assert_eq!(
        ok(block_on(store.load(&b, later)), "load"),
        None,
        "the old key is gone"
    );
    assert_eq!(
        ok(block_on(store.load(&n, later)), "load"),
        Some(rec_b.clone()),
        "the new key holds the record unchanged"
    );
    assert_eq!(
        store_listed_keys(&store, "alice", later),
        vec![n, c],
        "list_user sees the new key, not the old"
    );
    assert_eq!(
        ok(block_on(store.count(later)), "count"),
        2,
        "rotate keeps count"
    );
    let n2 = fresh_token().key();
    assert!(
        !ok(block_on(store.rotate(&b, &n2, later)), "rotate"),
        "rotate from a key already rotated away is false"
    );
    assert!(
        !ok(
            block_on(store.rotate(&fresh_token().key(), &n2, later)),
            "rotate"
        ),
        "rotate an unknown key is false"
    );
    assert_eq!(
        ok(block_on(store.load(&n2, later)), "load"),
        None,
        "a failed rotate creates nothing"
    );

    let expired = rec_c.expires_at;
    assert!(
        !ok(block_on(store.rotate(&c, &n2, expired)), "rotate"),
        "rotate a record expired at `now` is false"
    );
    assert_eq!(
        ok(block_on(store.load(&n2, expired.plus_millis(-1))), "load"),
        None,
        "rotating an expired record creates nothing"
    );
    assert!(
        !delete(&c, expired),
        "delete of a record expired at `now` is false"
    );
    assert_eq!(
        ok(block_on(store.load(&c, expired.plus_millis(-1))), "load"),
        None,
        "delete removes an expired record too"
    );
    assert_eq!(
        ok(
            block_on(store.delete_user("alice", None, later)),
            "delete_user"
        ),
        1,
        "store delete_user returns the live sessions ended"
    );
    assert_eq!(ok(block_on(store.count(later)), "count"), 0, "nothing left");
}

/// `SessionStore::rotate` onto a key that already holds a record is all or
/// nothing: it fails with `Error::RotationTargetTaken` and both records
/// stay as they were.
pub fn check_store_rotate_onto_taken_key<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let now = clock.now();
    let (old, taken) = (fresh_token().key(), fresh_token().key());
    let old_record = raw_record("alice", r#"{"i":"old"}"#, now);
    let taken_record = raw_record("bob", r#"{"i":"taken"}"#, now);
    for (key, record) in [(&old, &old_record), (&taken, &taken_record)] {
        store_insert(&store, key, record);
    }
    let outcome = block_on(store.rotate(&old, &taken, now));
    assert!(
        matches!(&outcome, Err(e) if e.is_rotation_target_taken()),
        "rotate onto a taken key must fail with Error::RotationTargetTaken, got {outcome:?}"
    );
    assert_eq!(
        ok(block_on(store.load(&old, now)), "load"),
        Some(old_record.clone()),
        "a failed rotate leaves the old record under the old key"
    );
    assert_eq!(
        ok(block_on(store.load(&taken, now)), "load"),
        Some(taken_record),
        "a failed rotate leaves the target's record"
    );
    let listed = ok(block_on(store.list_user("alice", now)), "list_user");
    assert_eq!(
        listed,
        vec![(old, old_record)],
        "a failed rotate leaves the user's list"
    );
    assert_eq!(ok(block_on(store.count(now)), "count"), 2, "store count");
}

//! Through the manager: housekeeping (`count`, `purge_expired`) and
//! shutdown (`close`).

use super::IDLE_MS;
use super::helpers::{
    active, count, create, create_with_idle, data, expect_err, fresh_token, list, ok, purge,
    raw_record, setup,
};
use crate::{
    Clock, CreateOptions, Error, ManualClock, Result, SessionData, SessionStore, SessionToken,
    block_on,
};

/// `count` counts live sessions only; `purge_expired` removes expired records
/// and returns how many it removed.
pub fn check_purge_and_count<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    assert_eq!(count(&m), 0, "count of an empty store");
    assert_eq!(purge(&m), 0, "purge of an empty store");
    let long: Vec<SessionToken> = ["alice", "alice", "bob"]
        .into_iter()
        .map(|user| create(&m, user, "{}"))
        .collect();
    let short: Vec<SessionToken> = ["alice", "carol"]
        .into_iter()
        .map(|user| create_with_idle(&m, user, IDLE_MS / 2))
        .collect();
    let ended = create(&m, "bob", "{}");
    ok(block_on(m.end(ended.as_str())), "end");
    assert_eq!(count(&m), 5, "count of live sessions");

    clock.set(t0.plus_millis(IDLE_MS / 2));
    assert_eq!(count(&m), 3, "count skips expired, unpurged sessions");
    assert_eq!(
        purge(&m),
        2,
        "purge_expired removes the two expired records"
    );
    assert_eq!(purge(&m), 0, "a second purge finds nothing");
    assert_eq!(count(&m), 3, "purge leaves live sessions");
    assert!(long.iter().all(|t| active(&m, t)), "long sessions live");
    assert!(short.iter().all(|t| !active(&m, t)), "short sessions gone");
    assert!(list(&m, "carol").is_empty(), "purged user lists nothing");

    clock.set(t0.plus_millis(IDLE_MS));
    assert_eq!(count(&m), 0, "count after everything expired");
    assert_eq!(purge(&m), 3, "purge the rest");
    assert_eq!(count(&m), 0, "count after purging everything");
}

/// After `close`, every operation fails with `Error::Closed`; closing again is fine.
pub fn check_closed<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let token = create(&m, "alice", "{}");
    let t = token.as_str();
    ok(block_on(m.close()), "close");
    ok(block_on(m.close()), "close a closed manager again");
    let closed = |result: Result<()>, what: &str| {
        let e = expect_err(result, &format!("{what} after close"));
        assert!(
            matches!(e, Error::Closed),
            "{what} after close: expected Error::Closed, got {e:?}"
        );
    };
    let create_result = block_on(m.create("alice", SessionData::empty(), CreateOptions::default()));
    closed(create_result.map(drop), "create");
    closed(block_on(m.get(t)).map(drop), "get");
    closed(block_on(m.peek(t)).map(drop), "peek");
    closed(block_on(m.is_active(t)).map(drop), "is_active");
    closed(block_on(m.end(t)), "end");
    closed(block_on(m.touch(t)), "touch");
    closed(block_on(m.update(t, &data("{}"))).map(drop), "update");
    closed(
        block_on(m.set_data(t, data("{}"), None)).map(drop),
        "set_data",
    );
    closed(block_on(m.increment(t, "n", 1)).map(drop), "increment");
    closed(block_on(m.rotate(t)).map(drop), "rotate");
    closed(block_on(m.list_user("alice")).map(drop), "list_user");
    closed(block_on(m.end_user("alice", None)).map(drop), "end_user");
    closed(block_on(m.purge_expired()).map(drop), "purge_expired");
    closed(block_on(m.count()).map(drop), "count");
    let (s, now, key) = (m.store(), clock.now(), token.key());
    let record = raw_record("alice", "{}", now);
    closed(
        block_on(s.create(&fresh_token().key(), &record, None, now)).map(drop),
        "store create",
    );
    closed(block_on(s.load(&key, now)).map(drop), "store load");
    closed(
        block_on(s.save(&key, &record, 1, now)).map(drop),
        "store save",
    );
    closed(
        block_on(s.touch(&key, now, now, now)).map(drop),
        "store touch",
    );
    closed(block_on(s.delete(&key, now)).map(drop), "store delete");
}

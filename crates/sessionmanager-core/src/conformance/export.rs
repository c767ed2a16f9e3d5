//! Through the manager: exporting every live session page by page and
//! importing them into another store as they were.

use std::collections::BTreeMap;

use super::IDLE_MS;
use super::helpers::{
    count, create, create_with_idle, data, expect_err, listed_keys, ok, peek, setup,
};
use crate::{
    Clock, Error, ExportCursor, ImportOutcome, ManualClock, SessionKey, SessionManager,
    SessionRecord, SessionStore, block_on,
};

/// Every page from the start, as one map (a store may repeat a session
/// across pages; its copies must agree).
fn export_all<S: SessionStore>(
    m: &SessionManager<S>,
    limit: u32,
) -> BTreeMap<SessionKey, SessionRecord> {
    let mut all = BTreeMap::new();
    let mut cursor = ExportCursor::start();
    for _ in 0..10_000 {
        let page = ok(block_on(m.export_page(&cursor, limit)), "export_page");
        for (key, record) in page.sessions {
            if let Some(earlier) = all.insert(key, record.clone()) {
                assert_eq!(earlier, record, "a session exported twice differs");
            }
        }
        match page.next {
            Some(next) => cursor = next,
            None => return all,
        }
    }
    panic!("the export never ended");
}

fn import<S: SessionStore>(
    m: &SessionManager<S>,
    key: &SessionKey,
    record: &SessionRecord,
) -> ImportOutcome {
    ok(block_on(m.import(key, record)), "import")
}

/// An export yields every live session (ended and expired ones not), over
/// as many pages as it takes; imported into another store each opens
/// there by its old token with the same user, data, version and times, and
/// its user lists it. Importing again changes nothing; a newer copy of a
/// session brings the target forward, an older one does not, an expired
/// one is skipped; a key held by another user there is refused and left
/// alone. A bad cursor or page size is an `InvalidArgument`.
pub fn check_export_import<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (from, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let tokens: Vec<_> = (0..23)
        .map(|i| create(&from, &format!("user{}", i % 5), &format!(r#"{{"i":{i}}}"#)))
        .collect();
    let short: Vec<_> = (0..3)
        .map(|_| create_with_idle(&from, "user0", IDLE_MS / 2))
        .collect();
    ok(block_on(from.end(tokens[0].as_str())), "end");
    ok(
        block_on(from.update(tokens[1].as_str(), &data(r#"{"x":1}"#))),
        "update",
    );
    clock.set(t0.plus_millis(IDLE_MS / 2));
    let live = &tokens[1..];

    let exported = export_all(&from, 4);
    let expected: BTreeMap<_, _> = live.iter().map(|t| (t.key(), peek(&from, t))).collect();
    assert_eq!(
        exported, expected,
        "the export is every live session, as stored"
    );
    assert!(
        short.iter().all(|t| !exported.contains_key(&t.key())),
        "expired ones are not"
    );
    let first = ok(
        block_on(from.export_page(&ExportCursor::start(), 4)),
        "page",
    );
    assert!(
        !first.sessions.is_empty(),
        "the first page of 22 live sessions"
    );

    let (to, to_clock) = setup(&make_store, |_| {});
    to_clock.set(clock.now());
    for (key, record) in &exported {
        assert_eq!(import(&to, key, record), ImportOutcome::Created);
    }
    for token in live {
        assert_eq!(
            peek(&to, token),
            peek(&from, token),
            "opens in the target as it was"
        );
    }
    assert_eq!(count(&to), 22);
    assert_eq!(listed_keys(&to, "user2"), listed_keys(&from, "user2"));
    for (key, record) in &exported {
        assert_eq!(
            import(&to, key, record),
            ImportOutcome::Unchanged,
            "a second run"
        );
    }

    let older = exported[&tokens[2].key()].clone();
    ok(
        block_on(from.update(tokens[2].as_str(), &data(r#"{"y":2}"#))),
        "update",
    );
    let newer = peek(&from, &tokens[2]);
    let key = tokens[2].key();
    assert_eq!(import(&to, &key, &newer), ImportOutcome::Updated);
    assert_eq!(import(&to, &key, &older), ImportOutcome::Unchanged);
    assert_eq!(peek(&to, &tokens[2]), newer, "the newer copy stays");

    let mut expired = exported[&tokens[3].key()].clone();
    expired.expires_at = clock.now();
    let fresh = SessionKey::of("a key no session has");
    assert_eq!(import(&to, &fresh, &expired), ImportOutcome::Expired);

    let mut stolen = exported[&tokens[4].key()].clone();
    stolen.user_id = "mallory".into();
    stolen.version += 5;
    let e = expect_err(
        block_on(to.import(&tokens[4].key(), &stolen)),
        "import over another user",
    );
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert_eq!(
        peek(&to, &tokens[4]),
        exported[&tokens[4].key()],
        "left alone"
    );

    // The same, many at a time, as a migration imports.
    let (third, third_clock) = setup(&make_store, |_| {});
    third_clock.set(clock.now());
    let batch: Vec<_> = exported.iter().map(|(k, r)| (*k, r.clone())).collect();
    let many = |sessions: &[(SessionKey, SessionRecord)]| {
        ok(block_on(third.import_many(sessions)), "import_many")
    };
    assert!(many(&batch).iter().all(|o| *o == ImportOutcome::Created));
    assert!(
        many(&batch).iter().all(|o| *o == ImportOutcome::Unchanged),
        "a second run"
    );
    let mixed = [
        (key, newer.clone()),
        (tokens[5].key(), exported[&tokens[5].key()].clone()),
        (fresh, expired),
    ];
    use ImportOutcome::{Expired, Unchanged, Updated};
    assert_eq!(many(&mixed), [Updated, Unchanged, Expired]);
    assert_eq!(peek(&third, &tokens[2]), newer);
    let e = expect_err(
        block_on(third.import_many(&[(tokens[4].key(), stolen)])),
        "import_many over another user",
    );
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert_eq!(
        peek(&third, &tokens[4]),
        exported[&tokens[4].key()],
        "left alone"
    );
    assert_eq!(count(&third), 22);

    for bad in ["not a cursor", "-1", "9999:zz"] {
        let e = expect_err(block_on(to.export_page(&ExportCursor::new(bad), 4)), bad);
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e:?}");
    }
    for limit in [0, crate::MAX_EXPORT_PAGE + 1] {
        let e = expect_err(
            block_on(to.export_page(&ExportCursor::start(), limit)),
            "limit",
        );
        assert!(matches!(e, Error::InvalidArgument(_)), "{limit}: {e:?}");
    }
}

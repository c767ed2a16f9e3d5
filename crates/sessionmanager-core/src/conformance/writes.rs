//! Through the manager: writes (`update`, `set_data` with compare-and-set,
//! `increment`, `rotate`).

use super::IDLE_MS;
use super::helpers::{
    active, assert_invalid_data, count, create, data, expect_err, expect_not_found, fresh_token,
    listed_keys, ok, peek, setup, too_big,
};
use crate::{Clock, DataErrorKind, Error, ManualClock, SessionData, SessionStore, block_on};

/// `update` merges top-level keys (existing keys keep their place, new ones
/// are appended), bumps the version, records activity, and changes nothing
/// when it fails.
pub fn check_update_merges<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let token = create(&m, "alice", r#"{"a":1,"b":{"x":1},"z":"last"}"#);
    let t1 = t0.plus_millis(1_000);
    clock.set(t1);
    let version = ok(
        block_on(m.update(token.as_str(), &data(r#"{"b":{"y":2},"c":3}"#))),
        "update",
    );
    assert_eq!(version, 2, "update returns the new version");
    let r = peek(&m, &token);
    assert_eq!(
        r.data.as_json(),
        r#"{"a":1,"b":{"y":2},"z":"last","c":3}"#,
        "update replaces top-level values in place and appends new keys"
    );
    assert_eq!(
        (r.version, r.last_active, r.expires_at),
        (2, t1, t1.plus_millis(IDLE_MS)),
        "update bumps the version and records activity"
    );
    let version = ok(
        block_on(m.update(token.as_str(), &data(r#"{"a":null}"#))),
        "update to null",
    );
    assert_eq!(version, 3, "second update's version");
    assert_eq!(
        peek(&m, &token).data.as_json(),
        r#"{"a":null,"b":{"y":2},"z":"last","c":3}"#,
        "null is a value, not a deletion"
    );

    let e = expect_err(
        block_on(m.update(token.as_str(), &too_big())),
        "update over max_bytes",
    );
    assert_invalid_data(&e, DataErrorKind::Value, "update over max_bytes");
    let r = peek(&m, &token);
    assert_eq!(
        (r.version, r.data.as_json()),
        (3, r#"{"a":null,"b":{"y":2},"z":"last","c":3}"#),
        "a refused update changes nothing"
    );

    ok(block_on(m.end(token.as_str())), "end");
    expect_not_found(
        block_on(m.update(token.as_str(), &data(r#"{"a":1}"#))),
        "update an ended session",
    );
}

/// `set_data` replaces the data; with `expected_version` it writes only at
/// that version, else fails with `Conflict { expected, actual }` and changes nothing.
pub fn check_set_data_cas<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, _clock) = setup(&make_store, |_| {});
    let token = create(&m, "alice", r#"{"a":1}"#);
    let t = token.as_str();
    assert_eq!(
        ok(
            block_on(m.set_data(t, data(r#"{"z":true}"#), None)),
            "set_data"
        ),
        2,
        "set_data without expected_version returns the new version"
    );
    assert_eq!(
        peek(&m, &token).data.as_json(),
        r#"{"z":true}"#,
        "set_data replaces, not merges"
    );
    assert_eq!(
        ok(
            block_on(m.set_data(t, data(r#"{"n":1}"#), Some(2))),
            "set_data at the current version",
        ),
        3,
        "set_data at the expected version"
    );
    for stale in [2, 0, 99] {
        let e = expect_err(
            block_on(m.set_data(t, data(r#"{"lost":1}"#), Some(stale))),
            &format!("set_data expecting version {stale} when it is 3"),
        );
        assert!(
            matches!(e, Error::Conflict { expected, actual: 3 } if expected == stale),
            "set_data expecting {stale}: expected Conflict \
             {{ expected: {stale}, actual: 3 }}, got {e:?}"
        );
        assert!(e.is_conflict(), "is_conflict on {e:?}");
    }
    let r = peek(&m, &token);
    assert_eq!(
        (r.version, r.data.as_json()),
        (3, r#"{"n":1}"#),
        "conflicting set_data changed nothing"
    );
    ok(block_on(m.update(t, &data(r#"{"m":2}"#))), "update");
    let e = expect_err(
        block_on(m.set_data(t, data("{}"), Some(3))),
        "set_data based on a version another write replaced",
    );
    assert!(
        matches!(
            e,
            Error::Conflict {
                expected: 3,
                actual: 4
            }
        ),
        "after an update: expected Conflict {{ expected: 3, actual: 4 }}, got {e:?}"
    );
    let e = expect_err(
        block_on(m.set_data(t, too_big(), Some(4))),
        "set_data over max_bytes",
    );
    assert_invalid_data(&e, DataErrorKind::Value, "set_data over max_bytes");
    let r = peek(&m, &token);
    assert_eq!(
        (r.version, r.data.as_json()),
        (4, r#"{"n":1,"m":2}"#),
        "refused set_data changed nothing"
    );
    ok(block_on(m.end(t)), "end");
    expect_not_found(
        block_on(m.set_data(t, data("{}"), None)),
        "set_data on an ended session",
    );
    expect_not_found(
        block_on(m.set_data(t, data("{}"), Some(4))),
        "set_data with expected_version on an ended session",
    );
}

/// `increment` counts a missing key from 0, returns the new value, and
/// refuses non-integers (`InvalidData` of kind `Type`) and overflow (kind
/// `Value`) without changing anything.
pub fn check_increment<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, _clock) = setup(&make_store, |_| {});
    let initial = concat!(
        r#"{"name":"x","f":1.5,"flag":true,"none":null,"list":[1],"obj":{},"#,
        r#""max":9223372036854775807,"min":-9223372036854775808,"u":18446744073709551615}"#,
    );
    let token = create(&m, "alice", initial);
    let t = token.as_str();
    let incr = |key: &str, by: i64| ok(block_on(m.increment(t, key, by)), "increment");
    assert_eq!(incr("hits", 1), 1, "increment of a missing key starts at 0");
    assert_eq!(incr("hits", 5), 6, "increment adds");
    assert_eq!(incr("hits", -10), -4, "increment by a negative amount");
    assert_eq!(incr("max", -1), i64::MAX - 1, "decrement from i64::MAX");
    assert_eq!(incr("max", 1), i64::MAX, "increment back to i64::MAX");
    assert_eq!(incr("min", 0), i64::MIN, "increment of i64::MIN by 0");
    let r = peek(&m, &token);
    assert_eq!(r.version, 7, "each increment bumps the version");
    let expected = format!("{}{}", &initial[..initial.len() - 1], r#","hits":-4}"#);
    assert_eq!(
        r.data.as_json(),
        expected,
        "increments store the value; a new key is appended"
    );

    let refused = [
        ("name", 1, DataErrorKind::Type),
        ("f", 1, DataErrorKind::Type),
        ("flag", 1, DataErrorKind::Type),
        ("none", 1, DataErrorKind::Type),
        ("list", 1, DataErrorKind::Type),
        ("obj", 1, DataErrorKind::Type),
        ("max", 1, DataErrorKind::Value),
        ("min", -1, DataErrorKind::Value),
        ("hits", i64::MIN, DataErrorKind::Value),
        ("u", 0, DataErrorKind::Value),
    ];
    for (key, by, kind) in refused {
        let what = format!("increment {key:?} by {by}");
        let e = expect_err(block_on(m.increment(t, key, by)), &what);
        assert_invalid_data(&e, kind, &what);
        let Error::InvalidData { path, .. } = &e else {
            unreachable!()
        };
        assert_eq!(path, &format!("data['{key}']"), "{what}: error path");
    }
    let after = peek(&m, &token);
    assert_eq!(
        (after.version, after.data.as_json()),
        (7, expected.as_str()),
        "refused increments changed nothing"
    );
    ok(block_on(m.end(t)), "end");
    expect_not_found(
        block_on(m.increment(t, "hits", 1)),
        "increment an ended session",
    );
}

/// `update`, `increment` and `append` give exactly the data their
/// definitions do ([`SessionData::merged`](crate::SessionData::merged),
/// [`SessionData::incremented`](crate::SessionData::incremented),
/// [`SessionData::appended`](crate::SessionData::appended)), on data
/// and keys a store's own fast path might misread: separators and escapes
/// inside strings, nesting, keys that need escaping or are not ASCII,
/// numbers of every shape, and results at the size limit.
pub fn check_edits_match_their_definition<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let limits = crate::DataLimits {
        max_bytes: 120,
        ..Default::default()
    };
    let (m, _clock) = setup(&make_store, |c| c.limits = limits);
    let initials = [
        "{}",
        r#"{"a":1}"#,
        r#"{"s":"a,b}c]d{e[f:\"g\\","n":{"x":[1,{"y":"}"}]},"after":-12}"#,
        r#"{"ключ":"значение","emoji🦀":2,"q\"k":3,"t\tab":4}"#,
        r#"{"f":1.5,"e":1e300,"z":0,"neg":-0.5,"b":true,"nil":null,"l":[]}"#,
        r#"{"big":9007199254740993,"edge":9007199254740991,"small":-9007199254740991}"#,
        r#"{"l":[1,"a]b",[2,"]"],{"x":"]"},-1.5e3,true,null],"s":"x"}"#,
    ];
    let patches = [
        r#"{"a":2}"#,
        r#"{"new":{"k":["v,]}"]}}"#,
        r#"{"s":"x","after":"y","ключ":1}"#,
        r#"{"q\"k":"escaped key","t\tab":null}"#,
        r#"{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
    ];
    let increments: [(&str, i64); 9] = [
        ("a", 1),
        ("missing", -7),
        ("after", 12),
        ("emoji🦀", 40),
        ("q\"k", 1),
        ("z", i64::from(i32::MAX)),
        ("edge", 1),
        ("edge", 2),
        ("small", -1),
    ];
    let appends = [
        ("l", "1"),
        ("l", r#"{"k":"],[\"x"}"#),
        ("n", "[]"),
        ("a", "null"),
        ("s", r#""tail""#),
        ("fresh", "[1,[2,[3]]]"),
        ("q\"k", "2"),
        (
            "pad",
            concat!(
                r#""xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"#,
                r#"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx""#,
            ),
        ),
    ];
    for initial in initials {
        let start = data(initial);
        for (key, item) in appends {
            let what = format!("append {item} to {key:?}");
            let item: serde_json::Value = serde_json::from_str(item).expect("a valid item");
            let expected = start
                .appended(key, &item, &limits)
                .map(|(d, len)| (d, len as i64));
            let token = create(&m, "alice", initial);
            let got = block_on(m.append(token.as_str(), key, &item));
            let value = got.as_ref().ok().map(|&len| len as i64);
            check_edit(
                &m,
                &token,
                initial,
                &what,
                got.map(|_| ()),
                &expected,
                value,
            );
        }
        for patch in patches {
            let what = format!("update {patch}");
            let expected = start.merged(&data(patch), &limits).map(|d| (d, 0));
            let token = create(&m, "alice", initial);
            let got = block_on(m.update(token.as_str(), &data(patch))).map(|_| ());
            check_edit(&m, &token, initial, &what, got, &expected, None);
        }
        for (key, by) in increments {
            let what = format!("increment {key:?} by {by}");
            let expected = start.incremented(key, by, &limits);
            let token = create(&m, "alice", initial);
            let got = block_on(m.increment(token.as_str(), key, by));
            let value = got.as_ref().ok().copied();
            check_edit(
                &m,
                &token,
                initial,
                &what,
                got.map(|_| ()),
                &expected,
                value,
            );
        }
    }
}

/// Compares what an edit of `initial` did with what its definition gives.
fn check_edit<S: SessionStore>(
    m: &crate::SessionManager<S>,
    token: &crate::SessionToken,
    initial: &str,
    what: &str,
    got: crate::Result<()>,
    expected: &crate::Result<(SessionData, i64)>,
    value: Option<i64>,
) {
    let after = peek(m, token);
    match (got, expected) {
        (Ok(()), Ok((data, expected_value))) => {
            assert_eq!(
                after.data.as_json(),
                data.as_json(),
                "{initial} then {what}"
            );
            assert_eq!(after.version, 2, "{initial} then {what}: one write");
            if let Some(value) = value {
                assert_eq!(
                    value, *expected_value,
                    "{initial} then {what}: the new value"
                );
            }
        }
        (Err(e), Err(definition)) => {
            assert_eq!(
                e.to_string(),
                definition.to_string(),
                "{initial} then {what}"
            );
            assert_eq!(
                (after.version, after.data.as_json()),
                (1, data(initial).as_json()),
                "{initial} then {what}: a refused edit changes nothing"
            );
        }
        (got, expected) => {
            panic!("{initial} then {what}: got {got:?}, the definition gives {expected:?}")
        }
    }
}

/// `rotate` moves the session to a new token keeping data, user, creation
/// time, version and expiry policy; the old token is dead at once, and
/// rotating a dead token is `NotFound`.
pub fn check_rotate<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let token = create(&m, "alice", r#"{"cart":[1,2]}"#);
    ok(
        block_on(m.update(token.as_str(), &data(r#"{"step":2}"#))),
        "update",
    );
    clock.advance(1_000);
    let before = peek(&m, &token);
    let rotated = ok(block_on(m.rotate(token.as_str())), "rotate a live session");
    assert_ne!(
        rotated.as_str(),
        token.as_str(),
        "rotate issues a new token"
    );
    assert!(!active(&m, &token), "the old token is dead after rotate");
    expect_not_found(block_on(m.get(token.as_str())), "get with the old token");
    expect_not_found(
        block_on(m.update(token.as_str(), &data("{}"))),
        "update with the old token",
    );
    let after = peek(&m, &rotated);
    assert_eq!(
        (
            after.user_id.as_ref(),
            after.data.as_json(),
            after.created_at,
            after.version
        ),
        ("alice", r#"{"cart":[1,2],"step":2}"#, t0, before.version),
        "rotate keeps user, data, created_at and version"
    );
    assert_eq!(
        (
            after.idle_timeout_ms,
            after.sliding,
            after.absolute_expires_at
        ),
        (
            before.idle_timeout_ms,
            before.sliding,
            before.absolute_expires_at
        ),
        "rotate keeps the expiry policy"
    );
    assert!(
        after.expires_at >= before.expires_at && after.last_active >= before.last_active,
        "rotate does not shorten the session"
    );
    let listed = listed_keys(&m, "alice");
    assert_eq!(
        listed,
        vec![rotated.key()],
        "list_user holds only the new key"
    );
    assert_eq!(count(&m), 1, "rotate does not change count");

    expect_not_found(
        block_on(m.rotate(token.as_str())),
        "rotate the old token again",
    );
    ok(block_on(m.end(token.as_str())), "end the old token");
    assert!(
        active(&m, &rotated),
        "ending the old token spares the new one"
    );
    let twice = ok(block_on(m.rotate(rotated.as_str())), "rotate again");
    assert!(active(&m, &twice), "a twice-rotated session is live");
    expect_not_found(
        block_on(m.rotate(&token.as_str()[..40])),
        "rotate a malformed token",
    );
    expect_not_found(
        block_on(m.rotate(fresh_token().as_str())),
        "rotate a never-issued token",
    );
    clock.set(peek(&m, &twice).expires_at);
    expect_not_found(
        block_on(m.rotate(twice.as_str())),
        "rotate an expired session",
    );
}

//! Through the manager: the basics (create, get, peek, end), malformed
//! tokens and refused arguments.

use super::IDLE_MS;
use super::helpers::{
    active, assert_invalid_data, count, create, data, expect_err, expect_not_found, fresh_token,
    ok, peek, setup, too_big,
};
use crate::{
    Clock, CreateOptions, DataErrorKind, Error, MAX_TIMEOUT_MS, MAX_USER_ID_BYTES, ManualClock,
    SessionData, SessionStore, SessionToken, block_on,
};

/// `create`, `get`, `peek`, `is_active`, `end` and `count` on the happy path;
/// `end` is idempotent and leaves other sessions alone.
pub fn check_create_get_peek_end<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let json = r#"{"role":"admin","prefs":{"theme":"dark"},"n":1}"#;
    let token = create(&m, "alice", json);
    match m.store().token_route("alice") {
        None => assert_eq!(token.as_str().len(), 43, "tokens are 43 characters"),
        Some(route) => {
            assert_eq!(token.as_str().len(), 46, "routed tokens are 46 characters");
            assert_eq!(
                token.key().route(),
                route,
                "a token carries its user's route"
            );
        }
    }
    assert!(
        SessionToken::parse(token.as_str()).is_some(),
        "an issued token parses as a token"
    );

    let got = ok(block_on(m.get(token.as_str())), "get a new session");
    assert_eq!(got.key, token.key(), "get: the key is the token's hash");
    let r = &got.record;
    assert_eq!(r.user_id.as_ref(), "alice", "get: user_id");
    assert_eq!(
        r.data.as_json(),
        json,
        "get: data as created, key order kept"
    );
    assert_eq!(r.version, 1, "get: a new session is at version 1");
    assert_eq!(
        (r.created_at, r.last_active, r.expires_at),
        (t0, t0, t0.plus_millis(IDLE_MS)),
        "get: (created_at, last_active, expires_at) of a new session"
    );
    assert_eq!(
        (r.idle_timeout_ms, r.sliding, r.absolute_expires_at),
        (IDLE_MS, true, None),
        "get: the manager's expiry policy is recorded"
    );
    assert_eq!(
        peek(&m, &token),
        got.record,
        "peek returns what get returned"
    );
    assert!(active(&m, &token), "is_active on a new session");
    assert_eq!(count(&m), 1, "count after one create");

    let other = create(&m, "alice", "{}");
    assert_ne!(
        other.as_str(),
        token.as_str(),
        "two creates give two tokens"
    );
    assert_eq!(count(&m), 2, "count after two creates");

    ok(block_on(m.end(token.as_str())), "end a live session");
    assert!(!active(&m, &token), "is_active after end");
    expect_not_found(block_on(m.get(token.as_str())), "get after end");
    expect_not_found(block_on(m.peek(token.as_str())), "peek after end");
    ok(
        block_on(m.end(token.as_str())),
        "end an ended session again",
    );
    let never_issued = fresh_token();
    ok(
        block_on(m.end(never_issued.as_str())),
        "end a token that was never issued",
    );
    assert!(active(&m, &other), "end leaves the user's other session");
    assert_eq!(count(&m), 1, "count after end");
}

/// Malformed and never-issued tokens are "not found" everywhere: `NotFound`
/// errors, `is_active` false, `end` a no-op; and they never touch a real session.
pub fn check_malformed_tokens<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, _clock) = setup(&make_store, |_| {});
    let real = create(&m, "alice", r#"{"a":1}"#);
    let text = real.as_str();
    let never_issued = fresh_token();
    let bad: Vec<String> = vec![
        String::new(),
        "abc".into(),
        text[..42].to_owned(),
        format!("{text}A"),
        format!(" {}", &text[1..]),
        format!("{}=", &text[..42]),
        text.to_uppercase(),
        "../../../../../../../../../../etc/passwd/..".into(),
        never_issued.as_str().to_owned(),
    ];
    for token in &bad {
        let what = |op: &str| format!("{op} with token {token:?}");
        if token == text {
            continue; // to_uppercase of an all-caps token; vanishingly unlikely
        }
        expect_not_found(block_on(m.get(token)), &what("get"));
        expect_not_found(block_on(m.peek(token)), &what("peek"));
        expect_not_found(block_on(m.touch(token)), &what("touch"));
        expect_not_found(block_on(m.update(token, &data("{}"))), &what("update"));
        expect_not_found(
            block_on(m.set_data(token, data("{}"), None)),
            &what("set_data"),
        );
        expect_not_found(
            block_on(m.set_data(token, data("{}"), Some(1))),
            &what("set_data with expected_version"),
        );
        expect_not_found(block_on(m.increment(token, "a", 1)), &what("increment"));
        expect_not_found(block_on(m.rotate(token)), &what("rotate"));
        assert!(
            !ok(block_on(m.is_active(token)), &what("is_active")),
            "{}: must be false",
            what("is_active")
        );
        ok(block_on(m.end(token)), &what("end"));
    }
    let r = peek(&m, &real);
    assert_eq!(
        (r.version, r.data.as_json()),
        (1, r#"{"a":1}"#),
        "bad tokens left the real session unchanged"
    );
    assert_eq!(count(&m), 1, "count after bad-token calls");
}

/// Invalid user ids, timeouts and oversized data are refused at `create`, and
/// nothing is stored.
pub fn check_bad_arguments<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, _clock) = setup(&make_store, |_| {});
    let long_user = "u".repeat(MAX_USER_ID_BYTES + 1);
    for user in ["", "a\0b", long_user.as_str()] {
        let e = expect_err(
            block_on(m.create(user, SessionData::empty(), CreateOptions::default())),
            &format!("create for user id of {} bytes", user.len()),
        );
        assert!(
            matches!(e, Error::InvalidArgument(_)),
            "create for a bad user id: expected InvalidArgument, got {e:?}"
        );
        let e = expect_err(block_on(m.list_user(user)), "list_user with a bad user id");
        assert!(matches!(e, Error::InvalidArgument(_)), "list_user: {e:?}");
        let e = expect_err(
            block_on(m.end_user(user, None)),
            "end_user with a bad user id",
        );
        assert!(matches!(e, Error::InvalidArgument(_)), "end_user: {e:?}");
    }
    let bad_options = [
        CreateOptions {
            idle_timeout_ms: Some(0),
            ..Default::default()
        },
        CreateOptions {
            idle_timeout_ms: Some(-1),
            ..Default::default()
        },
        CreateOptions {
            idle_timeout_ms: Some(MAX_TIMEOUT_MS + 1),
            ..Default::default()
        },
        CreateOptions {
            absolute_timeout_ms: Some(0),
            ..Default::default()
        },
    ];
    for options in bad_options {
        let e = expect_err(
            block_on(m.create("alice", SessionData::empty(), options)),
            &format!("create with {options:?}"),
        );
        assert!(
            matches!(e, Error::InvalidArgument(_)),
            "create with {options:?}: expected InvalidArgument, got {e:?}"
        );
    }
    let e = expect_err(
        block_on(m.create("alice", too_big(), CreateOptions::default())),
        "create with data over max_bytes",
    );
    assert_invalid_data(&e, DataErrorKind::Value, "create with data over max_bytes");
    assert_eq!(count(&m), 0, "refused creates store nothing");
    let max_user = "u".repeat(MAX_USER_ID_BYTES);
    let token = ok(
        block_on(m.create(&max_user, SessionData::empty(), CreateOptions::default())),
        "create for a user id of exactly MAX_USER_ID_BYTES",
    );
    assert_eq!(
        peek(&m, &token).user_id.as_ref(),
        max_user,
        "the longest user id round-trips"
    );
}

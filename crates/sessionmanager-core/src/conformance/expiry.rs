//! Through the manager: expiry (the boundary, sliding refresh, `touch`,
//! fixed expiry, the absolute cap and per-session create options).

use super::IDLE_MS;
use super::helpers::{active, count, create, data, expect_not_found, get, list, ok, peek, setup};
use crate::{Clock, CreateOptions, ManualClock, SessionData, SessionStore, block_on};

/// A session is live strictly before `expires_at` and dead from that instant:
/// every operation then treats it as not found, and it leaves `count` and
/// `list_user`.
pub fn check_expiry_boundary<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let token = create(&m, "alice", r#"{"a":1}"#);
    let key = token.key();
    let deadline = t0.plus_millis(IDLE_MS);

    clock.set(deadline.plus_millis(-1));
    assert!(active(&m, &token), "is_active 1 ms before expires_at");
    assert_eq!(
        peek(&m, &token).expires_at,
        deadline,
        "peek 1 ms before expires_at"
    );
    assert_eq!(count(&m), 1, "count 1 ms before expires_at");
    assert_eq!(
        list(&m, "alice").len(),
        1,
        "list_user 1 ms before expires_at"
    );
    assert!(
        ok(
            block_on(m.store().load(&key, deadline.plus_millis(-1))),
            "store load"
        )
        .is_some(),
        "store load 1 ms before expires_at finds the record"
    );

    clock.set(deadline);
    let t = token.as_str();
    assert!(!active(&m, &token), "is_active exactly at expires_at");
    expect_not_found(block_on(m.peek(t)), "peek exactly at expires_at");
    expect_not_found(block_on(m.get(t)), "get exactly at expires_at");
    expect_not_found(block_on(m.touch(t)), "touch exactly at expires_at");
    expect_not_found(
        block_on(m.update(t, &data(r#"{"b":2}"#))),
        "update exactly at expires_at",
    );
    expect_not_found(
        block_on(m.set_data(t, data("{}"), None)),
        "set_data exactly at expires_at",
    );
    expect_not_found(
        block_on(m.increment(t, "a", 1)),
        "increment exactly at expires_at",
    );
    expect_not_found(block_on(m.rotate(t)), "rotate exactly at expires_at");
    assert_eq!(count(&m), 0, "count exactly at expires_at");
    assert!(
        list(&m, "alice").is_empty(),
        "list_user exactly at expires_at"
    );
    assert!(
        ok(block_on(m.store().load(&key, deadline)), "store load").is_none(),
        "store load exactly at expires_at finds nothing"
    );
    ok(block_on(m.end(t)), "end an expired session");
}

/// `get` writes a sliding refresh only once half the idle window has passed
/// since the last activity (`SessionRecord::refresh_due`), never bumps the
/// version, and `peek`, `is_active` and `list_user` never refresh.
pub fn check_sliding_refresh_half_window<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let token = create(&m, "alice", r#"{"a":1}"#);
    let original = peek(&m, &token);

    clock.set(t0.plus_millis(IDLE_MS / 2 - 1));
    let got = get(&m, &token);
    assert_eq!(
        (got.last_active, got.expires_at, got.version),
        (t0, t0.plus_millis(IDLE_MS), 1),
        "get 1 ms before half the idle window: no refresh"
    );
    assert_eq!(
        peek(&m, &token),
        original,
        "get before half the idle window wrote nothing"
    );

    let t1 = t0.plus_millis(IDLE_MS / 2);
    clock.set(t1);
    assert!(active(&m, &token), "is_active at half the window");
    let _ = list(&m, "alice");
    assert_eq!(
        peek(&m, &token),
        original,
        "peek, is_active and list_user at half the window wrote nothing"
    );
    let got = get(&m, &token);
    assert_eq!(
        (got.last_active, got.expires_at, got.version),
        (t1, t1.plus_millis(IDLE_MS), 1),
        "get at half the idle window: refreshed, version unchanged"
    );
    assert_eq!(got.data, original.data, "a refresh keeps the data");
    assert_eq!(peek(&m, &token), got, "the refresh get returned is stored");

    clock.set(t1.plus_millis(IDLE_MS / 2 - 1));
    let got = get(&m, &token);
    assert_eq!(
        (got.last_active, got.expires_at),
        (t1, t1.plus_millis(IDLE_MS)),
        "get within half a window of the last refresh: no refresh"
    );

    clock.set(t0.plus_millis(IDLE_MS));
    assert!(
        active(&m, &token),
        "a refreshed session outlives its first deadline"
    );
    clock.set(t1.plus_millis(IDLE_MS - 1));
    assert!(
        active(&m, &token),
        "live 1 ms before the refreshed deadline"
    );
    clock.set(t1.plus_millis(IDLE_MS));
    assert!(!active(&m, &token), "dead at the refreshed deadline");
}

/// `touch` records activity at once (no half-window rule), keeps data and
/// version, never moves times backwards when the clock steps back, and is
/// `NotFound` for ended or expired sessions.
pub fn check_touch<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let t0 = clock.now();
    let token = create(&m, "alice", r#"{"a":1}"#);
    let t1 = t0.plus_millis(1);
    clock.set(t1);
    ok(block_on(m.touch(token.as_str())), "touch a live session");
    let r = peek(&m, &token);
    assert_eq!(
        (r.last_active, r.expires_at),
        (t1, t1.plus_millis(IDLE_MS)),
        "touch 1 ms after create slides last_active and expires_at"
    );
    assert_eq!(
        (r.version, r.data.as_json()),
        (1, r#"{"a":1}"#),
        "touch keeps version and data"
    );

    clock.set(t0.plus_millis(-5_000));
    ok(
        block_on(m.touch(token.as_str())),
        "touch after the clock stepped back",
    );
    let back = peek(&m, &token);
    assert_eq!(
        (back.last_active, back.expires_at),
        (t1, t1.plus_millis(IDLE_MS)),
        "touch with an earlier clock never moves times backwards"
    );

    clock.set(t1.plus_millis(IDLE_MS));
    expect_not_found(
        block_on(m.touch(token.as_str())),
        "touch an expired session",
    );
    clock.set(t1);
    let ended = create(&m, "alice", "{}");
    ok(block_on(m.end(ended.as_str())), "end");
    expect_not_found(block_on(m.touch(ended.as_str())), "touch an ended session");
}

/// With `sliding: false` nothing extends `expires_at`: not `get`, `touch`,
/// `update`, `set_data` nor `increment`.
pub fn check_fixed_expiry<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |config| config.expiry.sliding = false);
    let t0 = clock.now();
    let token = create(&m, "alice", "{}");
    let deadline = t0.plus_millis(IDLE_MS);
    let r = peek(&m, &token);
    assert_eq!(
        (r.sliding, r.expires_at),
        (false, deadline),
        "a fixed session records sliding=false"
    );

    clock.set(deadline.plus_millis(-10));
    assert_eq!(
        get(&m, &token).expires_at,
        deadline,
        "get late in a fixed window"
    );
    ok(block_on(m.touch(token.as_str())), "touch a fixed session");
    assert_eq!(
        peek(&m, &token).expires_at,
        deadline,
        "touch does not extend a fixed session"
    );
    ok(
        block_on(m.update(token.as_str(), &data(r#"{"a":1}"#))),
        "update a fixed session",
    );
    ok(
        block_on(m.set_data(token.as_str(), data(r#"{"b":2}"#), None)),
        "set_data on a fixed session",
    );
    ok(
        block_on(m.increment(token.as_str(), "n", 1)),
        "increment on a fixed session",
    );
    let r = peek(&m, &token);
    assert_eq!(
        (r.expires_at, r.version),
        (deadline, 4),
        "writes to a fixed session keep expires_at"
    );
    clock.set(deadline.plus_millis(-1));
    assert!(
        active(&m, &token),
        "fixed session live 1 ms before deadline"
    );
    clock.set(deadline);
    assert!(!active(&m, &token), "fixed session dead at its deadline");
}

/// The absolute cap is never extended by `get`, `touch`, `update`, `set_data`,
/// `increment` or `rotate`, and a cap shorter than the idle timeout bounds the
/// first deadline.
pub fn check_absolute_cap<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let absolute = IDLE_MS + IDLE_MS / 4;
    let (m, clock) = setup(&make_store, |config| {
        config.expiry.absolute_timeout_ms = Some(absolute);
    });
    let t0 = clock.now();
    let cap = t0.plus_millis(absolute);
    let token = create(&m, "alice", "{}");
    let r = peek(&m, &token);
    assert_eq!(
        (r.absolute_expires_at, r.expires_at),
        (Some(cap), t0.plus_millis(IDLE_MS)),
        "a capped session records its absolute deadline"
    );

    clock.set(t0.plus_millis(IDLE_MS / 2));
    assert_eq!(
        get(&m, &token).expires_at,
        cap,
        "a sliding refresh stops at the cap"
    );
    assert_eq!(
        peek(&m, &token).expires_at,
        cap,
        "stored refresh stops at the cap"
    );

    clock.set(t0.plus_millis(IDLE_MS));
    ok(block_on(m.touch(token.as_str())), "touch near the cap");
    assert_eq!(peek(&m, &token).expires_at, cap, "touch stops at the cap");
    ok(
        block_on(m.update(token.as_str(), &data(r#"{"a":1}"#))),
        "update near the cap",
    );
    assert_eq!(peek(&m, &token).expires_at, cap, "update stops at the cap");
    ok(
        block_on(m.set_data(token.as_str(), data(r#"{"b":1}"#), None)),
        "set_data near the cap",
    );
    ok(
        block_on(m.increment(token.as_str(), "n", 1)),
        "increment near the cap",
    );
    assert_eq!(
        peek(&m, &token).expires_at,
        cap,
        "set_data and increment stop at the cap"
    );
    let rotated = ok(block_on(m.rotate(token.as_str())), "rotate near the cap");
    let r = peek(&m, &rotated);
    assert_eq!(
        (r.absolute_expires_at, r.expires_at),
        (Some(cap), cap),
        "rotate keeps the cap"
    );

    clock.set(cap.plus_millis(-1));
    assert_eq!(get(&m, &rotated).expires_at, cap, "get 1 ms before the cap");
    ok(
        block_on(m.touch(rotated.as_str())),
        "touch 1 ms before the cap",
    );
    assert!(active(&m, &rotated), "live 1 ms before the cap");
    clock.set(cap);
    assert!(!active(&m, &rotated), "dead at the cap despite activity");
    expect_not_found(block_on(m.get(rotated.as_str())), "get at the cap");

    clock.set(t0);
    let short = ok(
        block_on(m.create(
            "alice",
            SessionData::empty(),
            CreateOptions {
                absolute_timeout_ms: Some(IDLE_MS / 4),
                ..Default::default()
            },
        )),
        "create with a cap shorter than the idle timeout",
    );
    let r = peek(&m, &short);
    assert_eq!(
        r.expires_at,
        t0.plus_millis(IDLE_MS / 4),
        "a cap shorter than the idle timeout is the first deadline"
    );
}

/// Per-session `CreateOptions` override the manager's expiry settings, and
/// unset options inherit them.
pub fn check_create_options<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let manager_cap = 4 * IDLE_MS;
    let (m, clock) = setup(&make_store, |config| {
        config.expiry.absolute_timeout_ms = Some(manager_cap);
    });
    let t0 = clock.now();
    let custom = ok(
        block_on(m.create(
            "alice",
            SessionData::empty(),
            CreateOptions {
                idle_timeout_ms: Some(2 * IDLE_MS),
                sliding: Some(false),
                absolute_timeout_ms: Some(3 * IDLE_MS),
            },
        )),
        "create with every option",
    );
    let r = peek(&m, &custom);
    assert_eq!(
        (
            r.idle_timeout_ms,
            r.sliding,
            r.absolute_expires_at,
            r.expires_at
        ),
        (
            2 * IDLE_MS,
            false,
            Some(t0.plus_millis(3 * IDLE_MS)),
            t0.plus_millis(2 * IDLE_MS)
        ),
        "every option applies"
    );
    let inheriting = create(&m, "alice", "{}");
    let r = peek(&m, &inheriting);
    assert_eq!(
        (
            r.idle_timeout_ms,
            r.sliding,
            r.absolute_expires_at,
            r.expires_at
        ),
        (
            IDLE_MS,
            true,
            Some(t0.plus_millis(manager_cap)),
            t0.plus_millis(IDLE_MS)
        ),
        "no options: the manager's policy"
    );
    let short_idle = ok(
        block_on(m.create(
            "alice",
            SessionData::empty(),
            CreateOptions {
                idle_timeout_ms: Some(IDLE_MS / 2),
                ..Default::default()
            },
        )),
        "create with a shorter idle timeout only",
    );
    let r = peek(&m, &short_idle);
    assert_eq!(
        (r.idle_timeout_ms, r.sliding, r.expires_at),
        (IDLE_MS / 2, true, t0.plus_millis(IDLE_MS / 2)),
        "one option overrides, the rest inherit"
    );

    clock.set(t0.plus_millis(IDLE_MS / 2));
    assert!(
        !active(&m, &short_idle),
        "the short session ends by its own timeout"
    );
    clock.set(t0.plus_millis(IDLE_MS + 1));
    assert!(
        !active(&m, &inheriting),
        "the default session ends by the manager's"
    );
    assert_eq!(
        get(&m, &custom).expires_at,
        t0.plus_millis(2 * IDLE_MS),
        "get past half its window does not slide a sliding=false session"
    );
    clock.set(t0.plus_millis(2 * IDLE_MS - 1));
    assert!(
        active(&m, &custom),
        "custom session live before its timeout"
    );
    clock.set(t0.plus_millis(2 * IDLE_MS));
    assert!(!active(&m, &custom), "custom session dead at its timeout");
}

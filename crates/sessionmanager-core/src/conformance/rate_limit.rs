//! Rate limits: GCRA state in the store, atomic under concurrent hits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::helpers::{ok, raw_store, setup};
use crate::{
    Clock, ManagerConfig, ManualClock, Rate, RateLimit, SessionKey, SessionManager, SessionStore,
    SystemClock, Timestamp, block_on, rate_state_expiry,
};

/// Threads hammering one key are allowed exactly the burst, never more; a
/// hit is allowed again once an interval has passed; a key idle for a whole
/// period starts fresh (its state expired, swept or not); keys are separate.
pub fn check_rate_limit<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (m, clock) = setup(&make_store, |_| {});
    let m = Arc::new(m);
    let limit = RateLimit::new(Rate::new(10, Duration::from_secs(60)).unwrap(), None).unwrap();
    let allowed = Arc::new(AtomicU32::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (m, allowed) = (Arc::clone(&m), Arc::clone(&allowed));
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let decision = ok(block_on(m.hit_rate_limit(&limit, "api:alice")), "hit");
                    if decision.allowed {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        assert!(decision.retry_after > Duration::ZERO, "a denial says when");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a hitting thread panicked");
    }
    assert_eq!(
        allowed.load(Ordering::Relaxed),
        10,
        "8 threads x 25 hits on 10/minute"
    );

    let hit = |key: &str| ok(block_on(m.hit_rate_limit(&limit, key)), "hit");
    let denied = hit("api:alice");
    assert!(!denied.allowed);
    assert_eq!(
        denied.retry_after,
        Duration::from_secs(6),
        "one hit per 6 s"
    );
    assert!(hit("api:bob").allowed, "another key has its own budget");
    clock.advance(6_000);
    let again = hit("api:alice");
    assert!(again.allowed && again.remaining == 0, "one more after 6 s");
    assert!(!hit("api:alice").allowed);
    clock.advance(61_000);
    let fresh = hit("api:alice");
    assert!(
        fresh.allowed && fresh.remaining == 9,
        "idle for a period: a full burst again"
    );
    let err = block_on(m.hit_rate_limit(&limit, "")).unwrap_err();
    assert!(err.to_string().contains("must not be empty"), "{err}");
    assert_eq!(
        ok(block_on(m.count()), "count"),
        0,
        "rate-limit state is no session"
    );
    assert_eq!(ok(block_on(m.purge_expired()), "purge"), 0);
}

/// `SessionStore::rate_load` and `rate_store`: a compare-and-set on the
/// state of one key, apart from sessions, that stops mattering the
/// millisecond after its TAT (stored or not); a store that reports its own
/// clock reports the real time.
pub fn check_store_rate_state<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    let (store, clock) = raw_store(&make_store);
    let now = clock.now();
    let key = SessionKey::of("api:alice");
    let other = SessionKey::of("api:bob");
    let tat = now.millis() * 1000 + 6_000_000;
    let read = |key: &SessionKey| ok(block_on(store.rate_load(key)), "rate_load");
    let load = |key: &SessionKey| read(key).tat_us;
    let put = |expected, tat, at| {
        ok(
            block_on(store.rate_store(&key, expected, tat, at)),
            "rate_store",
        )
    };
    assert_eq!(load(&key), None, "no state yet");
    assert!(
        !put(Some(tat), tat + 1, now),
        "no state is not the expected one"
    );
    assert!(put(None, tat, now), "the first state");
    assert!(!put(None, tat + 1, now), "a second first state loses");
    assert!(
        !put(Some(tat - 1), tat + 1, now),
        "a stale expectation loses"
    );
    assert_eq!(load(&key), Some(tat));
    assert!(
        put(Some(tat), tat + 1, now),
        "the expected state is replaced"
    );
    assert_eq!(load(&key), Some(tat + 1));
    assert_eq!(load(&other), None, "each key has its own state");
    assert_eq!(ok(block_on(store.count(now)), "count"), 0, "no session");
    if let Some(store_now_us) = read(&key).store_now_us {
        let wall_us = SystemClock.now().millis() * 1000;
        assert!(
            (store_now_us - wall_us).abs() < 60_000_000,
            "the store's clock says {store_now_us} us, this machine's {wall_us} us"
        );
    }
    // The millisecond after the TAT, the state is as good as none.
    let past = rate_state_expiry(tat + 1);
    clock.set(past);
    assert!(
        !put(Some(tat + 1), tat + 2, past),
        "a passed state is not replaced as if it mattered"
    );
    assert!(
        put(None, tat + 9_000_000, past),
        "a fresh state in its place"
    );
    assert_eq!(load(&key), Some(tat + 9_000_000));
    ok(block_on(store.purge_expired(past)), "purge");
    assert_eq!(
        load(&key),
        Some(tat + 9_000_000),
        "a purge of sessions keeps it"
    );
}

/// The machine's wall clock moved by a fixed offset: a server whose clock
/// disagrees with its peers'.
struct SkewedClock(i64);

impl Clock for SkewedClock {
    fn now(&self) -> Timestamp {
        SystemClock.now().plus_millis(self.0)
    }

    fn is_wall_clock(&self) -> bool {
        true
    }
}

/// Two servers whose clocks are 30 s apart share one limit through a store
/// that lends its clock (see [`RateRead`](crate::RateRead)): hitting a key
/// in turn, they are allowed the burst between them, not more. `first` and
/// `second` must be two stores over the same data (the same server and
/// prefix or schema).
pub fn check_rate_limit_across_skewed_clocks<S: SessionStore>(first: S, second: S) {
    let server = |store, skew_ms| {
        let config = ManagerConfig {
            clock: Arc::new(SkewedClock(skew_ms)),
            ..ManagerConfig::default()
        };
        SessionManager::new(store, config)
    };
    let (ahead, behind) = (server(first, 30_000), server(second, 0));
    let limit = RateLimit::new(Rate::new(10, Duration::from_secs(60)).unwrap(), None).unwrap();
    let mut allowed = 0;
    for _ in 0..10 {
        for m in [&ahead, &behind] {
            if ok(block_on(m.hit_rate_limit(&limit, "login:alice")), "hit").allowed {
                allowed += 1;
            }
        }
    }
    assert_eq!(
        allowed, 10,
        "10/minute, burst 10, hit 20 times by two servers 30 s apart"
    );
}

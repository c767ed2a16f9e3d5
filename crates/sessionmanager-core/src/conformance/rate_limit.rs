//! Rate limits: GCRA state in the store, atomic under concurrent hits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::helpers::{ok, setup};
use crate::{ManualClock, Rate, RateLimit, SessionStore, block_on};

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
}

//! Concurrency: threads sharing one manager and one session.

use std::sync::Arc;

use super::helpers::{create, data, peek, setup};
use crate::{ManualClock, SessionStore, block_on};

/// Threads sharing one manager and one session lose no update: 8 threads each
/// write 500 distinct keys with `update`, bump a shared counter with
/// `increment` and add to a shared list with `append`
/// ([`check_concurrent_updates_sized`] with 8 and 500).
///
/// Every write re-encodes the session's whole data, which grows to about
/// 50 KB here, so in an unoptimized build this check takes tens of seconds;
/// [`run_all`](super::run_all) runs it, while the `check_concurrent_updates`
/// test from [`conformance_tests!`](crate::conformance_tests) runs the sized
/// variant with 8 threads x 100 rounds.
pub fn check_concurrent_updates<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    check_concurrent_updates_sized(make_store, 8, 500);
}

/// Like [`check_concurrent_updates`], with `threads` threads doing `rounds`
/// rounds each (one `update` of a new key, one `increment` and one
/// `append` per round).
pub fn check_concurrent_updates_sized<S: SessionStore>(
    make_store: impl Fn(ManualClock) -> S,
    threads: usize,
    rounds: usize,
) {
    let (m, _clock) = setup(&make_store, |config| {
        config.limits.max_bytes = 1 << 20;
    });
    let token = create(&m, "alice", "{}");
    let m = Arc::new(m);
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (m, token) = (Arc::clone(&m), token.as_str().to_owned());
            std::thread::spawn(move || {
                for round in 0..rounds {
                    let patch = data(&format!(r#"{{"{thread}.{round}":{round}}}"#));
                    if let Err(e) = block_on(m.update(&token, &patch)) {
                        panic!("thread {thread} update {round}: {e:?}");
                    }
                    if let Err(e) = block_on(m.increment(&token, "counter", 1)) {
                        panic!("thread {thread} increment {round}: {e:?}");
                    }
                    let item = serde_json::json!([thread, round]);
                    if let Err(e) = block_on(m.append(&token, "log", &item)) {
                        panic!("thread {thread} append {round}: {e:?}");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker thread panicked");
    }
    let record = peek(&m, &token);
    let map = record.data.to_map();
    let total = (threads * rounds) as i64;
    assert_eq!(
        map.get("counter").and_then(serde_json::Value::as_i64),
        Some(total),
        "every increment counted"
    );
    let log = map.get("log").and_then(serde_json::Value::as_array);
    assert_eq!(
        log.map(Vec::len),
        Some(total as usize),
        "every append landed"
    );
    let missing: Vec<String> = (0..threads)
        .flat_map(|t| (0..rounds).map(move |r| format!("{t}.{r}")))
        .filter(|key| map.get(key).is_none())
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "updates were lost, e.g. keys {missing:?}"
    );
    assert_eq!(map.len(), threads * rounds + 2, "no extra keys");
    assert_eq!(
        record.version,
        1 + 3 * total as u64,
        "every write bumped the version exactly once"
    );
}

//! Stress: many threads creating, rotating, ending and purging while the
//! sweeper runs and the clock moves. Afterwards the record counter, the
//! records and the user index must agree exactly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::{MemoryStore, MemoryStoreConfig};
use crate::{
    CreateOptions, ExpiryPolicy, ManagerConfig, ManualClock, SessionData, SessionManager,
    Timestamp, block_on,
};

impl MemoryStore {
    /// Stops the sweeper, so nothing changes while the test counts.
    fn stop_sweeper(&self) {
        self.sweeper.lock().unwrap().stop();
    }

    /// (the `len` counter, records in the shards, prefixes in the user index)
    fn counts(&self) -> (usize, usize, usize) {
        let inner = &self.inner;
        let records = (0..inner.shards.len())
            .map(|i| inner.shards.read_at(i).len())
            .sum();
        (
            inner.len.load(Ordering::SeqCst),
            records,
            inner.users.prefix_count(),
        )
    }
}

const LIMIT_PER_USER: usize = 3;

#[test]
fn counter_records_and_index_agree_after_a_storm() {
    let clock = ManualClock::new(Timestamp(1_700_000_000_000));
    let store = MemoryStore::open(MemoryStoreConfig {
        shards: 4,
        max_sessions: Some(200),
        sweep_interval: Some(Duration::from_millis(1)),
        clock: Arc::new(clock.clone()),
    })
    .unwrap();
    let manager = Arc::new(SessionManager::new(
        store,
        ManagerConfig {
            expiry: ExpiryPolicy {
                idle_timeout_ms: 50,
                ..ExpiryPolicy::DEFAULT
            },
            max_sessions_per_user: Some(LIMIT_PER_USER as u32),
            clock: Arc::new(clock.clone()),
            ..ManagerConfig::default()
        },
    ));
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<_> = (0..6)
        .map(|t| {
            let (m, tokens, stop) = (manager.clone(), tokens.clone(), stop.clone());
            thread::spawn(move || storm(t, &m, &tokens, &stop))
        })
        .collect();
    threads.push({
        let (clock, stop) = (clock.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                clock.advance(1);
                thread::sleep(Duration::from_micros(50));
            }
        })
    });
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    for handle in threads {
        handle.join().unwrap();
    }
    manager.store().stop_sweeper();
    let (len, records, prefixes) = manager.store().counts();
    assert_eq!(len, records, "the record counter drifted");
    assert_eq!(records, prefixes, "index and records disagree");
    clock.advance(1_000_000);
    block_on(manager.purge_expired()).unwrap();
    assert_eq!(manager.store().counts(), (0, 0, 0));
}

fn storm(
    t: usize,
    m: &SessionManager<MemoryStore>,
    tokens: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let mut i = 0usize;
    let pick = |i: usize| {
        let tokens = tokens.lock().unwrap();
        (!tokens.is_empty()).then(|| tokens[(i * 7919) % tokens.len()].clone())
    };
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let user = format!("u{}", (i + t) % 7);
        match (i + t) % 8 {
            0..=2 => {
                let options = CreateOptions {
                    idle_timeout_ms: Some(1 + (i % 80) as i64),
                    ..Default::default()
                };
                if let Ok(token) = block_on(m.create(&user, SessionData::empty(), options)) {
                    let mut tokens = tokens.lock().unwrap();
                    tokens.push(token.into_string());
                    if tokens.len() > 500 {
                        tokens.remove(0);
                    }
                }
            }
            3 => {
                if let Some(token) = pick(i) {
                    block_on(m.end(&token)).unwrap();
                }
            }
            4 => {
                if let Some(new) = pick(i).and_then(|token| block_on(m.rotate(&token)).ok()) {
                    tokens.lock().unwrap().push(new.into_string());
                }
            }
            5 => {
                block_on(m.end_user(&user, pick(i).as_deref())).unwrap();
            }
            6 => {
                let listed = block_on(m.list_user(&user)).unwrap();
                assert!(
                    listed.len() <= LIMIT_PER_USER,
                    "{user} has {} sessions",
                    listed.len()
                );
            }
            _ => {
                if let Some(token) = pick(i) {
                    let _ = block_on(m.increment(&token, "n", 1));
                    let _ = block_on(m.get(&token));
                }
                if i % 16 == 7 {
                    block_on(m.purge_expired()).unwrap();
                }
            }
        }
    }
}

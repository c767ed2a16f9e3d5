//! What metrics and events cost the engine: get and create on the
//! memory store (10 k live sessions) with metrics off, on, and on with a
//! subscriber whose thread takes every event, in rotating rounds so this
//! machine's drift hits all alike; prints each side's median and its ratio
//! to "off". `cargo run --release -p sessionmanager-core --example metrics_cost`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sessionmanager_core::{
    CreateOptions, DataLimits, ManagerConfig, MemoryStore, SessionData, SessionManager, block_on,
};

const LIVE: usize = 10_000;
const GETS: usize = 200_000;
const CREATES: usize = 50_000;
const ROUNDS: usize = 21;

fn data() -> SessionData {
    SessionData::from_json_str(r#"{"role":"admin","theme":"dark"}"#, &DataLimits::default())
        .unwrap()
}

fn manager(metrics: bool) -> (SessionManager<MemoryStore>, Vec<String>) {
    let config = ManagerConfig {
        metrics,
        ..ManagerConfig::default()
    };
    let manager = SessionManager::new(MemoryStore::default(), config);
    let tokens = (0..LIVE)
        .map(|i| {
            let token = block_on(manager.create(&format!("user{i}"), data(), Default::default()));
            token.unwrap().into_string()
        })
        .collect();
    (manager, tokens)
}

/// Nanoseconds per get and per create, one round (the sessions created
/// are ended afterwards, untimed).
fn round(manager: &SessionManager<MemoryStore>, tokens: &[String]) -> (f64, f64) {
    let started = Instant::now();
    let mut i = 0;
    for _ in 0..GETS {
        i = (i + 7919) % tokens.len();
        black_box(block_on(manager.get(&tokens[i])).unwrap());
    }
    let get = started.elapsed().as_nanos() as f64 / GETS as f64;
    let started = Instant::now();
    let created: Vec<_> = (0..CREATES)
        .map(|_| block_on(manager.create("bench", data(), CreateOptions::default())).unwrap())
        .collect();
    let create = started.elapsed().as_nanos() as f64 / CREATES as f64;
    for token in created {
        block_on(manager.end(token.as_str())).unwrap();
    }
    (get, create)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let (off, off_tokens) = manager(false);
    let (on, on_tokens) = manager(true);
    let (watched, watched_tokens) = manager(true);
    let subscription = watched.subscribe(100_000);
    let taken = std::thread::spawn(move || {
        let mut taken = 0u64;
        while subscription.next_timeout(Duration::from_secs(60)).is_some() {
            taken += 1;
        }
        taken
    });
    let (mut gets, mut creates) = ([vec![], vec![], vec![]], [vec![], vec![], vec![]]);
    let sides = [
        (&off, &off_tokens),
        (&on, &on_tokens),
        (&watched, &watched_tokens),
    ];
    for n in 0..ROUNDS {
        // Each side goes first in turn, so none is always warmer.
        for side in [n % 3, (n + 1) % 3, (n + 2) % 3] {
            let (get, create) = round(sides[side].0, sides[side].1);
            gets[side].push(get);
            creates[side].push(create);
        }
    }
    for (name, figures) in [("get", gets), ("create", creates)] {
        let [off, on, watched] = figures.map(median);
        println!(
            "{name:7} off {off:7.1} ns  metrics {on:7.1} ns ({:.3})  \
             metrics+events {watched:7.1} ns ({:.3})",
            on / off,
            watched / off
        );
    }
    let dropped = watched.stats().expect("metrics on").events_dropped;
    drop(watched);
    let taken = taken.join().expect("the subscriber thread");
    println!("events the subscriber took: {taken}, dropped: {dropped}");
}

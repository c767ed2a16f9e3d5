//! What metrics cost the engine: get and create-then-end on the memory store
//! (10 k live sessions) with metrics off and on, in alternating rounds so
//! this machine's drift hits both alike; prints each side's median and the
//! ratio. `cargo run --release -p sessionmanager-core --example metrics_cost`.

use std::hint::black_box;
use std::time::Instant;

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

/// Nanoseconds per get and per create-then-end, one round.
fn round(manager: &SessionManager<MemoryStore>, tokens: &[String]) -> (f64, f64) {
    let started = Instant::now();
    let mut i = 0;
    for _ in 0..GETS {
        i = (i + 7919) % tokens.len();
        black_box(block_on(manager.get(&tokens[i])).unwrap());
    }
    let get = started.elapsed().as_nanos() as f64 / GETS as f64;
    let started = Instant::now();
    for _ in 0..CREATES {
        let token = block_on(manager.create("bench", data(), CreateOptions::default())).unwrap();
        block_on(manager.end(token.as_str())).unwrap();
    }
    let create = started.elapsed().as_nanos() as f64 / CREATES as f64;
    (get, create)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let (off, off_tokens) = manager(false);
    let (on, on_tokens) = manager(true);
    let (mut gets, mut creates) = ([vec![], vec![]], [vec![], vec![]]);
    for _ in 0..ROUNDS {
        for (side, (m, tokens)) in [(&off, &off_tokens), (&on, &on_tokens)]
            .into_iter()
            .enumerate()
        {
            let (get, create) = round(m, tokens);
            gets[side].push(get);
            creates[side].push(create);
        }
    }
    for (name, figures) in [("get", gets), ("create_then_end", creates)] {
        let [off, on] = figures.map(median);
        println!(
            "{name:16} off {off:7.1} ns  on {on:7.1} ns  on/off {:.3}",
            on / off
        );
    }
}

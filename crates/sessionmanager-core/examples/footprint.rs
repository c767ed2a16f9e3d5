//! Prints the resident memory that N live sessions with small data take:
//! `cargo run --release -p sessionmanager-core --example footprint -- 1000000`.
//!
//! By default every session shares one data value (as when an application
//! passes the same `SessionData` around); with `distinct` as the second
//! argument each session gets its own copy, as data parsed per request does.

use sessionmanager_core::{
    CreateOptions, DataLimits, ManagerConfig, MemoryStore, SessionData, SessionManager, block_on,
};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = status
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let distinct = args.next().is_some_and(|a| a == "distinct");
    let small_data = || {
        SessionData::from_json_str(r#"{"role":"admin","theme":"dark"}"#, &DataLimits::default())
            .expect("valid data")
    };
    let shared = small_data();
    let manager = SessionManager::new(MemoryStore::default(), ManagerConfig::default());
    let before = rss_bytes();
    for i in 0..count {
        let user = format!("user{i}");
        let data = if distinct {
            small_data()
        } else {
            shared.clone()
        };
        // The token is the client's copy, not the store's: drop it rather than
        // subtract an estimate of what the process keeps for it.
        drop(block_on(manager.create(&user, data, CreateOptions::default())).unwrap());
    }
    let store = rss_bytes().saturating_sub(before);
    println!(
        "{count} sessions, {} data: {:.1} MB resident for the store ({:.0} bytes per session)",
        if distinct { "distinct" } else { "shared" },
        store as f64 / 1e6,
        store as f64 / count as f64
    );
}

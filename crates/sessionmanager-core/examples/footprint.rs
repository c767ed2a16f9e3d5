//! Prints the resident memory that N live sessions with small data take:
//! `cargo run --release -p sessionmanager-core --example footprint -- 1000000`.

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
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let data =
        SessionData::from_json_str(r#"{"role":"admin","theme":"dark"}"#, &DataLimits::default())
            .expect("valid data");
    let manager = SessionManager::new(MemoryStore::default(), ManagerConfig::default());
    let before = rss_bytes();
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let user = format!("user{i}");
        tokens
            .push(block_on(manager.create(&user, data.clone(), CreateOptions::default())).unwrap());
    }
    let after = rss_bytes();
    // The tokens are the clients' copies, not the store's; do not count them.
    let tokens_bytes = (count * (43 + 24)) as u64;
    let store = after.saturating_sub(before).saturating_sub(tokens_bytes);
    println!(
        "{count} sessions: {:.1} MB resident for the store ({:.0} bytes per session)",
        store as f64 / 1e6,
        store as f64 / count as f64
    );
}

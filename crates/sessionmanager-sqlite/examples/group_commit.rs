//! Creates per second on the SQLite store from 1 and from 8 threads, for each
//! durability, straight from Rust (no Python in the way):
//! `cargo run --release -p sessionmanager-sqlite --example group_commit`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sessionmanager_core::{ManagerConfig, SessionData, SessionManager, block_on};
use sessionmanager_sqlite::{Durability, SqliteConfig, SqliteStore};

fn rate(durability: Durability, threads: usize) -> f64 {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = SqliteStore::open(SqliteConfig {
        durability,
        ..SqliteConfig::new(dir.path().join("s.db"))
    })
    .expect("the store opens");
    let manager = Arc::new(SessionManager::new(store, ManagerConfig::default()));
    let (done, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let workers: Vec<_> = (0..threads)
        .map(|n| {
            let (manager, done, stop) = (manager.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                let user = format!("user{n}");
                while !stop.load(Ordering::Relaxed) {
                    block_on(manager.create(&user, SessionData::empty(), Default::default()))
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    workers.into_iter().for_each(|w| w.join().unwrap());
    done.load(Ordering::Relaxed) as f64 / began.elapsed().as_secs_f64()
}

fn main() {
    println!("| durability | 1 thread | 8 threads | 8 / 1 |\n|---|---:|---:|---:|");
    for durability in [Durability::Normal, Durability::Full] {
        let (one, eight) = (rate(durability, 1), rate(durability, 8));
        println!(
            "| {durability:?} | {one:.0} | {eight:.0} | {:.1} |",
            eight / one
        );
    }
}

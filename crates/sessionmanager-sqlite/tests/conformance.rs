//! The shared store-conformance suite, run against a SQLite file per check.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessionmanager_core::ManualClock;
use sessionmanager_sqlite::{SqliteConfig, SqliteStore};

/// A fresh database file under cargo's per-test scratch folder.
fn fresh_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "conformance-{}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// A fresh database, swept only by the checks.
fn sqlite_store(clock: ManualClock) -> SqliteStore {
    let path = fresh_path();
    SqliteStore::open(SqliteConfig {
        clock: Arc::new(clock),
        sweep_interval: None,
        ..SqliteConfig::new(path)
    })
    .expect("a new database opens")
}

sessionmanager_core::conformance_tests!(sqlite_store);

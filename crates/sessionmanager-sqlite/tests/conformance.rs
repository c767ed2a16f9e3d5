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

/// `end_user` removes a user's sessions in transactions of 500: the expired
/// ones of every batch are reported expired, the live ones ended, each once.
#[test]
fn ending_a_user_reports_every_batch() {
    use std::collections::HashSet;

    use sessionmanager_core::{
        Clock, CreateOptions, EndReason, EventKind, ManagerConfig, SessionData, SessionManager,
        SystemClock, block_on,
    };

    const SHORT_MS: i64 = 60_000;
    let clock = ManualClock::new(SystemClock.now());
    let config = ManagerConfig {
        clock: Arc::new(clock.clone()),
        ..ManagerConfig::default()
    };
    let m = SessionManager::new(sqlite_store(clock.clone()), config);
    let events = m.subscribe(1_000);
    let create = |idle_timeout_ms: Option<i64>| {
        let options = CreateOptions {
            idle_timeout_ms,
            ..CreateOptions::default()
        };
        let token = block_on(m.create("alice", SessionData::empty(), options));
        token.expect("create").key()
    };
    let t0 = clock.now();
    let expired: HashSet<_> = (0..520).map(|_| create(Some(SHORT_MS))).collect();
    let live: HashSet<_> = (0..5).map(|_| create(None)).collect();
    std::iter::from_fn(|| events.try_next()).for_each(drop);
    clock.set(t0.plus_millis(SHORT_MS));

    assert_eq!(block_on(m.end_user("alice", None)).expect("end_user"), 5);
    let got: Vec<_> = std::iter::from_fn(|| events.try_next()).collect();
    let keys = |kind: EventKind| -> HashSet<_> {
        got.iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.key)
            .collect()
    };
    assert_eq!(keys(EventKind::Expired), expired);
    assert_eq!(keys(EventKind::Ended(EndReason::EndedWithUser)), live);
    assert_eq!(got.len(), expired.len() + live.len(), "each once");
}

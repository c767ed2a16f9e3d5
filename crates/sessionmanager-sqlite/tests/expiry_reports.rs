//! `end_user` removes a user's sessions in batches of 500, each its own
//! transaction: the expired ones of every batch reach subscribers as
//! `Expired` events, the live ones as ended (the conformance suite checks
//! the rest of what calls report with fewer sessions).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessionmanager_core::{
    Clock, CreateOptions, EndReason, EventKind, ManagerConfig, ManualClock, SessionData,
    SessionEvent, SessionManager, SessionToken, Subscription, SystemClock, block_on,
};
use sessionmanager_sqlite::{SqliteConfig, SqliteStore};

/// The idle timeout of sessions that expire during a test.
const SHORT_MS: i64 = 60_000;
/// The idle timeout of sessions that stay live throughout.
const LONG_MS: i64 = 3_600_000;

/// A fresh database under cargo's per-test scratch folder.
fn fresh_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "expiry-reports-{}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// A manager reading `clock`, on a store of the database at `path` that
/// reads it too and has no sweeper (expired sessions go only when a call
/// removes them).
fn manager_on(
    path: &Path,
    clock: &ManualClock,
    configure: impl FnOnce(&mut ManagerConfig),
) -> SessionManager<SqliteStore> {
    let store = SqliteStore::open(SqliteConfig {
        clock: Arc::new(clock.clone()),
        sweep_interval: None,
        ..SqliteConfig::new(path)
    })
    .expect("the database opens");
    let mut config = ManagerConfig {
        clock: Arc::new(clock.clone()),
        ..ManagerConfig::default()
    };
    configure(&mut config);
    SessionManager::new(store, config)
}

/// A manager on a fresh database, its clock, and a subscription to it.
fn manager(
    max_sessions_per_user: Option<u32>,
) -> (SessionManager<SqliteStore>, ManualClock, Subscription) {
    let clock = ManualClock::new(SystemClock.now());
    let manager = manager_on(&fresh_path(), &clock, |config| {
        config.max_sessions_per_user = max_sessions_per_user;
    });
    let events = manager.subscribe(100);
    (manager, clock, events)
}

fn create(m: &SessionManager<SqliteStore>, user: &str, idle_timeout_ms: i64) -> SessionToken {
    let options = CreateOptions {
        idle_timeout_ms: Some(idle_timeout_ms),
        ..CreateOptions::default()
    };
    block_on(m.create(user, SessionData::empty(), options)).expect("create")
}

fn drain(events: &Subscription) -> Vec<SessionEvent> {
    std::iter::from_fn(|| events.try_next()).collect()
}

/// `delete_user` ends sessions in batches, each committed and reported alone.
#[test]
fn ending_a_user_reports_every_batch() {
    let (m, clock, _) = manager(None);
    let events = m.subscribe(1_000);
    let t0 = clock.now();
    let expired: HashSet<_> = (0..520)
        .map(|_| create(&m, "alice", SHORT_MS).key())
        .collect();
    let live: HashSet<_> = (0..5).map(|_| create(&m, "alice", LONG_MS).key()).collect();
    drain(&events);
    clock.set(t0.plus_millis(SHORT_MS));

    assert_eq!(block_on(m.end_user("alice", None)).expect("end_user"), 5);
    let got = drain(&events);
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

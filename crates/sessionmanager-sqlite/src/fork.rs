//! Keeping SQLite's own state clean across `fork()`.
//!
//! SQLite forbids using a connection in a child it was not opened in, and a
//! child's new connections are not safe either while the parent had the file
//! open: SQLite keeps one record per open file and process of which locks
//! that process holds, and the child inherits the parent's record (with
//! locks that, for the kernel, only the parent holds). So the store lets no
//! connection cross a fork: [`prepare_fork`] waits for every call in flight
//! and closes every connection, the parent reopens them in
//! [`after_fork_in_parent`], and the child opens stores of its own (its
//! copies refuse every call, see `SqliteStore`).
//!
//! The Python package calls these from `pthread_atfork` handlers; a Rust
//! program that forks while a store is open should do the same.

use std::cell::RefCell;
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};

use crate::store::Inner;

/// Held shared by every store call that uses a connection, and exclusively
/// from [`prepare_fork`] until the fork is done.
static GATE: RwLock<()> = RwLock::new(());

/// The stores of this process, to suspend and resume around a fork.
static OPEN: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// What the forking thread holds between the fork handlers: the gate, and
/// the list of stores (so that no other thread holds it at the fork and the
/// child can register stores of its own).
struct Held {
    _gate: RwLockWriteGuard<'static, ()>,
    open: MutexGuard<'static, Vec<Weak<Inner>>>,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Lets a store call use connections; a fork waits until it ends.
pub(crate) fn enter() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Adds a store to those suspended around a fork.
pub(crate) fn register(inner: &Arc<Inner>) {
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    open.retain(|store| store.strong_count() > 0);
    open.push(Arc::downgrade(inner));
}

/// Call just before `fork()`, in the thread that forks: waits for the store
/// calls in flight to end, holds off new ones, and closes every connection of
/// every store in the process.
pub fn prepare_fork() {
    let gate = GATE.write().unwrap_or_else(PoisonError::into_inner);
    let open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    open.iter()
        .filter_map(Weak::upgrade)
        .for_each(|inner| inner.suspend());
    HELD.with(|held| *held.borrow_mut() = Some(Held { _gate: gate, open }));
}

/// Call in the parent right after `fork()`: reopens the connections and lets
/// store calls go on.
pub fn after_fork_in_parent() {
    if let Some(held) = HELD.with(|held| held.borrow_mut().take()) {
        held.open
            .iter()
            .filter_map(Weak::upgrade)
            .for_each(|inner| inner.resume());
    }
}

/// Call in the child right after `fork()`. The stores it inherited stay
/// closed (they belong to the parent); it opens its own.
pub fn after_fork_in_child() {
    HELD.with(|held| held.borrow_mut().take());
}

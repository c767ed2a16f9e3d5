//! Knowing that this process is a `fork()` child of the one that opened a store.
//!
//! A forked child inherits copies of its parent's sockets, runtimes and locks
//! but none of its threads: a connection used from both processes crosses
//! their answers, and a lock a vanished thread held stays locked forever. So
//! whatever belongs to a process (connections, runtimes, threads) is made
//! again in the child and the inherited copies are left untouched.
//!
//! Asking the kernel for the process id on every call costs a system call
//! (~200 ns on a VM, as much as a whole in-memory read), so the process
//! counts its forks instead: [`generation`] is one atomic load, and whoever
//! forks calls [`note_fork_in_child`] in the child before anything else runs.
//! The Python package does it from a `pthread_atfork` handler; a Rust program
//! that forks and keeps using a store should do the same.

use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// How many forks lie between the process that started this program and
/// this one (as far as [`note_fork_in_child`] was told). Something made in
/// another generation belongs to another process.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Records that this process is a new fork child. Call it in the child
/// right after `fork()` returns (it only adds to an atomic counter, so it is
/// safe in a `pthread_atfork` child handler).
pub fn note_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

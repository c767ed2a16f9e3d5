//! Calls that come back while the interpreter is shutting down.
//!
//! At exit, CPython ends every daemon thread that waits to take the GIL back
//! by unwinding it with `pthread_exit`. A thread coming back from a store
//! call (which released the GIL) would be unwound through the binding's
//! frames, which catch unwinds to turn panics into exceptions: the C runtime
//! then aborts the process ("FATAL: exception not rethrown").
//!
//! So the package registers [`_interpreter_exiting`] with `atexit` (it runs
//! after the application's own exit handlers, before CPython ends daemon
//! threads). From then on, a thread other than the exiting one finishes its
//! store call (the write is done, as durable as the store makes it) and then
//! waits for the process to end instead of taking the GIL back. Threads
//! already on their way back to the GIL are let through first, with the GIL
//! released, so that none is still waiting for it when CPython starts
//! ending threads.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// The thread that runs the interpreter's exit, once it began.
static EXITING_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Threads between the end of their store call and holding the GIL again.
static RETURNING: AtomicUsize = AtomicUsize::new(0);

/// How long the exit waits for returning threads (each needs the GIL once).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Marks the start of the interpreter's exit, then lets every thread that is
/// already on its way back to the GIL get there.
#[pyfunction]
pub(crate) fn _interpreter_exiting(py: Python<'_>) {
    let _ = EXITING_THREAD.set(thread::current().id());
    std::sync::atomic::fence(Ordering::SeqCst);
    py.detach(|| {
        let started = Instant::now();
        while RETURNING.load(Ordering::SeqCst) > 0 && started.elapsed() < DRAIN_LIMIT {
            thread::sleep(Duration::from_millis(1));
        }
    });
}

fn exiting_elsewhere() -> bool {
    EXITING_THREAD
        .get()
        .is_some_and(|exiting| *exiting != thread::current().id())
}

/// Runs `work` with the GIL released, like `Python::detach`, except that a
/// daemon thread finishing during the interpreter's exit never takes the GIL
/// back (see the module documentation).
pub(crate) fn detach<T: Send>(py: Python<'_>, work: impl FnOnce() -> T + Send) -> T {
    let out = py.detach(|| {
        let out = work();
        // Counted before looking at the flag, and the exit sets the flag
        // before reading the count: either this thread sees the exit and
        // stays here, or the exit sees this thread and waits for it.
        RETURNING.fetch_add(1, Ordering::SeqCst);
        if exiting_elsewhere() {
            RETURNING.fetch_sub(1, Ordering::SeqCst);
            loop {
                thread::park(); // until the process ends
            }
        }
        out
    });
    RETURNING.fetch_sub(1, Ordering::SeqCst);
    out
}

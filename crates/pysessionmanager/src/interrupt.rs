//! Ctrl-C while a store call waits. Python runs signal handlers on its main
//! thread only, between bytecodes, so a call that waits with the GIL released
//! would raise `KeyboardInterrupt` only once the store answered or
//! `timeout_ms` ran out. The engine's interrupt hook asks, every 50 ms of
//! waiting on the main thread, whether a handler raised; if one did, the call
//! gives up and raises that exception. The store call it abandoned may still
//! complete: an interrupted write may or may not have happened.

use std::cell::{Cell, RefCell};

use pyo3::prelude::*;
use sessionmanager_core::interrupt::{self, Hook};

thread_local! {
    /// Whether this thread is Python's main thread, once a call has asked.
    static MAIN: Cell<Option<bool>> = const { Cell::new(None) };
    /// What a signal handler raised while this thread waited for a store.
    static RAISED: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Installs the engine's hook (once per process).
pub(crate) fn install() {
    interrupt::install(Hook {
        interruptible: || MAIN.with(|main| main.get() == Some(true)),
        interrupted,
    });
}

/// Notes, with the GIL held, whether the calling thread is Python's main
/// thread; only the first call on a thread looks.
pub(crate) fn note_thread(py: Python<'_>) {
    MAIN.with(|main| {
        if main.get().is_none() {
            main.set(Some(is_main_thread(py)));
        }
    });
}

fn is_main_thread(py: Python<'_>) -> bool {
    let check = || -> PyResult<bool> {
        let threading = py.import("threading")?;
        let current = threading.call_method0("current_thread")?;
        Ok(current.is(&threading.call_method0("main_thread")?))
    };
    check().unwrap_or(false)
}

/// Runs pending signal handlers; whether one raised (kept for [`take_raised`]).
fn interrupted() -> bool {
    Python::attach(|py| match py.check_signals() {
        Ok(()) => false,
        Err(raised) => {
            RAISED.with(|slot| *slot.borrow_mut() = Some(raised));
            true
        }
    })
}

/// The exception a signal handler raised during the call that just ended.
pub(crate) fn take_raised() -> Option<PyErr> {
    RAISED.with(|slot| slot.borrow_mut().take())
}

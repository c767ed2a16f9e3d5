//! Managers that survive `fork()`: gunicorn `--preload`, a module-level
//! manager, `multiprocessing`'s fork start method.
//!
//! A child inherits the parent's connections, runtimes and locks but none of
//! its threads. So each process uses an engine of its own: the first call in
//! a child opens the store again from its URL (the inherited engine is
//! leaked, never touched: dropping it would join threads that are not there
//! or write on the parent's sockets). A memory store is the exception: its
//! sessions live in this process's memory, so the child keeps its copy when
//! that copy is whole. `pthread_atfork` handlers count forks (so a call
//! costs one atomic load to know it is still in its process) and keep
//! SQLite's connections from crossing a fork at all.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sessionmanager_core::{Error, ManagerConfig, fork, scrub, scrub_error};

use crate::errors::{self, IntoPyResult};
use crate::store::{self, AnyStore};

/// The engine over any store the package can open.
pub(crate) type Engine = sessionmanager_core::SessionManager<AnyStore>;

/// An engine for this process: the one opened here, or one opened again
/// after a fork.
pub(crate) struct ProcessEngine {
    opened: Arc<Engine>,
    /// The fork generation `opened` belongs to.
    generation: u64,
    /// To open the store again in a child. Holds the password, if any: it is
    /// never shown (see `redacted_url`).
    url: String,
    config: ManagerConfig,
    /// The engine of a later generation (this process is a fork child).
    reopened: Mutex<Option<(u64, Arc<Engine>)>>,
    closed: AtomicBool,
}

impl ProcessEngine {
    /// Opens the store `url` names under `config`.
    pub(crate) fn open(py: Python<'_>, url: &str, config: ManagerConfig) -> PyResult<Self> {
        install_fork_handlers();
        config.validate().py(py)?;
        Ok(Self {
            opened: Arc::new(open_engine(py, url, config.clone())?),
            generation: fork::generation(),
            url: url.to_owned(),
            config,
            reopened: Mutex::new(None),
            closed: AtomicBool::new(false),
        })
    }

    /// The engine to use in this process.
    pub(crate) fn get(&self, py: Python<'_>) -> PyResult<Cow<'_, Arc<Engine>>> {
        let generation = fork::generation();
        if generation == self.generation {
            return Ok(Cow::Borrowed(&self.opened));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(errors::to_py(py, Error::Closed));
        }
        if let Some((made_in, engine)) = &*self.lock_reopened()
            && *made_in == generation
        {
            return Ok(Cow::Owned(Arc::clone(engine)));
        }
        // Opening may connect to a server: without the GIL, and without
        // holding the lock (a thread waiting for it would hold the GIL).
        let fresh = self.for_this_process(py)?;
        let mut reopened = self.lock_reopened();
        match &*reopened {
            Some((made_in, engine)) if *made_in == generation => Ok(Cow::Owned(Arc::clone(engine))),
            _ => {
                // An engine of an earlier generation is a parent's: leaked, like `opened`.
                if let Some((_, parents)) = reopened.take() {
                    std::mem::forget(parents);
                }
                *reopened = Some((generation, Arc::clone(&fresh)));
                Ok(Cow::Owned(fresh))
            }
        }
    }

    /// The engine this process should use instead of an inherited one.
    fn for_this_process(&self, py: Python<'_>) -> PyResult<Arc<Engine>> {
        // Never dropped in this process: its threads and sockets are the parent's.
        std::mem::forget(Arc::clone(&self.opened));
        if let AnyStore::Memory(memory) = self.opened.store()
            && memory.adopt_after_fork().py(py)?
        {
            return Ok(Arc::clone(&self.opened));
        }
        Ok(Arc::new(open_engine(py, &self.url, self.config.clone())?))
    }

    fn lock_reopened(&self) -> std::sync::MutexGuard<'_, Option<(u64, Arc<Engine>)>> {
        self.reopened.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The settings the engine runs with (the same in every process).
    pub(crate) fn config(&self) -> &ManagerConfig {
        self.opened.config()
    }

    /// Closes this process's engine; later calls here and in children
    /// forked afterwards fail with `ManagerClosed`.
    pub(crate) fn close(&self, py: Python<'_>) -> PyResult<()> {
        let engine = self.get(py)?;
        self.closed.store(true, Ordering::Release);
        crate::manager::run(py, engine.close())
    }
}

/// Opens the store `url` names and an engine over it.
fn open_engine(py: Python<'_>, url: &str, config: ManagerConfig) -> PyResult<Engine> {
    // Opening may connect to a server (up to its timeout): without the GIL.
    let clock = config.clock.clone();
    // No message about the URL quotes its user info, whatever failed.
    let opened = crate::exit::detach(py, || store::open(url, clock)).map_err(|e| match e {
        store::OpenError::BadUrl(message) => PyValueError::new_err(scrub(&message, url)),
        store::OpenError::Store(err) => errors::to_py(py, scrub_error(err, url)),
    })?;
    Engine::try_new(opened, config).py(py)
}

/// Registers the fork handlers, once per process.
fn install_fork_handlers() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(register_at_fork);
}

/// `pthread_atfork`: the one foreign call of the package. The handlers only
/// take and release the SQLite stores' locks and count forks: no Python, no
/// allocation in the child, nothing that can unwind.
#[allow(unsafe_code)]
fn register_at_fork() {
    extern "C" fn prepare() {
        sessionmanager_sqlite::fork::prepare_fork();
    }
    extern "C" fn parent() {
        sessionmanager_sqlite::fork::after_fork_in_parent();
    }
    extern "C" fn child() {
        fork::note_fork_in_child();
        sessionmanager_sqlite::fork::after_fork_in_child();
    }
    // SAFETY: the handlers are plain functions that live as long as the
    // process (the extension module is never unloaded).
    let failed = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    // Fails only without memory for the handler list; forks then stay
    // unnoticed, which the stores that check their process id still refuse.
    let _ = failed;
}

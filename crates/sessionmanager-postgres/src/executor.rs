//! The store's own small tokio runtime. The engine drives store futures with
//! its own executor (no tokio), while tokio-postgres needs a tokio reactor:
//! each call runs as a task here and the caller awaits its handle, so any
//! number of caller threads wait at once while one worker thread does the I/O.

use std::cell::Cell;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sessionmanager_core::{Error, Result};
use tokio::runtime::{Handle, Runtime};

use deadpool_postgres::Pool;

use crate::error::{pool_exhausted, timed_out};
use crate::target::Target;

tokio::task_local! {
    /// How long the call waited for a connection of a pool whose every
    /// connection was in use (kept by `Inner::conn`).
    pub(crate) static POOL_WAIT: PoolWait;
}

/// Time a call spent waiting for a busy pool.
#[derive(Default)]
pub(crate) struct PoolWait {
    /// Waits that ended.
    waited: Cell<Duration>,
    /// When the wait under way began.
    since: Cell<Option<Instant>>,
}

impl PoolWait {
    /// A wait for a busy pool begins.
    pub(crate) fn start(&self) {
        self.since.set(Some(Instant::now()));
    }

    /// The wait under way, if any, ended.
    pub(crate) fn stop(&self) {
        if let Some(since) = self.since.take() {
            self.waited.set(self.waited.get() + since.elapsed());
        }
    }

    fn total(&self) -> Duration {
        self.waited.get() + self.since.get().map_or(Duration::ZERO, |s| s.elapsed())
    }
}

/// Owns the runtime; shutting it down ends every task and connection.
pub(crate) struct Executor {
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
}

impl Executor {
    /// Starts the runtime: one worker thread, I/O and timers.
    pub(crate) fn start() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("postgres-session-store")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::Store(format!("cannot start the PostgreSQL store's runtime: {e}").into())
            })?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        })
    }

    /// A handle to spawn on; spawning after [`Executor::shutdown`] yields [`Error::Closed`].
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops the runtime without waiting for its tasks (safe from any thread,
    /// even one of another tokio runtime): their connections are dropped.
    pub(crate) fn shutdown(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

impl Executor {
    /// Leaks the runtime without touching its threads (in a forked child,
    /// where they do not exist).
    pub(crate) fn forget(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        std::mem::forget(runtime);
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `work` on the runtime behind `handle`, failing as unavailable if it
/// takes longer than `timeout` (the work is then dropped, and with it any
/// connection it was using: see [`crate::conn::Conn`]).
pub(crate) fn spawn<T: Send + 'static>(
    handle: &Handle,
    target: Arc<Target>,
    pool: Pool,
    doing: &'static str,
    timeout: Duration,
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> impl Future<Output = Result<T>> + Send + 'static {
    let task = handle.spawn(POOL_WAIT.scope(PoolWait::default(), async move {
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                // Most of the time went to waiting for a busy pool's connection:
                // the pool was too small for the load, not the server too slow.
                let waited = POOL_WAIT.with(PoolWait::total);
                if waited * 2 >= timeout {
                    Err(pool_exhausted(
                        &target,
                        doing,
                        timeout,
                        waited,
                        pool.status().max_size,
                    ))
                } else {
                    Err(timed_out(&target, doing, timeout))
                }
            }
        }
    }));
    async move {
        match task.await {
            Ok(result) => result,
            // The runtime was shut down: the store is closed.
            Err(e) if e.is_cancelled() => Err(Error::Closed),
            Err(e) => Err(Error::Store(
                format!("a PostgreSQL store task failed while trying to {doing}: {e}").into(),
            )),
        }
    }
}

//! Store work for asynchronous hosts (an asyncio event loop, say): whole
//! tasks run on the store's own runtime, which a thread of the store drives
//! once the first such task arrives, so the host waits on nothing but the
//! task's own notice that it finished.
//!
//! Synchronous callers keep driving the runtime themselves; while the
//! driving thread runs, they wait for their answers as any second caller
//! does (see the `store` module).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use sessionmanager_core::{Error, Result};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

tokio::task_local! {
    /// Set for tasks a driver runs, whose operations must not block: the
    /// address of the runtime they run on.
    static ON_DRIVER: usize;
}

/// Whether the current task is one that `runtime`'s driver runs (a task of
/// another store's driver, copying sessions between two stores, say, must
/// drive this store's runtime itself).
pub(crate) fn on_driver(runtime: &Arc<Runtime>) -> bool {
    ON_DRIVER
        .try_with(|on| *on == Arc::as_ptr(runtime) as usize)
        .unwrap_or(false)
}

/// The thread that drives the store's runtime for spawned tasks, started
/// on first use.
#[derive(Default)]
pub(crate) struct Driver {
    /// Ends the driving thread when sent or dropped.
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Driver {
    /// Runs `task` on `runtime`, starting the driving thread if needed.
    pub(crate) fn spawn(
        &self,
        runtime: &Arc<Runtime>,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let mut stop = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
        if stop.is_none() {
            let (sender, stopped) = oneshot::channel::<()>();
            let driven = Arc::clone(runtime);
            std::thread::Builder::new()
                .name("redis-session-store".into())
                .spawn(move || {
                    driven.block_on(async {
                        let _ = stopped.await;
                    });
                })
                .map_err(|e| {
                    Error::Store(format!("cannot start the Redis store's thread: {e}").into())
                })?;
            *stop = Some(sender);
        }
        drop(stop);
        runtime.spawn(ON_DRIVER.scope(Arc::as_ptr(runtime) as usize, task));
        Ok(())
    }

    /// Ends the driving thread, if any; its tasks end with the runtime.
    pub(crate) fn stop(&self) {
        self.stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Leaves the driving thread's handle untouched (in a forked child,
    /// where the thread does not exist and its lock may have been held).
    pub(crate) fn forget(&self) {
        if let Ok(mut stop) = self.stop.try_lock() {
            std::mem::forget(stop.take());
        }
    }
}

//! A background thread that runs a task at an interval until stopped: what a
//! store's expiry sweeper needs, written once.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fork;

/// What a [`Periodic`] task wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Wait for the interval, then run again.
    Sleep,
    /// Run again at once (work is piling up).
    Again,
    /// End the thread (the thing it served is gone).
    Stop,
}

/// Runs a task on its own thread every interval. Dropping it (or [`Periodic::stop`])
/// wakes the thread and waits for it to end.
///
/// In a `fork()` child (see [`crate::fork`]) the thread does not exist:
/// stopping there neither waits for it nor takes a lock it may have held.
#[derive(Debug)]
pub struct Periodic {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The fork generation whose process runs the thread.
    generation: u64,
}

impl Periodic {
    /// Starts a thread named `name` that calls `task` every `interval`; with
    /// no interval, starts nothing (and [`Periodic::stop`] does nothing).
    pub fn start(
        name: &str,
        interval: Option<Duration>,
        mut task: impl FnMut() -> Tick + Send + 'static,
    ) -> Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let generation = fork::generation();
        let Some(interval) = interval else {
            return Ok(Self {
                stop,
                thread: Mutex::new(None),
                generation,
            });
        };
        let signal = stop.clone();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let (flag, wake) = &*signal;
                loop {
                    let next = task();
                    let stopped = flag.lock().unwrap_or_else(PoisonError::into_inner);
                    let stopped = match next {
                        Tick::Stop => return,
                        Tick::Again => stopped,
                        Tick::Sleep => {
                            wake.wait_timeout_while(stopped, interval, |stopped| !*stopped)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0
                        }
                    };
                    if *stopped {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Store(format!("cannot start the {name} thread: {e}").into()))?;
        Ok(Self {
            stop,
            thread: Mutex::new(Some(thread)),
            generation,
        })
    }

    /// Wakes the thread and waits for it to end. Calling it again does nothing.
    pub fn stop(&self) {
        if fork::generation() != self.generation {
            self.forget();
            return;
        }
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Periodic {
    /// In a fork child: leaves the parent's thread (absent here) alone. Its
    /// handle is leaked, since joining it would wait forever, and its locks are
    /// only tried, since one may have been held when the process forked.
    fn forget(&self) {
        if let Ok(mut stopped) = self.stop.0.try_lock() {
            *stopped = true;
        }
        if let Ok(mut thread) = self.thread.try_lock() {
            std::mem::forget(thread.take());
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    #[test]
    fn runs_until_stopped_and_stops_promptly() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let periodic = Periodic::start("test", Some(Duration::from_millis(5)), move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Tick::Sleep
        })
        .unwrap();
        thread::sleep(Duration::from_millis(60));
        let started = Instant::now();
        periodic.stop();
        assert!(started.elapsed() < Duration::from_secs(1));
        let seen = runs.load(Ordering::SeqCst);
        assert!(seen >= 2, "{seen}");
        thread::sleep(Duration::from_millis(20));
        assert_eq!(runs.load(Ordering::SeqCst), seen);
    }

    #[test]
    fn a_task_can_end_itself() {
        let periodic =
            Periodic::start("test", Some(Duration::from_secs(3600)), || Tick::Stop).unwrap();
        let started = Instant::now();
        drop(periodic);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn no_interval_starts_nothing() {
        let periodic = Periodic::start("test", None, || unreachable!("never runs")).unwrap();
        periodic.stop();
    }
}

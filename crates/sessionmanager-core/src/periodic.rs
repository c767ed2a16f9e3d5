//! A background thread that runs a task at an interval until stopped: what a
//! store's expiry sweeper needs, written once.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

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
#[derive(Debug)]
pub struct Periodic {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Starts a thread named `name` that calls `task` every `interval`.
    pub fn start(
        name: &str,
        interval: Duration,
        mut task: impl FnMut() -> Tick + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = thread::Builder::new().name(name.into()).spawn(move || {
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
        })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Wakes the thread and waits for it to end. Calling it again does nothing.
    pub fn stop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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
        let mut periodic = Periodic::start("test", Duration::from_millis(5), move || {
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
        let periodic = Periodic::start("test", Duration::from_secs(3600), || Tick::Stop).unwrap();
        let started = Instant::now();
        drop(periodic);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

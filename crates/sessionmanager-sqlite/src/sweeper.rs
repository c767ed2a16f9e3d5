//! The background thread that removes expired rows in bounded batches, so the
//! file does not fill with dead sessions and no cron job is needed.

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::store::{Inner, SWEEP_BATCH};

/// Batches per tick at most, so a huge backlog is worked off over several ticks.
const BATCHES_PER_TICK: u32 = 20;

/// Stops the sweeper when dropped.
pub(crate) struct Sweeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    pub(crate) fn start(inner: Weak<Inner>, interval: Duration) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = thread::Builder::new()
            .name("sqlite-session-sweeper".into())
            .spawn(move || run(&inner, &signal, interval))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(inner: &Weak<Inner>, stop: &(Mutex<bool>, Condvar), interval: Duration) {
    loop {
        let (flag, wake) = stop;
        let stopped = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = wake
            .wait_timeout_while(stopped, interval, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        if *stopped {
            return;
        }
        drop(stopped);
        let Some(store) = inner.upgrade() else {
            return;
        };
        for _ in 0..BATCHES_PER_TICK {
            // Errors (a busy file) are retried next tick; expired rows are never returned meanwhile.
            match store.sweep_batch(store.clock.now()) {
                Ok(removed) if removed == SWEEP_BATCH as u64 => continue,
                _ => break,
            }
        }
    }
}

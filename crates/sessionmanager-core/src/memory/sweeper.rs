//! The background thread that removes expired sessions from a memory store,
//! a bounded slice of one shard at a time, so no lock is held for long and
//! expired sessions go away even if nobody touches them again.

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::Inner;

/// Records examined per lock hold.
const CHUNK: usize = 512;
/// Records examined per tick, unless most of what it saw had expired.
const TICK_BUDGET: usize = 8 * CHUNK;

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
            .name("session-sweeper".into())
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
    let mut cursor = (0usize, 0usize);
    loop {
        let mostly_expired = match inner.upgrade() {
            Some(store) => tick(&store, &mut cursor),
            None => return,
        };
        if mostly_expired {
            // Expiry is outpacing the sweep: go again without sleeping.
            if *stop.0.lock().unwrap_or_else(PoisonError::into_inner) {
                return;
            }
            continue;
        }
        let (flag, wake) = stop;
        let stopped = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = wake
            .wait_timeout_while(stopped, interval, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        if *stopped {
            return;
        }
    }
}

/// One tick: sweeps up to [`TICK_BUDGET`] records from the cursor on, stopping
/// early after a full pass. Returns whether more than a quarter of what it
/// examined had expired.
fn tick(store: &Inner, cursor: &mut (usize, usize)) -> bool {
    let (mut examined, mut removed, mut shards_finished) = (0, 0, 0);
    while examined < TICK_BUDGET && shards_finished < store.shards.len() {
        let (shard, position) = *cursor;
        let chunk = store.sweep_chunk(shard, position, CHUNK, store.clock.now());
        examined += chunk.examined;
        removed += chunk.removed;
        *cursor = match chunk.next {
            Some(position) => (shard, position),
            None => {
                shards_finished += 1;
                ((shard + 1) % store.shards.len(), 0)
            }
        };
    }
    removed * 4 > examined
}

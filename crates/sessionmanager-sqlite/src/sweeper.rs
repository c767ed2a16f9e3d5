//! The SQLite store's sweeper: removes expired rows in bounded batches, so
//! the file does not fill with dead sessions (or rate-limit state that
//! stopped mattering) and no cron job is needed.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sessionmanager_core::{Periodic, Result, Tick, Timestamp};

use crate::store::{Inner, SWEEP_BATCH};

/// Batches per tick at most, so a huge backlog is worked off over several ticks.
const BATCHES_PER_TICK: u32 = 20;

/// One bounded delete; returns how many rows it removed.
type Batch = fn(&Inner, Timestamp) -> Result<u64>;

/// Starts the sweeper (none without an interval); it ends when the store is
/// dropped or the handle stopped.
pub(crate) fn start(inner: Weak<Inner>, interval: Option<Duration>) -> Result<Periodic> {
    Periodic::start("sqlite-session-sweeper", interval, move || {
        let Some(store) = inner.upgrade() else {
            return Tick::Stop;
        };
        // Errors (a busy file) are retried next tick; expired rows are never returned meanwhile.
        let sweeps: [(Batch, bool); 2] =
            [(Inner::sweep_batch, true), (Inner::sweep_rate_batch, false)];
        for (sweep, sessions) in sweeps {
            for _ in 0..BATCHES_PER_TICK {
                let Ok(removed) = sweep(&store, store.clock.now()) else {
                    break;
                };
                if sessions {
                    store.swept.fetch_add(removed, Ordering::Relaxed);
                }
                if removed < u64::from(SWEEP_BATCH) {
                    break;
                }
            }
        }
        Tick::Sleep
    })
}

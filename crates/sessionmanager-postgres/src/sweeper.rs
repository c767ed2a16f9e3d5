//! The PostgreSQL store's sweeper: removes expired rows in bounded batches,
//! judged by the manager's clock (the one every call is given), so the table
//! does not fill with dead sessions and no cron job is needed.

use std::sync::Weak;
use std::time::Duration;

use sessionmanager_core::{Periodic, Result, Tick, block_on};
use tokio::runtime::Handle;

use crate::store::{Inner, SWEEP_BATCH, call};

/// Batches per tick at most, so a huge backlog is worked off over several ticks.
const BATCHES_PER_TICK: u32 = 20;

/// Starts the sweeper (none without an interval); it ends when the store is
/// dropped or the handle stopped.
pub(crate) fn start(
    inner: Weak<Inner>,
    handle: Handle,
    interval: Option<Duration>,
) -> Result<Periodic> {
    Periodic::start("postgres-session-sweeper", interval, move || {
        let Some(store) = inner.upgrade() else {
            return Tick::Stop;
        };
        for _ in 0..BATCHES_PER_TICK {
            let now = store.clock.now();
            let batch = call(&handle, &store, "remove expired sessions", move |inner| {
                inner.sweep_batch(now)
            });
            // Errors (a server away) are retried next tick; expired rows are never returned meanwhile.
            match block_on(batch) {
                Ok(removed) if removed == u64::from(SWEEP_BATCH) => continue,
                _ => break,
            }
        }
        Tick::Sleep
    })
}

//! The PostgreSQL store's sweeper: removes expired rows in bounded batches,
//! judged by the manager's clock (the one every call is given), so the table
//! does not fill with dead sessions (or rate-limit state that stopped
//! mattering) and no cron job is needed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sessionmanager_core::{Periodic, Result, Tick, Timestamp, block_on};
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
        let removed = sweep(
            &handle,
            &store,
            "remove expired sessions",
            Inner::sweep_batch,
        );
        store.swept.fetch_add(removed, Ordering::Relaxed);
        sweep(
            &handle,
            &store,
            "remove rate-limit state",
            Inner::sweep_rate_batch,
        );
        Tick::Sleep
    })
}

/// Runs `batch` until it removes less than a full batch, at most
/// [`BATCHES_PER_TICK`] times. Errors (a server away) are retried next
/// tick; expired rows are never returned meanwhile. Returns how many rows it removed.
fn sweep<F>(
    handle: &Handle,
    store: &Arc<Inner>,
    doing: &'static str,
    batch: fn(Arc<Inner>, Timestamp) -> F,
) -> u64
where
    F: Future<Output = Result<u64>> + Send + 'static,
{
    let mut total = 0;
    for _ in 0..BATCHES_PER_TICK {
        let now = store.clock.now();
        let Ok(removed) = block_on(call(handle, store, doing, move |inner| batch(inner, now)))
        else {
            break;
        };
        total += removed;
        if removed < u64::from(SWEEP_BATCH) {
            break;
        }
    }
    total
}

//! The memory store's sweeper: removes expired sessions a bounded slice of
//! one shard at a time, so no lock is held for long and expired sessions go
//! away even if nobody touches them again.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Inner;
use crate::error::Result;
use crate::periodic::{Periodic, Tick};

/// Table buckets (full or empty) looked at per lock hold.
const CHUNK: usize = 512;
/// Records examined per tick, unless most of what it saw had expired.
const TICK_BUDGET: usize = 8 * CHUNK;
/// Buckets looked at per tick at most. Tables are 44-87% full, and one that
/// mass expiry emptied keeps its size: an empty bucket costs little, not nothing.
const TICK_BUCKETS: usize = 4 * TICK_BUDGET;

/// Starts the sweeper (none without an interval); it ends when the store is
/// dropped or the handle stopped.
pub(crate) fn start(inner: Weak<Inner>, interval: Option<Duration>) -> Result<Periodic> {
    let mut cursor = (0usize, 0usize);
    let mut rate_shard = 0usize;
    Periodic::start("session-sweeper", interval, move || {
        let Some(store) = inner.upgrade() else {
            return Tick::Stop;
        };
        sweep_rates(&store, &mut rate_shard);
        if tick(&store, &mut cursor) {
            Tick::Again // expiry outpacing the sweep: go again without sleeping
        } else {
            Tick::Sleep
        }
    })
}

/// Removes the rate-limit state that stopped mattering from one shard per
/// tick, the next one each time.
fn sweep_rates(store: &Inner, shard: &mut usize) {
    store.rates.sweep_shard(*shard, store.clock.now());
    *shard = (*shard + 1) % store.rates.len();
}

/// One tick: sweeps up to [`TICK_BUDGET`] records (and [`TICK_BUCKETS`]
/// buckets) from the cursor (shard, bucket) on, stopping early after a full
/// pass. Returns whether more than a quarter of what it examined had expired.
fn tick(store: &Inner, cursor: &mut (usize, usize)) -> bool {
    let (mut visited, mut examined, mut removed, mut shards_finished) = (0, 0, 0, 0);
    while examined < TICK_BUDGET && visited < TICK_BUCKETS && shards_finished < store.shards.len() {
        let (shard, position) = *cursor;
        let chunk = store.sweep_chunk(shard, position, CHUNK, store.clock.now());
        visited += chunk.swept.visited;
        examined += chunk.swept.examined;
        removed += chunk.removed;
        *cursor = match chunk.swept.next {
            Some(position) => (shard, position),
            None => {
                shards_finished += 1;
                ((shard + 1) % store.shards.len(), 0)
            }
        };
    }
    store.swept.fetch_add(removed as u64, Ordering::Relaxed);
    removed * 4 > examined
}

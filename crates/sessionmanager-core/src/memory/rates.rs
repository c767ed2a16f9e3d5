//! Rate-limit state: each limited key's theoretical arrival time, in maps
//! of their own (sessions never see them), split over locked shards so
//! hits on different keys rarely wait for each other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::clock::Timestamp;
use crate::ratelimit::rate_state_expiry;
use crate::token::SessionKey;

/// The shards of rate-limit state.
pub(crate) struct Rates {
    shards: Box<[Mutex<HashMap<SessionKey, i64>>]>,
}

/// Whether the state `tat_us` still matters at `now`.
fn live(tat_us: i64, now: Timestamp) -> bool {
    rate_state_expiry(tat_us) > now
}

impl Rates {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, key: &SessionKey) -> MutexGuard<'_, HashMap<SessionKey, i64>> {
        let bytes = key.as_bytes();
        let index = usize::from(bytes[0]) << 8 | usize::from(bytes[1]);
        self.at(index % self.shards.len())
    }

    fn at(&self, index: usize) -> MutexGuard<'_, HashMap<SessionKey, i64>> {
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether no shard is locked (see `MemoryStore::adopt_after_fork`).
    pub(crate) fn all_unlocked(&self) -> bool {
        self.shards.iter().all(|shard| shard.try_lock().is_ok())
    }

    pub(crate) fn load(&self, key: &SessionKey) -> Option<i64> {
        self.shard(key).get(key).copied()
    }

    pub(crate) fn store(
        &self,
        key: &SessionKey,
        expected: Option<i64>,
        tat_us: i64,
        now: Timestamp,
    ) -> bool {
        let mut shard = self.shard(key);
        let current = shard.get(key).copied().filter(|tat| live(*tat, now));
        if current != expected {
            return false;
        }
        shard.insert(*key, tat_us);
        true
    }

    /// Removes the state that stopped mattering from shard `index`.
    pub(crate) fn sweep_shard(&self, index: usize, now: Timestamp) {
        self.at(index).retain(|_, tat| live(*tat, now));
    }
}

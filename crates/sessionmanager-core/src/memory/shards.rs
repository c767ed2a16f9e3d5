//! The session table: records split over independently locked shards, so
//! threads working on different sessions rarely wait for each other.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use indexmap::IndexMap;

use super::stored::Stored;
use crate::clock::Timestamp;
use crate::record::SessionRecord;
use crate::token::SessionKey;

/// One shard: an index map, so the sweeper can walk it by position in small steps.
pub(crate) type Shard = IndexMap<SessionKey, Stored, BuildHasherDefault<KeyHasher>>;

/// The shards, each behind its own lock.
pub(crate) struct Shards(Box<[RwLock<Shard>]>);

impl Shards {
    pub(crate) fn new(count: usize) -> Self {
        Self((0..count.max(1)).map(|_| RwLock::default()).collect())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The shard holding `key`. Uses other bits of the hash than the shard's own
    /// table does, so records spread evenly both across and within shards.
    pub(crate) fn index_of(&self, key: &SessionKey) -> usize {
        self.index_of_prefix(&KeyPrefix::of(key))
    }

    pub(crate) fn index_of_prefix(&self, prefix: &KeyPrefix) -> usize {
        let mut word = [0u8; 8];
        word.copy_from_slice(&prefix.0[8..16]);
        (u64::from_le_bytes(word) % self.0.len() as u64) as usize
    }

    /// Calls `look` with the key and session a user-index prefix points at, if any.
    pub(crate) fn with_prefix<R>(
        &self,
        prefix: &KeyPrefix,
        look: impl FnOnce(&SessionKey, &Stored) -> R,
    ) -> Option<R> {
        let shard = self.read_at(self.index_of_prefix(prefix));
        shard
            .get_full(prefix)
            .map(|(_, key, stored)| look(key, stored))
    }

    /// Removes `user_id`'s session a user-index prefix points at, and returns it.
    pub(crate) fn take_user_session(
        &self,
        prefix: &KeyPrefix,
        user_id: &str,
    ) -> Option<(SessionKey, Stored)> {
        let mut shard = self.write_at(self.index_of_prefix(prefix));
        let (index, _, stored) = shard.get_full(prefix)?;
        if stored.user_id() != user_id {
            return None;
        }
        shard.swap_remove_index(index)
    }

    pub(crate) fn read(&self, key: &SessionKey) -> RwLockReadGuard<'_, Shard> {
        self.read_at(self.index_of(key))
    }

    pub(crate) fn write(&self, key: &SessionKey) -> RwLockWriteGuard<'_, Shard> {
        self.write_at(self.index_of(key))
    }

    pub(crate) fn read_at(&self, index: usize) -> RwLockReadGuard<'_, Shard> {
        // A panic while holding a shard lock cannot leave a record half-written
        // (records are replaced whole), so a poisoned lock is still consistent.
        self.0[index].read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_at(&self, index: usize) -> RwLockWriteGuard<'_, Shard> {
        self.0[index]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The live record under `key`, if any.
    pub(crate) fn live(&self, key: &SessionKey, now: Timestamp) -> Option<SessionRecord> {
        self.read(key)
            .get(key)
            .filter(|r| r.is_live(now))
            .map(Stored::to_record)
    }
}

/// Removes expired records among `budget` positions of `shard` from `start` on,
/// pushing them to `removed` for the caller to drop from the user index.
/// Returns how many it examined and the position to continue from (`None` at
/// the end of the shard).
pub(crate) fn sweep_range(
    shard: &mut Shard,
    start: usize,
    budget: usize,
    now: Timestamp,
    removed: &mut Vec<(SessionKey, Stored)>,
) -> (usize, Option<usize>) {
    let mut position = start;
    let mut examined = 0;
    while examined < budget && position < shard.len() {
        examined += 1;
        if shard[position].is_live(now) {
            position += 1;
        } else if let Some(entry) = shard.swap_remove_index(position) {
            // The last entry moved into `position`; look at it next.
            removed.push(entry);
        }
    }
    (examined, (position < shard.len()).then_some(position))
}

/// The first 128 bits of a [`SessionKey`]: enough to find a session (two keys
/// sharing it is a 2^-128 event), at half the size, for the user index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyPrefix([u8; 16]);

impl KeyPrefix {
    pub(crate) fn of(key: &SessionKey) -> Self {
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&key.as_bytes()[..16]);
        Self(prefix)
    }
}

/// Hashes like the [`SessionKey`] it abbreviates, so a shard can be searched by prefix.
impl std::hash::Hash for KeyPrefix {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

impl indexmap::Equivalent<SessionKey> for KeyPrefix {
    fn equivalent(&self, key: &SessionKey) -> bool {
        key.as_bytes()[..16] == self.0
    }
}

/// A hasher that passes through the 64 bits a key feeds it.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a SessionKey is hashed; mix it in (FNV-1a).
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExpiryPolicy, SessionData, SessionToken};
    use std::sync::Arc;

    fn record(expires_at: i64) -> Stored {
        let mut r = SessionRecord::new(
            Arc::from("u"),
            SessionData::empty(),
            &ExpiryPolicy::DEFAULT,
            Timestamp(0),
        );
        r.expires_at = Timestamp(expires_at);
        Stored::from_record(&r)
    }

    #[test]
    fn sweep_range_removes_only_expired_and_is_bounded() {
        let mut shard = Shard::default();
        for i in 0..10 {
            let key = SessionToken::generate().unwrap().key();
            shard.insert(key, record(if i % 2 == 0 { 5 } else { 50 }));
        }
        let mut removed = Vec::new();
        let (examined, mut position) = sweep_range(&mut shard, 0, 4, Timestamp(10), &mut removed);
        assert_eq!(examined, 4);
        assert!(position.is_some());
        assert!(removed.len() <= 4);
        while let Some(p) = position {
            position = sweep_range(&mut shard, p, 4, Timestamp(10), &mut removed).1;
        }
        assert_eq!(removed.len(), 5);
        assert_eq!(shard.len(), 5);
        assert!(shard.values().all(|r| r.is_live(Timestamp(10))));
    }
}

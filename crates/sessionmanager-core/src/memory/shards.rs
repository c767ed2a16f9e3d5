//! The session table: records split over independently locked shards, so
//! threads working on different sessions rarely wait for each other.

use std::hash::Hasher;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;

use super::spread::ShardMap;
use super::stored::Stored;
use crate::clock::Timestamp;
use crate::record::SessionRecord;
use crate::token::SessionKey;

/// One shard: a hash table holding each key with its session in the same slot.
///
/// A lookup touches the table's control bytes and then the slot itself; an
/// index map would add a third dependent cache miss, from its
/// index slot to a separate entries vector, which dominates reads once the
/// store outgrows the CPU cache. The sweeper can still walk the table in small
/// steps, by bucket index (see [`sweep_range`]).
#[derive(Default)]
pub(crate) struct Shard(HashTable<(SessionKey, Stored)>);

/// The table's hash of a key: 64 bits of it, which is already a SHA-256.
fn hash_of(key: &SessionKey) -> u64 {
    key.prefix_u64()
}

/// Rehashes a slot when the table grows.
fn slot_hash((key, _): &(SessionKey, Stored)) -> u64 {
    hash_of(key)
}

impl Shard {
    /// How many records the shard holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The record under `key`.
    pub(crate) fn get(&self, key: &SessionKey) -> Option<&Stored> {
        self.0
            .find(hash_of(key), |(k, _)| k == key)
            .map(|(_, stored)| stored)
    }

    /// The record under `key`, to change in place.
    pub(crate) fn get_mut(&mut self, key: &SessionKey) -> Option<&mut Stored> {
        self.0
            .find_mut(hash_of(key), |(k, _)| k == key)
            .map(|(_, stored)| stored)
    }

    /// Whether a record, live or expired, is filed under `key`.
    pub(crate) fn contains_key(&self, key: &SessionKey) -> bool {
        self.get(key).is_some()
    }

    /// Files `stored` under `key` if no record, live or expired, is there;
    /// otherwise hands `stored` back. One probe of the table either way.
    pub(crate) fn insert_new(&mut self, key: SessionKey, stored: Stored) -> Result<(), Stored> {
        match self.0.entry(hash_of(&key), |(k, _)| *k == key, slot_hash) {
            hashbrown::hash_table::Entry::Occupied(_) => Err(stored),
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert((key, stored));
                Ok(())
            }
        }
    }

    /// Takes the record under `key` out.
    pub(crate) fn remove(&mut self, key: &SessionKey) -> Option<Stored> {
        let slot = self.0.find_entry(hash_of(key), |(k, _)| k == key).ok()?;
        Some(slot.remove().0.1)
    }

    /// Every record, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Stored> {
        self.0.iter().map(|(_, stored)| stored)
    }

    /// Every key and record, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &(SessionKey, Stored)> {
        self.0.iter()
    }

    /// The key and record a user-index prefix points at, if any.
    fn find_prefix(&self, prefix: &KeyPrefix) -> Option<&(SessionKey, Stored)> {
        self.0.find(prefix.hash(), |(k, _)| prefix.matches(k))
    }

    /// Takes out `user_id`'s record a user-index prefix points at, if it is theirs.
    fn take_prefix(&mut self, prefix: &KeyPrefix, user_id: &str) -> Option<(SessionKey, Stored)> {
        let slot = self
            .0
            .find_entry(prefix.hash(), |(k, _)| prefix.matches(k))
            .ok()?;
        if slot.get().1.user_id() != user_id {
            return None;
        }
        Some(slot.remove().0)
    }
}

/// The shards, each behind its own lock.
pub(crate) struct Shards {
    shards: Box<[RwLock<Shard>]>,
    map: ShardMap,
}

impl Shards {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            shards: (0..count.max(1)).map(|_| RwLock::default()).collect(),
            map: ShardMap::new(count),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether no shard is locked (in a fork child: whether no vanished
    /// thread was inside one when the process forked).
    pub(crate) fn all_unlocked(&self) -> bool {
        self.shards.iter().all(|shard| shard.try_write().is_ok())
    }

    /// The shard holding `key`. Uses other bits of the hash than the shard's own
    /// table does, so records spread evenly both across and within shards.
    pub(crate) fn index_of(&self, key: &SessionKey) -> usize {
        self.index_of_prefix(&KeyPrefix::of(key))
    }

    pub(crate) fn index_of_prefix(&self, prefix: &KeyPrefix) -> usize {
        let mut word = [0u8; 8];
        word.copy_from_slice(&prefix.0[8..16]);
        self.map.shard_of(u64::from_le_bytes(word))
    }

    /// Calls `look` with the key and session a user-index prefix points at, if any.
    pub(crate) fn with_prefix<R>(
        &self,
        prefix: &KeyPrefix,
        look: impl FnOnce(&SessionKey, &Stored) -> R,
    ) -> Option<R> {
        let shard = self.read_at(self.index_of_prefix(prefix));
        shard
            .find_prefix(prefix)
            .map(|(key, stored)| look(key, stored))
    }

    /// Removes `user_id`'s session a user-index prefix points at, and returns it.
    pub(crate) fn take_user_session(
        &self,
        prefix: &KeyPrefix,
        user_id: &str,
    ) -> Option<(SessionKey, Stored)> {
        self.write_at(self.index_of_prefix(prefix))
            .take_prefix(prefix, user_id)
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
        self.shards[index]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_at(&self, index: usize) -> RwLockWriteGuard<'_, Shard> {
        self.shards[index]
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

/// What one [`sweep_range`] step did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Buckets looked at, full or empty: the step's work, which `budget` bounds.
    pub(crate) visited: usize,
    /// Records among them.
    pub(crate) examined: usize,
    /// The bucket to continue from; `None` once the walk reached the table's end.
    pub(crate) next: Option<usize>,
}

/// Removes expired records among the `budget` buckets of `shard` from bucket
/// `start` on, pushing them to `removed` for the caller to drop from the user
/// index.
///
/// Walking by bucket index lets the sweeper work in short lock holds: removing
/// a record moves no other one, so the walk continues where it stopped. Between
/// two steps the table may grow and rehash; the walk then goes on at the same
/// index in the new layout and may miss some records on this pass (they are
/// met on the next one) or meet some twice (harmless). Late removal is fine:
/// every read checks expiry itself, so the sweep only reclaims memory.
pub(crate) fn sweep_range(
    shard: &mut Shard,
    start: usize,
    budget: usize,
    now: Timestamp,
    removed: &mut Vec<(SessionKey, Stored)>,
) -> Swept {
    let buckets = shard.0.num_buckets();
    let start = start.min(buckets);
    let end = start.saturating_add(budget).min(buckets);
    let mut examined = 0;
    for index in start..end {
        let Ok(slot) = shard.0.get_bucket_entry(index) else {
            continue; // empty bucket
        };
        examined += 1;
        if !slot.get().1.is_live(now) {
            removed.push(slot.remove().0);
        }
    }
    Swept {
        visited: end - start,
        examined,
        next: (end < buckets).then_some(end),
    }
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

    /// The shard table's hash of the key this abbreviates (the same first 64
    /// bits), so a shard can be searched by prefix.
    fn hash(&self) -> u64 {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(head)
    }

    /// Whether `key` starts with this prefix.
    fn matches(&self, key: &SessionKey) -> bool {
        key.as_bytes()[..16] == self.0
    }
}

/// A hasher that passes through a `u64` key as its own hash (the user
/// index files users by a hash already computed).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a u64 is hashed; mix it in (FNV-1a).
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
    use crate::{ExpiryPolicy, SessionData};
    use std::collections::HashSet;
    use std::sync::Arc;

    const NOW: Timestamp = Timestamp(10);

    fn record(user: &str, expires_at: i64) -> Stored {
        let mut r = SessionRecord::new(
            Arc::from(user),
            SessionData::empty(),
            &ExpiryPolicy::DEFAULT,
            Timestamp(0),
        );
        r.expires_at = Timestamp(expires_at);
        Stored::from_record(&r)
    }

    /// Files `count` records from number `from` on; every third one has expired
    /// by [`NOW`]. Returns the expired ones' keys.
    fn fill(shard: &mut Shard, from: usize, count: usize) -> HashSet<SessionKey> {
        let mut expired = HashSet::new();
        for i in from..from + count {
            let key = SessionKey::of(&format!("token {i}"));
            let dead = i % 3 == 0;
            assert!(
                shard
                    .insert_new(key, record("u", if dead { 5 } else { 50 }))
                    .is_ok()
            );
            if dead {
                expired.insert(key);
            }
        }
        expired
    }

    /// Walks from `start` to the table's end in steps of `budget`, checking
    /// each step's bound. Returns the keys removed.
    fn walk(shard: &mut Shard, start: usize, budget: usize) -> HashSet<SessionKey> {
        let mut removed = Vec::new();
        let mut position = Some(start);
        while let Some(start) = position {
            let before = removed.len();
            let step = sweep_range(shard, start, budget, NOW, &mut removed);
            assert!(step.visited <= budget && step.examined <= step.visited);
            assert!(removed.len() - before <= step.examined);
            position = step.next;
        }
        removed.into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn a_pass_removes_exactly_the_expired_in_bounded_steps() {
        let mut shard = Shard::default();
        let expired = fill(&mut shard, 0, 1000);
        let mut removed = Vec::new();
        let first = sweep_range(&mut shard, 0, 64, NOW, &mut removed);
        assert_eq!((first.visited, first.next), (64, Some(64)));
        let mut gone: HashSet<_> = removed.into_iter().map(|(key, _)| key).collect();
        gone.extend(walk(&mut shard, 64, 64));
        // With no growth in between, one pass is enough.
        assert_eq!(gone, expired);
        assert_eq!(shard.len(), 1000 - expired.len());
        assert!(shard.values().all(|r| r.is_live(NOW)));
    }

    #[test]
    fn a_pass_cut_by_growth_removes_only_expired_and_the_next_pass_the_rest() {
        let mut shard = Shard::default();
        let mut expired = fill(&mut shard, 0, 200);
        let buckets = shard.0.num_buckets();
        let mut removed = Vec::new();
        let step = sweep_range(&mut shard, 0, 32, NOW, &mut removed);
        // The table grows between two steps, rehashing every record.
        expired.extend(fill(&mut shard, 200, 5000));
        assert!(shard.0.num_buckets() > buckets);
        let mut gone: HashSet<_> = removed.into_iter().map(|(key, _)| key).collect();
        gone.extend(walk(&mut shard, step.next.unwrap(), 32));
        // This pass may have missed some records that moved behind the cursor;
        // the next pass meets them.
        gone.extend(walk(&mut shard, 0, 32));
        assert_eq!(gone, expired);
        assert_eq!(shard.len(), 5200 - expired.len());
        assert!(shard.values().all(|r| r.is_live(NOW)));
    }

    #[test]
    fn a_walk_past_the_end_does_nothing() {
        let mut shard = Shard::default();
        fill(&mut shard, 0, 10);
        let buckets = shard.0.num_buckets();
        let step = sweep_range(&mut shard, buckets + 5, 8, NOW, &mut Vec::new());
        assert_eq!(
            step,
            Swept {
                visited: 0,
                examined: 0,
                next: None
            }
        );
        let empty = sweep_range(&mut Shard::default(), 0, 8, NOW, &mut Vec::new());
        assert_eq!((empty.examined, empty.next), (0, None));
    }

    #[test]
    fn a_prefix_finds_its_record_and_takes_only_its_users() {
        let mut shard = Shard::default();
        let key = SessionKey::of("token");
        assert!(shard.insert_new(key, record("alice", 50)).is_ok());
        let prefix = KeyPrefix::of(&key);
        assert_eq!(shard.find_prefix(&prefix).map(|(k, _)| *k), Some(key));
        assert!(shard.take_prefix(&prefix, "bob").is_none());
        assert_eq!(
            shard.take_prefix(&prefix, "alice").map(|(k, _)| k),
            Some(key)
        );
        assert!(shard.find_prefix(&prefix).is_none());
        assert!(shard.get(&key).is_none());
    }

    #[test]
    fn a_slot_is_two_cache_lines_at_most() {
        // Slots are spread over the table, about 1.7 per record on average: a
        // bigger slot costs memory at once (the 300-byte-per-session budget).
        assert!(size_of::<(SessionKey, Stored)>() <= 128);
    }

    #[test]
    fn insert_new_refuses_a_taken_key_and_remove_takes() {
        let mut shard = Shard::default();
        let key = SessionKey::of("token");
        assert!(shard.insert_new(key, record("alice", 50)).is_ok());
        let refused = shard.insert_new(key, record("bob", 60));
        assert_eq!(refused.map_err(|r| r.expires_at), Err(Timestamp(60)));
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.get(&key).map(Stored::user_id), Some("alice"));
        assert_eq!(
            shard.remove(&key).map(|r| r.expires_at),
            Some(Timestamp(50))
        );
        assert!(shard.remove(&key).is_none() && !shard.contains_key(&key));
    }
}

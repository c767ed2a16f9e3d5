//! Per-user index: which sessions each user has. Entries leave with their
//! sessions, and a user with no sessions has no entry, so the index cannot leak.
//!
//! To stay small it files users by a keyed 64-bit hash of their id and sessions
//! by a 128-bit prefix of their key. Either may in principle be shared (with
//! odds far below 2^-64), so readers always check the record's own user id.

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::shards::{KeyHasher, KeyPrefix};
use super::spread::ShardMap;
use crate::token::SessionKey;

/// A user's session key prefixes. Most users have one session, which needs no
/// allocation of its own.
#[derive(Debug)]
enum UserSessions {
    One(KeyPrefix),
    Many(Vec<KeyPrefix>),
}

type UserShard = HashMap<u64, UserSessions, BuildHasherDefault<KeyHasher>>;

/// The user index, sharded by user.
pub(crate) struct UserIndex {
    shards: Box<[Mutex<UserShard>]>,
    map: ShardMap,
    /// Keyed (SipHash with a random key), so user ids chosen by an attacker
    /// cannot be made to collide.
    hasher: RandomState,
}

/// One user's entry, with its shard locked. Lock order: a user's entry may be
/// held while taking a session shard, never the other way round.
pub(crate) struct UserEntry<'a> {
    shard: MutexGuard<'a, UserShard>,
    user: u64,
}

impl UserIndex {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            shards: (0..count.max(1)).map(|_| Mutex::default()).collect(),
            map: ShardMap::new(count),
            hasher: RandomState::new(),
        }
    }

    /// Whether no shard is locked (see `Shards::all_unlocked`).
    pub(crate) fn all_unlocked(&self) -> bool {
        self.shards.iter().all(|shard| shard.try_lock().is_ok())
    }

    /// Locks `user_id`'s entry.
    pub(crate) fn lock(&self, user_id: &str) -> UserEntry<'_> {
        let user = self.hasher.hash_one(user_id);
        // The shard's own table takes its bucket from the low bits and its
        // control byte from the top 7, so the bits just below those pick the shard.
        let index = self.map.shard_of(user << 7);
        let shard = self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        UserEntry { shard, user }
    }

    /// Drops removed sessions from their users' entries.
    pub(crate) fn remove_all<'a>(
        &self,
        removed: impl IntoIterator<Item = (&'a str, &'a SessionKey)>,
    ) {
        for (user_id, key) in removed {
            self.lock(user_id).remove(key);
        }
    }
}

#[cfg(test)]
impl UserIndex {
    /// How many session prefixes the whole index holds.
    pub(crate) fn prefix_count(&self) -> usize {
        let count = |sessions: &UserSessions| match sessions {
            UserSessions::One(_) => 1,
            UserSessions::Many(prefixes) => prefixes.len(),
        };
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().values().map(count).sum::<usize>())
            .sum()
    }
}

impl UserEntry<'_> {
    pub(crate) fn add(&mut self, key: &SessionKey) {
        let prefix = KeyPrefix::of(key);
        match self.shard.entry(self.user) {
            Entry::Occupied(mut entry) => {
                let sessions = entry.get_mut();
                match sessions {
                    UserSessions::One(first) => {
                        *sessions = UserSessions::Many(vec![*first, prefix])
                    }
                    UserSessions::Many(prefixes) => prefixes.push(prefix),
                }
            }
            Entry::Vacant(entry) => {
                entry.insert(UserSessions::One(prefix));
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &SessionKey) {
        let prefix = KeyPrefix::of(key);
        self.retain(|p| *p != prefix);
    }

    /// Keeps the prefixes `keep` accepts, dropping the entry if none are left.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&KeyPrefix) -> bool) {
        let Some(sessions) = self.shard.get_mut(&self.user) else {
            return;
        };
        let empty = match sessions {
            UserSessions::One(prefix) => !keep(prefix),
            UserSessions::Many(prefixes) => {
                prefixes.retain(|p| keep(p));
                if let [only] = prefixes.as_slice() {
                    *sessions = UserSessions::One(*only);
                    false
                } else {
                    prefixes.is_empty()
                }
            }
        };
        if empty {
            self.shard.remove(&self.user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionToken;

    #[test]
    fn entries_disappear_with_their_last_session() {
        let index = UserIndex::new(4);
        let (a, b) = (
            SessionToken::generate().unwrap().key(),
            SessionToken::generate().unwrap().key(),
        );
        index.lock("alice").add(&a);
        index.lock("alice").add(&b);
        index.lock("bob").add(&b);
        let filed = |user: &str| {
            let mut seen = Vec::new();
            index.lock(user).retain(|p| {
                seen.push(*p);
                true
            });
            seen
        };
        assert_eq!(filed("alice"), vec![KeyPrefix::of(&a), KeyPrefix::of(&b)]);
        index.remove_all([("alice", &a)]);
        assert_eq!(filed("alice"), vec![KeyPrefix::of(&b)]);
        index.remove_all([("alice", &b), ("bob", &b)]);
        assert!(index.shards.iter().all(|s| s.lock().unwrap().is_empty()));
    }

    #[test]
    fn an_entry_is_small() {
        // The index costs about this much per session (plus the table's slack).
        assert!(
            size_of::<(u64, UserSessions)>() <= 32,
            "{}",
            size_of::<(u64, UserSessions)>()
        );
    }
}

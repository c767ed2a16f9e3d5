//! Per-user index: which sessions each user has. Entries leave with their
//! sessions, and a user with no sessions has no entry, so the index cannot leak.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::token::SessionKey;

/// A user's session keys. Most users have one session, which needs no extra allocation.
#[derive(Debug)]
pub(crate) enum UserSessions {
    One(SessionKey),
    Many(Vec<SessionKey>),
}

impl UserSessions {
    pub(crate) fn keys(&self) -> &[SessionKey] {
        match self {
            Self::One(key) => std::slice::from_ref(key),
            Self::Many(keys) => keys,
        }
    }

    fn push(&mut self, key: SessionKey) {
        match self {
            Self::One(first) => *self = Self::Many(vec![*first, key]),
            Self::Many(keys) => keys.push(key),
        }
    }

    /// Keeps the keys `keep` accepts; returns whether any are left.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&SessionKey) -> bool) -> bool {
        match self {
            Self::One(key) => keep(key),
            Self::Many(keys) => {
                keys.retain(|k| keep(k));
                if let [only] = keys.as_slice() {
                    *self = Self::One(*only);
                }
                !self.keys().is_empty()
            }
        }
    }
}

pub(crate) type UserShard = HashMap<Arc<str>, UserSessions>;

/// The user index, sharded by user id.
pub(crate) struct UserIndex(Box<[Mutex<UserShard>]>);

impl UserIndex {
    pub(crate) fn new(count: usize) -> Self {
        Self((0..count.max(1)).map(|_| Mutex::default()).collect())
    }

    /// Locks the shard holding `user_id`. Lock order: a user shard may be held
    /// while taking a session shard, never the other way round.
    pub(crate) fn lock(&self, user_id: &str) -> MutexGuard<'_, UserShard> {
        let mut hasher = DefaultHasher::new();
        user_id.hash(&mut hasher);
        let index = (hasher.finish() % self.0.len() as u64) as usize;
        self.0[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops `removed` sessions from their users' entries.
    pub(crate) fn remove_all<'a>(
        &self,
        removed: impl IntoIterator<Item = (&'a Arc<str>, &'a SessionKey)>,
    ) {
        for (user_id, key) in removed {
            remove(&mut self.lock(user_id), user_id, key);
        }
    }
}

/// Adds `key` to `user_id`'s entry in an already locked shard.
pub(crate) fn add(shard: &mut UserShard, user_id: &Arc<str>, key: SessionKey) {
    match shard.entry(user_id.clone()) {
        Entry::Occupied(mut entry) => entry.get_mut().push(key),
        Entry::Vacant(entry) => {
            entry.insert(UserSessions::One(key));
        }
    }
}

/// Removes `key` from `user_id`'s entry in an already locked shard, and the
/// entry itself when it empties.
pub(crate) fn remove(shard: &mut UserShard, user_id: &str, key: &SessionKey) {
    if let Some(sessions) = shard.get_mut(user_id)
        && !sessions.retain(|k| k != key)
    {
        shard.remove(user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionToken;

    #[test]
    fn entries_disappear_with_their_last_session() {
        let index = UserIndex::new(4);
        let user: Arc<str> = Arc::from("alice");
        let (a, b) = (
            SessionToken::generate().unwrap().key(),
            SessionToken::generate().unwrap().key(),
        );
        add(&mut index.lock(&user), &user, a);
        add(&mut index.lock(&user), &user, b);
        assert_eq!(index.lock(&user)[&user].keys(), &[a, b]);
        index.remove_all([(&user, &a)]);
        assert!(matches!(index.lock(&user)[&user], UserSessions::One(k) if k == b));
        index.remove_all([(&user, &b)]);
        assert!(index.lock(&user).is_empty());
    }
}

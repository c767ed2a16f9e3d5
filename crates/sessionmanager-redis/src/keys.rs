//! The names of the store's Redis keys, and the buckets that spread them.
//!
//! Sessions are filed in [`BUCKETS`] buckets. A user's sessions all live in
//! the user's bucket (a hash of the user id), with the user's indexes, so
//! that every write touches one bucket; each bucket keeps its own expiry
//! index, so no key is hot and `count` and the sweep visit the buckets
//! rather than the keyspace. Every key of a bucket carries the bucket's
//! number as its hash tag (`{417}`), so on Redis Cluster a bucket is one
//! hash slot and each script runs on one node.
//!
//! The manager issues this store routed tokens (see
//! [`SessionStore::token_route`](sessionmanager_core::SessionStore::token_route)) whose
//! route is their user's bucket, so a session's bucket is known from its
//! key alone. What a routed token tells whoever holds it: which of the
//! 1024 buckets its user's id hashes to, ten bits of a hash that every
//! session of the user shares and about one user in a thousand shares with
//! any other. It adds nothing to guessing a token (the 256 random bits are
//! all still there), and a holder of the token holds the session anyway.
//!
//! A key that does not carry its user's bucket (a session imported from
//! another store, or written by an earlier layout, or a token issued before
//! the store routed them) is filed in its user's bucket all the same, and a
//! *link* in the key's own bucket names the user's: reaching such a
//! session takes one more round trip (two for a read, which looks for a link
//! only after a miss), and its link goes when it does.
//!
//! Every key is the configured prefix followed by a tail of these shapes,
//! where `{b}` is the bucket's number in decimal between braces:
//!
//! - `s:{b}<hex of the session key>`: one hash per session;
//! - `a:{b}<hex of the session key>`: a link, the number of the bucket
//!   where the key's session lives;
//! - `ue:{b}<hex of the user id's UTF-8>`: the user's index, a sorted set
//!   of the user's sessions scored by expiry;
//! - `uc:{b}<hex of the user id's UTF-8>`: the same sessions scored by
//!   creation, so that the oldest are found without reading the others;
//! - `x:{b}`: the bucket's sessions scored by expiry, for `count`,
//!   `purge_expired` and the sweep;
//! - `r:{b}<hex of the limited key's SHA-256>`: a rate-limited key's state,
//!   a string that Redis removes once it stops mattering.
//!
//! No key of one prefix can be a key of another, whatever the prefixes and
//! user ids: read from its end, a tail is hex digits, then `}`, decimal
//! digits and `{`, then a tag of letters that is none the end of another
//! (`s:`, `a:`, `ue:`, `uc:`, `x:`, `r:`), so the tail, and with it the
//! prefix, is known from the key alone. The same holds against the keys of
//! the earlier layout (below), none of which ends in `}` and hex digits.
//!
//! On Redis Cluster a prefix must not contain `{` or `}`: its own hash tag
//! would put every key in one slot. Standalone servers take any prefix.
//!
//! Stores of the earlier layouts kept every session in `s:<hex>`, one
//! `expiry` index for all, and the user's indexes under `ue:<hex>`,
//! `uc:<hex>` or `u:<user id>`. A store that opens a standalone server
//! holding such keys moves their live sessions into the current layout
//! first (see `RedisStore::open`).
//!
//! The Lua scripts build session and user keys from the prefix and the
//! bucket's tag the same way.

use sessionmanager_core::SessionKey;

/// How many buckets sessions are filed in: enough to spread a cluster's
/// load over its nodes, few enough that visiting each (`count`, sweeps)
/// stays cheap. Part of the layout: changing it moves every session.
pub(crate) const BUCKETS: u16 = 1024;

/// The bucket a key's lookups start in: its route, for a routed token's key.
pub(crate) fn bucket_of_key(key: &SessionKey) -> u16 {
    key.route() % BUCKETS
}

/// The bucket where `user_id`'s sessions and indexes live.
pub(crate) fn home_bucket(user_id: &str) -> u16 {
    SessionKey::of(user_id).route() % BUCKETS
}

/// What follows the prefix in a session's key.
const SESSION_TAG: &str = "s:";
/// What follows the prefix in a link's key.
const LINK_TAG: &str = "a:";
/// What follows the prefix in a user's index by expiry.
const USER_BY_EXPIRY_TAG: &str = "ue:";
/// What follows the prefix in a user's index by creation.
const USER_BY_CREATION_TAG: &str = "uc:";
/// What follows the prefix in a bucket's expiry index.
const EXPIRY_TAG: &str = "x:";
/// What follows the prefix in a rate-limited key's state.
const RATE_TAG: &str = "r:";
/// The earlier layouts' expiry index, after the prefix.
const EARLIER_EXPIRY: &str = "expiry";

/// Builds key names for one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
    /// Each bucket's expiry index, by bucket.
    expiry: Vec<String>,
}

/// A user's two index keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserKeys {
    /// The user's sessions scored by expiry.
    pub(crate) by_expiry: String,
    /// The user's sessions scored by creation.
    pub(crate) by_creation: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            expiry: (0..BUCKETS)
                .map(|b| format!("{prefix}{EXPIRY_TAG}{}", tag(b)))
                .collect(),
        }
    }

    /// The prefix, which scripts need to name the keys they find in indexes.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix><kind>{bucket}<hex>`.
    fn name(&self, kind: &str, bucket: u16, hex: &str) -> String {
        let mut name = String::with_capacity(self.prefix.len() + kind.len() + 6 + hex.len());
        name.push_str(&self.prefix);
        name.push_str(kind);
        name.push_str(&tag(bucket));
        name.push_str(hex);
        name
    }

    /// The key of session `key`'s hash in `bucket`.
    pub(crate) fn session(&self, key: &SessionKey, bucket: u16) -> String {
        self.name(SESSION_TAG, bucket, &key.to_hex())
    }

    /// The key of the link from `key`'s own bucket to its user's.
    pub(crate) fn link(&self, key: &SessionKey) -> String {
        self.name(LINK_TAG, bucket_of_key(key), &key.to_hex())
    }

    /// The user's index keys, in the user's bucket.
    pub(crate) fn user(&self, user_id: &str) -> UserKeys {
        let (bucket, hex) = (home_bucket(user_id), hex(user_id.as_bytes()));
        UserKeys {
            by_expiry: self.name(USER_BY_EXPIRY_TAG, bucket, &hex),
            by_creation: self.name(USER_BY_CREATION_TAG, bucket, &hex),
        }
    }

    /// The key of the rate-limit state of the limited key hashed to `key`.
    pub(crate) fn rate(&self, key: &SessionKey) -> String {
        self.name(RATE_TAG, bucket_of_key(key), &key.to_hex())
    }

    /// The expiry index of `bucket`.
    pub(crate) fn expiry(&self, bucket: u16) -> &str {
        &self.expiry[usize::from(bucket)]
    }

    /// The earlier layouts' one expiry index.
    pub(crate) fn earlier_expiry(&self) -> String {
        format!("{}{EARLIER_EXPIRY}", self.prefix)
    }
}

/// A bucket's hash tag: its number between braces.
pub(crate) fn tag(bucket: u16) -> String {
    format!("{{{bucket}}}")
}

/// Lower-case hex of `bytes`, as the scripts' `hex` writes it.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// A session key as the member of an index: the lower-case hex of its hash.
pub(crate) fn member(key: &SessionKey) -> String {
    key.to_hex()
}

/// Reads an index member back into a key; `None` if it is not 64 hex digits.
pub(crate) fn parse_member(member: &[u8]) -> Option<SessionKey> {
    SessionKey::from_hex(std::str::from_utf8(member).ok()?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn members_round_trip() {
        let key = SessionKey::of("some token");
        assert_eq!(parse_member(member(&key).as_bytes()), Some(key));
        assert_eq!(parse_member(b"xyz"), None);
        assert_eq!(parse_member(&[b'g'; 64]), None);
    }

    #[test]
    fn the_layout_of_each_kind_of_key() {
        let keys = Keys::new("app:");
        let key = SessionKey::from_hex(&format!("0403{}", "ab".repeat(30))).unwrap();
        assert_eq!(bucket_of_key(&key), 0x0403 % 1024);
        let hex = key.to_hex();
        assert_eq!(keys.session(&key, 9), format!("app:s:{{9}}{hex}"));
        assert_eq!(keys.link(&key), format!("app:a:{{3}}{hex}"));
        let home = home_bucket("é:x");
        assert_eq!(
            keys.user("é:x"),
            UserKeys {
                by_expiry: format!("app:ue:{{{home}}}c3a93a78"),
                by_creation: format!("app:uc:{{{home}}}c3a93a78"),
            }
        );
        assert_eq!(keys.expiry(1023), "app:x:{1023}");
        assert_eq!(keys.rate(&key), format!("app:r:{{3}}{hex}"));
        assert_eq!(keys.earlier_expiry(), "app:expiry");
    }

    #[test]
    fn a_users_routed_tokens_route_to_the_users_bucket() {
        for user in ["alice", "bob", "é", "anonymous:xyz"] {
            let home = home_bucket(user);
            assert!(home < BUCKETS);
            let token = sessionmanager_core::SessionToken::generate_routed(home).unwrap();
            assert_eq!(bucket_of_key(&token.key()), home);
        }
    }

    #[test]
    fn the_scripts_count_the_same_buckets() {
        let prelude = include_str!("lua/prelude.lua");
        assert!(prelude.contains(&format!("local BUCKETS = {BUCKETS}\n")));
    }

    /// Every key a store with `prefix` can make for these users and sessions,
    /// each with what it names.
    fn all_keys(prefix: &str, users: &[String], tokens: &[String]) -> Vec<(String, String)> {
        let keys = Keys::new(prefix);
        let mut all = vec![(keys.earlier_expiry(), format!("{prefix:?} earlier expiry"))];
        for bucket in [0, 1, 17, 1023] {
            let name = keys.expiry(bucket).to_owned();
            all.push((name, format!("{prefix:?} expiry of {bucket}")));
        }
        for user in users {
            let index = keys.user(user);
            all.push((
                index.by_expiry,
                format!("{prefix:?} user {user:?} by expiry"),
            ));
            all.push((
                index.by_creation,
                format!("{prefix:?} user {user:?} by creation"),
            ));
        }
        for token in tokens {
            let key = SessionKey::of(token);
            let name = keys.session(&key, home_bucket(token));
            all.push((name, format!("{prefix:?} session {token:?}")));
            all.push((keys.link(&key), format!("{prefix:?} link {token:?}")));
            let name = format!("{prefix}s:{}", key.to_hex());
            all.push((name, format!("{prefix:?} earlier session {token:?}")));
            let name = keys.rate(&SessionKey::of(token));
            all.push((name, format!("{prefix:?} rate limit {token:?}")));
        }
        all
    }

    proptest! {
        #[test]
        fn no_two_prefixes_user_ids_or_sessions_share_a_key(
            prefixes in proptest::collection::hash_set("[a-z:{}0-9]{0,6}|au:|a|u:|s:|ue:|r:", 1..6),
            users in proptest::collection::hash_set("[a-z:0-9é]{1,6}|expiry|s:|u:x", 1..6),
            tokens in proptest::collection::vec("[a-z]{1,4}", 1..4),
        ) {
            let users: Vec<String> = users.into_iter().collect();
            let mut seen: HashMap<String, String> = HashMap::new();
            for prefix in &prefixes {
                for (name, what) in all_keys(prefix, &users, &tokens) {
                    if let Some(other) = seen.insert(name.clone(), what.clone()) {
                        prop_assert_eq!(&other, &what, "{:?} names both", name);
                    }
                }
            }
        }
    }
}

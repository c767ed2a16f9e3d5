//! The names of the store's Redis keys. Every key is the configured prefix
//! followed by a tail of one of these shapes:
//!
//! - `s:<hex of the token's SHA-256>`: one hash per session;
//! - `ue:<hex of the user id's UTF-8>`: the user's index, a sorted set of
//!   the user's session hashes scored by expiry;
//! - `uc:<hex of the user id's UTF-8>`: the same sessions scored by
//!   creation, so that the oldest are found without reading the others;
//! - `expiry`: every session hash scored by expiry, for `count`,
//!   `purge_expired` and the sweep, so nothing ever walks the keyspace;
//! - `r:<hex of the limited key's SHA-256>`: a rate-limited key's state, a
//!   string that Redis removes once it stops mattering.
//!
//! No key of one prefix can be a key of another, whatever the prefixes and
//! user ids: a tail is a tag of letters that are not hex digits (`s:`,
//! `ue:`, `uc:`, `r:`, none the end of another) followed by hex digits only, or
//! the word `expiry`. Read from its end, a key's tail stops at the first
//! character that is not a hex digit, so the tail, and with it the prefix,
//! is known from the key alone.
//!
//! Stores of the first layout kept a user's index under `u:<user id>` as
//! given, which let prefixes and user ids collide. The scripts still read
//! such an index (`list_user`) and move its sessions into the two indexes
//! above at the user's first create with a limit or `delete_user`
//! (`adopt_first_layout` in `lua/prelude.lua`); untouched, it expires with
//! its last session.
//!
//! The Lua scripts build session and user keys from the prefix the same way.

use sessionmanager_core::SessionKey;

/// What follows the prefix in a session's key.
pub(crate) const SESSION_TAG: &str = "s:";
/// What follows the prefix in a user's index by expiry.
const USER_BY_EXPIRY_TAG: &str = "ue:";
/// What follows the prefix in a user's index by creation.
const USER_BY_CREATION_TAG: &str = "uc:";
/// What follows the prefix in a rate-limited key's state.
const RATE_TAG: &str = "r:";
/// What follows the prefix in the expiry index's key.
const EXPIRY_TAG: &str = "expiry";

/// Builds key names for one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
    expiry: String,
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
            expiry: format!("{prefix}{EXPIRY_TAG}"),
        }
    }

    /// The prefix, which scripts need to name the keys they find in indexes.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The session hash's key.
    pub(crate) fn session(&self, key: &SessionKey) -> String {
        let mut name = String::with_capacity(self.prefix.len() + SESSION_TAG.len() + 64);
        name.push_str(&self.prefix);
        name.push_str(SESSION_TAG);
        name.push_str(&key.to_hex());
        name
    }

    /// The user's index keys.
    pub(crate) fn user(&self, user_id: &str) -> UserKeys {
        let hex = hex(user_id.as_bytes());
        UserKeys {
            by_expiry: format!("{}{USER_BY_EXPIRY_TAG}{hex}", self.prefix),
            by_creation: format!("{}{USER_BY_CREATION_TAG}{hex}", self.prefix),
        }
    }

    /// The key of the rate-limit state of the limited key hashed to `key`.
    pub(crate) fn rate(&self, key: &SessionKey) -> String {
        format!("{}{RATE_TAG}{}", self.prefix, key.to_hex())
    }

    /// The expiry index's key.
    pub(crate) fn expiry(&self) -> &str {
        &self.expiry
    }
}

/// Lower-case hex of `bytes`, as the scripts' `user_keys` writes it.
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
    if member.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, pair) in member.chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        bytes[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(SessionKey::from_bytes(bytes))
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
        let key = SessionKey::of("t");
        assert_eq!(keys.session(&key), format!("app:s:{}", key.to_hex()));
        assert_eq!(
            keys.user("é:x"),
            UserKeys {
                by_expiry: "app:ue:c3a93a78".into(),
                by_creation: "app:uc:c3a93a78".into(),
            }
        );
        assert_eq!(keys.expiry(), "app:expiry");
        assert_eq!(keys.rate(&key), format!("app:r:{}", key.to_hex()));
    }

    /// Every key a store with `prefix` can make for these users and sessions,
    /// each with what it names.
    fn all_keys(prefix: &str, users: &[String], tokens: &[String]) -> Vec<(String, String)> {
        let keys = Keys::new(prefix);
        let mut all = vec![(keys.expiry().to_owned(), format!("{prefix:?} expiry"))];
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
            let name = keys.session(&SessionKey::of(token));
            all.push((name, format!("{prefix:?} session {token:?}")));
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

//! The names of the store's Redis keys. Every key starts with the configured
//! prefix, then a one-part tag, so the store's three kinds of keys never
//! collide with each other or with other data in the database:
//!
//! - `<prefix>s:<hex of the token's SHA-256>`: one hash per session;
//! - `<prefix>u:<user id>`: the user's index, a sorted set of the user's
//!   session hashes scored by expiry;
//! - `<prefix>expiry`: every session hash scored by expiry, for `count`,
//!   `purge_expired` and the sweep, so nothing ever walks the keyspace.
//!
//! The Lua scripts build session and user keys from the prefix the same way
//! ([`SESSION_TAG`], [`USER_TAG`]).

use sessionmanager_core::SessionKey;

/// What follows the prefix in a session's key.
pub(crate) const SESSION_TAG: &str = "s:";
/// What follows the prefix in a user's index key.
pub(crate) const USER_TAG: &str = "u:";
/// What follows the prefix in the expiry index's key.
const EXPIRY_TAG: &str = "expiry";

/// Builds key names for one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
    expiry: String,
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

    /// The user's index key.
    pub(crate) fn user(&self, user_id: &str) -> String {
        format!("{}{USER_TAG}{user_id}", self.prefix)
    }

    /// The expiry index's key.
    pub(crate) fn expiry(&self) -> &str {
        &self.expiry
    }
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
    use super::*;

    #[test]
    fn members_round_trip() {
        let key = SessionKey::of("some token");
        assert_eq!(parse_member(member(&key).as_bytes()), Some(key));
        assert_eq!(parse_member(b"xyz"), None);
        assert_eq!(parse_member(&[b'g'; 64]), None);
    }

    #[test]
    fn kinds_of_keys_never_collide() {
        let keys = Keys::new("app:");
        let key = SessionKey::of("t");
        assert_eq!(keys.session(&key), format!("app:s:{}", key.to_hex()));
        assert_eq!(keys.user("s:x"), "app:u:s:x");
        assert_eq!(keys.expiry(), "app:expiry");
    }
}

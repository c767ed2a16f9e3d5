//! Session tokens (the secret the client holds) and keys (what stores index by).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const TOKEN_BYTES: usize = 32;
/// Length of a token's text: 32 bytes in unpadded URL-safe base64.
const TOKEN_CHARS: usize = 43;
/// Length of a routed token's text: 32 random bytes and a 2-byte route.
const ROUTED_TOKEN_CHARS: usize = 46;
/// The longest a token's text can be (a routed token's): longer text never
/// names a session.
pub const MAX_TOKEN_CHARS: usize = ROUTED_TOKEN_CHARS;

/// The secret a client presents: 256 bits from the OS CSPRNG, URL-safe base64.
///
/// A store that spreads sessions over servers (Redis Cluster) has the
/// manager issue *routed* tokens instead ([`SessionToken::generate_routed`]):
/// the same 256 random bits followed by a 16-bit route the store chose, so
/// the store finds a session's server from its key alone. The route is not
/// secret and adds nothing to guess; what it tells a holder of the token is
/// the store's business (see [`SessionStore::token_route`](crate::SessionStore::token_route)).
///
/// Its `Debug` output is redacted so the secret does not end up in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// Draws a fresh token from the operating system's CSPRNG.
    ///
    /// Fails only if the OS cannot provide randomness, which is reported rather
    /// than papered over with a weaker source.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Store(format!("the OS random source failed: {e}").into()))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Draws a fresh routed token: 256 bits from the OS CSPRNG followed by
    /// `route`, 46 characters. Its [`key`](Self::key) begins with `route`.
    pub fn generate_routed(route: u16) -> Result<Self> {
        let mut bytes = [0u8; TOKEN_BYTES + 2];
        getrandom::fill(&mut bytes[..TOKEN_BYTES])
            .map_err(|e| Error::Store(format!("the OS random source failed: {e}").into()))?;
        bytes[TOKEN_BYTES..].copy_from_slice(&route.to_be_bytes());
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A fresh token to replace the token `old` (a rotation): routed by
    /// `old`'s route if `old` is routed, so the session stays where its
    /// store filed it.
    pub fn generate_like(old: &SessionKey, old_text: &str) -> Result<Self> {
        match old_text.len() {
            ROUTED_TOKEN_CHARS => Self::generate_routed(old.route()),
            _ => Self::generate(),
        }
    }

    /// Accepts `text` if it has the exact shape of an issued token.
    ///
    /// Anything else returns `None`: a malformed id is simply "not found", and
    /// it never reaches a store.
    pub fn parse(text: &str) -> Option<Self> {
        is_well_formed(text).then(|| Self(text.to_owned()))
    }

    /// The token's text, to hand to the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token's text, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The key a store files this session under.
    pub fn key(&self) -> SessionKey {
        SessionKey::of_well_formed(&self.0)
    }
}

/// Whether `text` is a token in canonical unpadded URL-safe base64: 32 bytes
/// in 43 characters (the last one's 2 spare bits zero) or, routed, 34 bytes
/// in 46 (4 spare bits zero), so each token has exactly one spelling.
/// Checked without decoding: this runs on every request, including forged ones.
fn is_well_formed(text: &str) -> bool {
    let bytes = text.as_bytes();
    let spare = match bytes.len() {
        TOKEN_CHARS => 0b11,
        ROUTED_TOKEN_CHARS => 0b1111,
        _ => return false,
    };
    bytes
        .iter()
        .all(|&b| BASE64_URL_VALUE[usize::from(b)] != INVALID)
        && BASE64_URL_VALUE[usize::from(bytes[bytes.len() - 1])] & spare == 0
}

/// The route a well-formed routed token's last 4 characters carry (24 bits:
/// 4 random ones, the route's 16, then the 4 spare bits, zero).
fn route_of(text: &[u8]) -> u16 {
    let bits = text[ROUTED_TOKEN_CHARS - 4..].iter().fold(0u32, |acc, &c| {
        acc << 6 | u32::from(BASE64_URL_VALUE[usize::from(c)])
    });
    (bits >> 4) as u16
}

const INVALID: u8 = 0xff;

/// Each byte's value in the URL-safe base64 alphabet, or [`INVALID`].
static BASE64_URL_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// SHA-256 of a token: what stores use as the primary key, so a leaked store
/// does not leak usable tokens. A routed token's key is its SHA-256 with the
/// first two bytes replaced by the token's route, so that a store finds the
/// route from the key ([`SessionKey::route`]); the other 240 bits of hash
/// still make keys collision-free and the token unrecoverable.
///
/// Stores look keys up by hash (maps, B-trees, Redis keys), never by comparing
/// token text, so lookup time does not depend on how much of a guess is right.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The key of `text` if it is a well-formed token, without copying it.
    pub fn for_token_text(text: &str) -> Option<Self> {
        is_well_formed(text).then(|| Self::of_well_formed(text))
    }

    /// The key of a well-formed token's text: routed or not, by its length.
    fn of_well_formed(text: &str) -> Self {
        let mut key = Self::of(text);
        if text.len() == ROUTED_TOKEN_CHARS {
            key.0[..2].copy_from_slice(&route_of(text.as_bytes()).to_be_bytes());
        }
        key
    }

    /// The SHA-256 of `text` (a token that is not routed, or any other text
    /// to file under a key, such as a rate-limited name).
    pub fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// The route of a routed token's key; for other keys, the first 16
    /// bits of their hash (spread evenly, like routes a store chooses).
    pub fn route(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    /// Rebuilds a key from its 32 bytes (as read back from a store).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the hash.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 bits of the hash, for choosing a shard or seeding a hash table.
    pub fn prefix_u64(&self) -> u64 {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(head)
    }

    /// The key whose [`to_hex`](Self::to_hex) is `text` (either case), or
    /// `None` if `text` is not 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            *byte = (high * 16 + low) as u8;
        }
        Some(Self(bytes))
    }

    /// Lower-case hex of the hash: a public, non-secret name for the session.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }
}

/// Feeds 64 bits of the key to the hasher: the key is already a SHA-256 of a
/// random token, so hashing all of it again would only cost time.
impl std::hash::Hash for SessionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix_u64());
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_tokens_are_43_url_safe_chars_and_distinct() {
        let tokens: HashSet<String> = (0..1000)
            .map(|_| SessionToken::generate().unwrap().into_string())
            .collect();
        assert_eq!(tokens.len(), 1000);
        for token in &tokens {
            assert_eq!(token.len(), 43);
            assert!(SessionToken::parse(token).is_some(), "{token}");
        }
    }

    #[test]
    fn malformed_text_is_not_a_token() {
        let good = SessionToken::generate().unwrap().into_string();
        for bad in [
            "",
            "abc",
            &good[..42],
            &format!("{good}A"),
            &format!("{}+", &good[..42]),
            &format!("{}/", &good[..42]),
            &format!("{}\0", &good[..42]),
            "../../../../../../../../../../etc/passwd/..",
        ] {
            assert!(SessionToken::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn non_canonical_last_char_is_rejected() {
        // 43 chars carry 258 bits for 256: the last char has 2 spare bits that must be
        // zero, so 16 of its 64 values are canonical and each token has one spelling.
        let good = SessionToken::generate().unwrap().into_string();
        let accepted = ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(['-', '_'])
            .filter(|c| SessionToken::parse(&format!("{}{c}", &good[..42])).is_some())
            .count();
        assert_eq!(accepted, 16);
    }

    #[test]
    fn key_is_sha256_and_debug_hides_secret() {
        let token = SessionToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(format!("{token:?}"), "SessionToken(<redacted>)");
        let key = token.key();
        assert_eq!(key, SessionKey::of(token.as_str()));
        assert_eq!(key.to_hex().len(), 64);
        assert!(!format!("{key:?}").contains(token.as_str()));
    }

    #[test]
    fn routed_tokens_carry_their_route_into_the_key() {
        for route in [0, 1, 0x3ff, 0x8000, u16::MAX] {
            let token = SessionToken::generate_routed(route).unwrap();
            assert_eq!(token.as_str().len(), 46);
            let parsed = SessionToken::parse(token.as_str()).unwrap();
            let key = parsed.key();
            assert_eq!(key.route(), route);
            assert_eq!(SessionKey::for_token_text(token.as_str()), Some(key));
            // The rest of the key is the token's hash.
            let hash = SessionKey::of(token.as_str());
            assert_eq!(key.as_bytes()[2..], hash.as_bytes()[2..]);
        }
        let a = SessionToken::generate_routed(7).unwrap();
        let b = SessionToken::generate_routed(7).unwrap();
        assert_ne!(a, b);
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn a_routed_token_has_one_spelling() {
        let good = SessionToken::generate_routed(0x1234).unwrap().into_string();
        let accepted = ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(['-', '_'])
            .filter(|c| SessionToken::parse(&format!("{}{c}", &good[..45])).is_some())
            .count();
        // 46 chars carry 276 bits for 272: the last char has 4 spare bits.
        assert_eq!(accepted, 4);
        for bad in [&good[..44], &good[..45], &format!("{good}A")] {
            assert!(SessionToken::parse(bad).is_none(), "{bad:?}");
        }
    }
}

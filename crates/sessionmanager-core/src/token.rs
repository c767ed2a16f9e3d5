//! Session tokens (the secret the client holds) and keys (what stores index by).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const TOKEN_BYTES: usize = 32;
/// Length of a token's text: 32 bytes in unpadded URL-safe base64.
const TOKEN_CHARS: usize = 43;

/// The secret a client presents: 256 bits from the OS CSPRNG, URL-safe base64.
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
        SessionKey::of(&self.0)
    }
}

/// Whether `text` is 32 bytes in canonical unpadded URL-safe base64: 43
/// characters of the URL-safe alphabet, the last one's 2 spare bits zero, so
/// each token has exactly one spelling. Checked without decoding: this runs on
/// every request, including forged ones.
fn is_well_formed(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == TOKEN_CHARS
        && bytes
            .iter()
            .all(|&b| BASE64_URL_VALUE[usize::from(b)] != INVALID)
        && BASE64_URL_VALUE[usize::from(bytes[TOKEN_CHARS - 1])] & 0b11 == 0
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
/// does not leak usable tokens.
///
/// Stores look keys up by hash (maps, B-trees, Redis keys), never by comparing
/// token text, so lookup time does not depend on how much of a guess is right.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The key of `text` if it is a well-formed token, without copying it.
    pub fn for_token_text(text: &str) -> Option<Self> {
        is_well_formed(text).then(|| Self::of(text))
    }

    /// The key of the token text `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
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
}

//! User ids for visitors who have not logged in.

use sessionmanager_core::{Result, SessionToken};

/// Prefix of the user id given to visitors who have not logged in. Each gets
/// their own (`anonymous:<random>`) so per-user limits and listings never lump
/// visitors together. [`Session::login`](crate::Session::login) refuses user
/// ids with this prefix.
pub const ANONYMOUS_PREFIX: &str = "anonymous:";

/// Characters of randomness in a visitor's id: 16 URL-safe base64 characters
/// are 96 bits, as in the Python integrations' `secrets.token_urlsafe(12)`.
const RANDOM_CHARS: usize = 16;

/// A fresh user id for a visitor. The randomness comes from the engine's
/// token generator (the OS CSPRNG), so this crate needs no random source of its own.
pub(crate) fn anonymous_user_id() -> Result<String> {
    let token = SessionToken::generate()?;
    Ok(format!(
        "{ANONYMOUS_PREFIX}{}",
        &token.as_str()[..RANDOM_CHARS]
    ))
}

/// Whether `user_id` is a visitor's rather than a logged-in user's.
pub(crate) fn is_anonymous(user_id: &str) -> bool {
    user_id.starts_with(ANONYMOUS_PREFIX)
}

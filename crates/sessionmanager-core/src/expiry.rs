//! When sessions expire: an idle timeout that slides on use, an optional
//! absolute cap nothing can extend, and the half-window rule that keeps
//! reads from turning into writes.

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// The longest timeout accepted: 100 years, far beyond any session, small
/// enough that deadline arithmetic never overflows.
pub const MAX_TIMEOUT_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// How a session expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// Idle timeout in milliseconds: the session ends this long after its last
    /// activity (or after creation when `sliding` is false).
    pub idle_timeout_ms: i64,
    /// Whether activity extends the idle deadline.
    pub sliding: bool,
    /// Cap on the total lifetime in milliseconds, counted from creation.
    pub absolute_timeout_ms: Option<i64>,
}

impl ExpiryPolicy {
    /// One hour idle timeout, sliding, no absolute cap.
    pub const DEFAULT: Self = Self {
        idle_timeout_ms: 3_600_000,
        sliding: true,
        absolute_timeout_ms: None,
    };

    /// Checks that every timeout is positive and at most [`MAX_TIMEOUT_MS`].
    pub fn validate(&self) -> Result<()> {
        check_timeout("expiration_time", self.idle_timeout_ms)?;
        if let Some(absolute) = self.absolute_timeout_ms {
            check_timeout("absolute_timeout", absolute)?;
        }
        Ok(())
    }

    /// The absolute deadline of a session created at `created_at`.
    pub fn absolute_deadline(&self, created_at: Timestamp) -> Option<Timestamp> {
        self.absolute_timeout_ms
            .map(|ms| created_at.plus_millis(ms))
    }
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

fn check_timeout(name: &str, ms: i64) -> Result<()> {
    if ms <= 0 {
        return Err(Error::InvalidArgument(format!(
            "{name} must be positive (at least 1 millisecond), got {ms} ms"
        )));
    }
    if ms > MAX_TIMEOUT_MS {
        return Err(Error::InvalidArgument(format!(
            "{name} must be at most 100 years, got {ms} ms"
        )));
    }
    Ok(())
}

/// The idle deadline of activity at `at`, held under the absolute cap.
pub(crate) fn deadline(at: Timestamp, idle_ms: i64, absolute: Option<Timestamp>) -> Timestamp {
    let idle = at.plus_millis(idle_ms);
    absolute.map_or(idle, |cap| idle.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_zero_negative_and_huge() {
        for bad in [0, -1, MAX_TIMEOUT_MS + 1] {
            let policy = ExpiryPolicy {
                idle_timeout_ms: bad,
                ..ExpiryPolicy::DEFAULT
            };
            assert!(policy.validate().is_err(), "{bad}");
            let policy = ExpiryPolicy {
                absolute_timeout_ms: Some(bad),
                ..ExpiryPolicy::DEFAULT
            };
            let message = policy.validate().unwrap_err().to_string();
            assert!(message.starts_with("absolute_timeout must be"), "{message}");
        }
        assert!(ExpiryPolicy::DEFAULT.validate().is_ok());
    }

    #[test]
    fn deadline_is_capped() {
        assert_eq!(deadline(Timestamp(100), 50, None), Timestamp(150));
        assert_eq!(
            deadline(Timestamp(100), 50, Some(Timestamp(120))),
            Timestamp(120)
        );
    }
}

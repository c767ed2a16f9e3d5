//! What a store keeps for one session.

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::data::SessionData;
use crate::expiry::{ExpiryPolicy, deadline};

/// One session as stored: owner, data, version and expiry bookkeeping.
///
/// Expiry is kept as absolute times so every store (and every process sharing
/// one) agrees on it without knowing the policy that produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The user the session belongs to.
    pub user_id: Arc<str>,
    /// The session's JSON data.
    pub data: SessionData,
    /// Bumped by every data write; compare-and-set writes check it.
    pub version: u64,
    /// When the session was created.
    pub created_at: Timestamp,
    /// When activity was last recorded (a write, or a sliding refresh; reads
    /// record it at most once per half idle window).
    pub last_active: Timestamp,
    /// The session is live while the clock is before this time.
    pub expires_at: Timestamp,
    /// The idle timeout this session was created with, in milliseconds.
    pub idle_timeout_ms: i64,
    /// Whether activity extends `expires_at`.
    pub sliding: bool,
    /// The deadline nothing extends, if the session has one.
    pub absolute_expires_at: Option<Timestamp>,
}

impl SessionRecord {
    /// A new session at version 1, created at `now` under `policy`.
    pub fn new(
        user_id: Arc<str>,
        data: SessionData,
        policy: &ExpiryPolicy,
        now: Timestamp,
    ) -> Self {
        let absolute_expires_at = policy.absolute_deadline(now);
        Self {
            user_id,
            data,
            version: 1,
            created_at: now,
            last_active: now,
            expires_at: deadline(now, policy.idle_timeout_ms, absolute_expires_at),
            idle_timeout_ms: policy.idle_timeout_ms,
            sliding: policy.sliding,
            absolute_expires_at,
        }
    }

    /// Whether the session is live at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// Whether a read at `now` should write a sliding refresh: at least half
    /// the idle window has passed since the last recorded activity, and the
    /// refresh would move the deadline.
    pub fn refresh_due(&self, now: Timestamp) -> bool {
        self.sliding
            && now.millis().saturating_sub(self.last_active.millis()) >= self.idle_timeout_ms / 2
            && self.sliding_deadline(now) > self.expires_at
    }

    /// Records activity at `now`: moves `last_active`, and `expires_at` too when
    /// the session slides (never past the absolute deadline, never backwards).
    pub fn record_activity(&mut self, now: Timestamp) {
        self.last_active = self.last_active.max(now);
        if self.sliding {
            self.expires_at = self.expires_at.max(self.sliding_deadline(now));
        }
    }

    fn sliding_deadline(&self, now: Timestamp) -> Timestamp {
        deadline(now, self.idle_timeout_ms, self.absolute_expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(policy: ExpiryPolicy) -> SessionRecord {
        SessionRecord::new(
            Arc::from("u"),
            SessionData::empty(),
            &policy,
            Timestamp(1_000),
        )
    }

    #[test]
    fn refresh_is_due_only_after_half_the_window() {
        let mut r = record(ExpiryPolicy {
            idle_timeout_ms: 100,
            ..ExpiryPolicy::DEFAULT
        });
        assert_eq!(r.expires_at, Timestamp(1_100));
        assert!(!r.refresh_due(Timestamp(1_049)));
        assert!(r.refresh_due(Timestamp(1_050)));
        r.record_activity(Timestamp(1_050));
        assert_eq!(
            (r.last_active, r.expires_at),
            (Timestamp(1_050), Timestamp(1_150))
        );
        assert!(!r.is_live(Timestamp(1_150)));
    }

    #[test]
    fn absolute_deadline_is_never_extended() {
        let mut r = record(ExpiryPolicy {
            idle_timeout_ms: 100,
            sliding: true,
            absolute_timeout_ms: Some(120),
        });
        r.record_activity(Timestamp(1_090));
        assert_eq!(r.expires_at, Timestamp(1_120));
        assert!(!r.refresh_due(Timestamp(1_119)));
    }

    #[test]
    fn fixed_expiry_does_not_slide() {
        let mut r = record(ExpiryPolicy {
            idle_timeout_ms: 100,
            sliding: false,
            absolute_timeout_ms: None,
        });
        assert!(!r.refresh_due(Timestamp(1_090)));
        r.record_activity(Timestamp(1_090));
        assert_eq!(
            (r.last_active, r.expires_at),
            (Timestamp(1_090), Timestamp(1_100))
        );
    }
}

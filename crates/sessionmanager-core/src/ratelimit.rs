//! Rate limiting with GCRA (the generic cell rate algorithm, as in redis-cell
//! and the governor crate): one timestamp per key, the "theoretical arrival
//! time" (TAT), and no counters to reset.
//!
//! Each key's state is one number in the manager's store, apart from the
//! sessions ([`SessionStore::rate_load`], [`SessionStore::rate_store`]),
//! under the SHA-256 of the key, written by compare-and-set, so the limit
//! holds across threads, processes and machines on every store, and the
//! store removes a key's state once it no longer limits anything. A store
//! that machines share (Redis, PostgreSQL) lends its own clock to the
//! decision, so servers whose clocks disagree still share one limit.

use std::str::FromStr;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::expiry::MAX_TIMEOUT_MS;
use crate::manager::SessionManager;
use crate::store::SessionStore;
use crate::token::SessionKey;

/// Longest key accepted by [`SessionManager::hit_rate_limit`], in bytes.
pub const MAX_RATE_KEY_BYTES: usize = 1024;

/// How many times one hit re-reads the key's state when other hits keep
/// winning the compare-and-set; each retry means another hit was counted.
const MAX_ATTEMPTS: usize = 1000;

/// A rate: `count` hits per `period`, parsed from text like `"100/minute"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    count: u32,
    period: Duration,
}

impl Rate {
    /// `count` hits per `period`; both must be positive.
    pub fn new(count: u32, period: Duration) -> Result<Self> {
        if count == 0 {
            return Err(Error::InvalidArgument(
                "a rate must allow at least 1 hit per period, got 0".into(),
            ));
        }
        if period.is_zero() {
            return Err(Error::InvalidArgument(
                "a rate's period must be longer than zero".into(),
            ));
        }
        Ok(Self { count, period })
    }

    /// Hits allowed per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Microseconds between hits at a steady pace (at least 1).
    fn emission_interval_us(&self) -> i64 {
        (self.period.as_micros() / u128::from(self.count)).clamp(1, i64::MAX as u128) as i64
    }
}

impl FromStr for Rate {
    type Err = Error;

    /// Parses `"<count>/<unit>"`, the unit one of second, minute, hour, day
    /// (or s, sec, m, min, h, d; plurals too).
    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "rate {text:?} {why}; write it like \"100/minute\" or \"5/second\""
            ))
        };
        let (count, unit) = text.split_once('/').ok_or_else(|| bad("has no '/'"))?;
        let count: u32 = match count.trim().parse::<u64>() {
            Ok(count) => u32::try_from(count)
                .map_err(|_| bad(&format!("allows more than {} hits per period", u32::MAX)))?,
            Err(_) => return Err(bad("must start with a whole number of hits")),
        };
        let seconds = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" | "seconds" => 1,
            "m" | "min" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(bad("has an unknown unit (second, minute, hour or day)")),
        };
        Rate::new(count, Duration::from_secs(seconds))
    }
}

/// A limit: a [`Rate`] plus how many hits may come at once (the burst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    rate: Rate,
    burst: u32,
}

impl RateLimit {
    /// `rate` with a burst of `burst` hits at once (default: the rate's count,
    /// so a fresh key may spend a whole period's hits immediately).
    ///
    /// A burst spends `burst` intervals of the rate at once, and a key's
    /// state lasts that long: `burst × period / count` may be at most 100
    /// years ([`MAX_TIMEOUT_MS`], as for any session), so that every
    /// accepted limit is counted exactly. A larger burst is refused with
    /// the largest one allowed.
    pub fn new(rate: Rate, burst: Option<u32>) -> Result<Self> {
        let burst = burst.unwrap_or(rate.count);
        if burst == 0 {
            return Err(Error::InvalidArgument(
                "burst must be at least 1, got 0".into(),
            ));
        }
        let largest = MAX_TIMEOUT_MS.saturating_mul(1000) / rate.emission_interval_us();
        if i64::from(burst) > largest {
            return Err(Error::InvalidArgument(format!(
                "burst {burst} is too large for {} per {:?}: a burst may \
                 span at most 100 years of the rate, so at most {largest}",
                rate.count, rate.period
            )));
        }
        Ok(Self { rate, burst })
    }

    /// The rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Hits allowed at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The decision for a hit at `now_us` on a key whose TAT is `tat_us`,
    /// and the TAT to store: the new one if the hit is allowed.
    ///
    /// A TAT never lies more than the burst's span ahead of `now`, which
    /// only a clock stepped back (NTP) can cause: such a TAT is brought back
    /// to "burst spent as of now" and stored even when the hit is denied, so
    /// the key waits one interval, not as long as the step. A clock stepped
    /// forward finds the TAT in the past, which grants the burst and no more.
    fn decide(&self, now_us: i64, tat_us: i64) -> (RateDecision, Option<i64>) {
        let interval = self.rate.emission_interval_us();
        // Exact: `new` keeps interval × burst within 100 years.
        let tolerance = interval * i64::from(self.burst);
        let latest = now_us.saturating_add(tolerance);
        let clamped = (tat_us > latest).then_some(latest);
        let tat_us = tat_us.min(latest);
        let new_tat = tat_us.max(now_us).saturating_add(interval);
        let allow_at = new_tat - tolerance;
        if now_us < allow_at {
            let retry_after = Duration::from_micros((allow_at - now_us) as u64);
            let denied = RateDecision {
                allowed: false,
                remaining: 0,
                retry_after,
            };
            return (denied, clamped);
        }
        let remaining = ((now_us - allow_at) / interval).min(i64::from(self.burst)) as u32;
        let allowed = RateDecision {
            allowed: true,
            remaining,
            retry_after: Duration::ZERO,
        };
        (allowed, Some(new_tat))
    }
}

/// What one hit decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the hit was allowed (and counted).
    pub allowed: bool,
    /// Hits still allowed right now after this one.
    pub remaining: u32,
    /// How long until a hit would be allowed; zero when this one was.
    pub retry_after: Duration,
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument(
            "a rate-limit key must not be empty".into(),
        ));
    }
    if key.len() > MAX_RATE_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "a rate-limit key must be at most {MAX_RATE_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

/// When the state holding `tat_us` stops mattering: the millisecond after
/// the TAT, from which on the key is as good as fresh.
pub fn rate_state_expiry(tat_us: i64) -> Timestamp {
    Timestamp(tat_us.div_euclid(1000) + 1)
}

impl<S: SessionStore> SessionManager<S> {
    /// Counts a hit on `key` against `limit` if the limit allows it, and says
    /// what it decided. Atomic on every store: hits from any number of threads
    /// and processes are never allowed beyond the limit.
    pub async fn hit_rate_limit(&self, limit: &RateLimit, key: &str) -> Result<RateDecision> {
        self.measured(crate::stats::Operation::HitRateLimit, async {
            check_key(key)?;
            let store_key = SessionKey::of(key);
            for _ in 0..MAX_ATTEMPTS {
                let read = self.store().rate_load(&store_key).await?;
                let now_us = match read.store_now_us {
                    Some(store_now_us) if self.config().clock.is_wall_clock() => store_now_us,
                    _ => self.now().millis().saturating_mul(1000),
                };
                let now = Timestamp(now_us.div_euclid(1000));
                let current = read.tat_us.filter(|tat| rate_state_expiry(*tat) > now);
                let (decision, new_tat) = limit.decide(now_us, current.unwrap_or(now_us));
                let Some(new_tat) = new_tat else {
                    return Ok(decision);
                };
                if !decision.allowed && current.is_none() {
                    return Ok(decision); // nothing stored to bring back
                }
                let store = self.store().rate_store(&store_key, current, new_tat, now);
                if store.await? {
                    return Ok(decision);
                }
            }
            Err(Error::Unavailable(
                format!(
                    "the rate-limit state of a key kept changing under {MAX_ATTEMPTS} attempts"
                )
                .into(),
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(text: &str, burst: Option<u32>) -> RateLimit {
        RateLimit::new(text.parse().unwrap(), burst).unwrap()
    }

    #[test]
    fn rates_parse_and_bad_ones_say_why() {
        assert_eq!(
            "100/minute".parse::<Rate>().unwrap(),
            Rate::new(100, Duration::from_secs(60)).unwrap()
        );
        assert_eq!("5 / Second".parse::<Rate>().unwrap().count(), 5);
        for (bad, why) in [
            ("ten/minute", "whole number of hits"),
            ("0/second", "at least 1 hit"),
            ("5/fortnight", "unknown unit"),
            ("5", "has no '/'"),
            ("-1/second", "whole number"),
        ] {
            let err = bad.parse::<Rate>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let err = RateLimit::new("1/s".parse().unwrap(), Some(0)).unwrap_err();
        assert!(err.to_string().contains("burst must be at least 1"));
    }

    #[test]
    fn a_burst_then_one_hit_per_interval() {
        let limit = limit("5/second", None); // one hit per 200 ms, 5 at once
        let mut tat = 0;
        let mut now = 1_000_000_000;
        for remaining in (0..5).rev() {
            let (decision, next) = limit.decide(now, tat);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, remaining);
            tat = next.unwrap();
        }
        let (denied, next) = limit.decide(now, tat);
        assert!(!denied.allowed && next.is_none(), "a denial stores nothing");
        assert_eq!(denied.retry_after, Duration::from_millis(200));
        now += 200_000;
        let (decision, _) = limit.decide(now, tat);
        assert!(decision.allowed && decision.remaining == 0);
    }

    #[test]
    fn every_accepted_burst_is_exact_and_a_larger_one_names_the_largest() {
        let day: Rate = "1/day".parse().unwrap();
        let err = RateLimit::new(day, Some(200_000_000))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 36600"), "{err}");
        let limit = RateLimit::new(day, Some(36_600)).unwrap();
        // A fresh key spends the whole burst at once, not a capped part of it.
        let mut tat = 0;
        let now = 1_700_000_000_000_000;
        for remaining in (0..36_600).rev() {
            let (decision, next) = limit.decide(now, tat);
            assert!(decision.allowed && decision.remaining == remaining);
            tat = next.unwrap();
        }
        assert!(!limit.decide(now, tat).0.allowed);
        let err = "4294967296/second".parse::<Rate>().unwrap_err().to_string();
        assert!(err.contains("more than 4294967295 hits"), "{err}");
    }

    #[test]
    fn a_clock_stepped_back_denies_no_longer_than_one_interval() {
        let limit = limit("10/minute", None); // one hit per 6 s, 10 at once
        let now = 1_700_000_000_000_000;
        let mut tat = 0;
        for _ in 0..10 {
            tat = limit.decide(now, tat).1.unwrap();
        }
        // NTP steps the clock back an hour: the key waits one interval, not an hour.
        let back = now - 3_600_000_000;
        let (denied, stored) = limit.decide(back, tat);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, Duration::from_secs(6));
        let tat = stored.expect("the TAT is brought back and stored");
        assert!(!limit.decide(back + 5_000_000, tat).0.allowed);
        let (allowed, next) = limit.decide(back + 6_000_000, tat);
        assert!(allowed.allowed);
        let tat = next.unwrap();
        // Stepped forward a day: the burst, and no more.
        let ahead = now + 86_400_000_000;
        let mut tat = tat;
        for _ in 0..10 {
            let (decision, next) = limit.decide(ahead, tat);
            assert!(decision.allowed);
            tat = next.unwrap();
        }
        assert!(!limit.decide(ahead, tat).0.allowed);
    }
}

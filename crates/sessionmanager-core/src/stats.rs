//! What a manager counts while it works: sessions created, ended (and why),
//! rotated and expired, write conflicts and retries, errors by kind, and a
//! latency histogram per operation.
//! [`SessionManager::stats`](crate::SessionManager::stats) reads them; the
//! Python binding exports them to Prometheus.
//!
//! Counting costs two relaxed atomic additions and two reads of the CPU's
//! time-stamp counter per call (through `quanta`, which falls back to the
//! OS clock where that counter is unreliable). Each operation's histogram
//! sits on cache lines of its own, so threads running different operations
//! do not contend.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use quanta::Clock;

use crate::error::{Error, Result};
use crate::manager::SessionManager;
use crate::store::SessionStore;

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The snake_case name metrics and the Python binding use.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

named_enum!(
    /// A manager operation whose latency is measured.
    Operation {
        /// [`SessionManager::create`](crate::SessionManager::create).
        Create => "create",
        /// [`SessionManager::get`](crate::SessionManager::get).
        Get => "get",
        /// [`SessionManager::peek`](crate::SessionManager::peek).
        Peek => "peek",
        /// [`SessionManager::is_active`](crate::SessionManager::is_active).
        IsActive => "is_active",
        /// [`SessionManager::end`](crate::SessionManager::end).
        End => "end",
        /// [`SessionManager::touch`](crate::SessionManager::touch).
        Touch => "touch",
        /// [`SessionManager::update`](crate::SessionManager::update).
        Update => "update",
        /// [`SessionManager::set_data`](crate::SessionManager::set_data).
        SetData => "set_data",
        /// [`SessionManager::increment`](crate::SessionManager::increment).
        Increment => "increment",
        /// [`SessionManager::append`](crate::SessionManager::append).
        Append => "append",
        /// [`SessionManager::rotate`](crate::SessionManager::rotate).
        Rotate => "rotate",
        /// [`SessionManager::apply_changes`](crate::SessionManager::apply_changes).
        ApplyChanges => "apply_changes",
        /// [`SessionManager::list_user`](crate::SessionManager::list_user).
        ListUser => "list_user",
        /// [`SessionManager::end_session_by_key`](crate::SessionManager::end_session_by_key).
        EndSessionByKey => "end_session_by_key",
        /// [`SessionManager::end_user`](crate::SessionManager::end_user).
        EndUser => "end_user",
        /// [`SessionManager::purge_expired`](crate::SessionManager::purge_expired).
        PurgeExpired => "purge_expired",
        /// [`SessionManager::count`](crate::SessionManager::count).
        Count => "count",
        /// [`SessionManager::hit_rate_limit`](crate::SessionManager::hit_rate_limit).
        HitRateLimit => "hit_rate_limit",
        /// [`SessionManager::export_page`](crate::SessionManager::export_page).
        Export => "export_page",
        /// [`SessionManager::import`](crate::SessionManager::import).
        Import => "import",
    }
);

named_enum!(
    /// Why sessions ended before their time.
    EndReason {
        /// Ended by their token ([`end`](crate::SessionManager::end)) or key
        /// ([`end_session_by_key`](crate::SessionManager::end_session_by_key)): a logout.
        Logout => "logout",
        /// Evicted by `max_sessions_per_user` to make room for a new one.
        Evicted => "evicted",
        /// Ended with the user's other sessions
        /// ([`end_user`](crate::SessionManager::end_user)).
        EndedWithUser => "ended_with_user",
    }
);

named_enum!(
    /// The kinds of error operations returned. "Not found" is an answer, not
    /// an error, and is not counted.
    ErrorKind {
        /// The store could not be reached ([`Error::Unavailable`]).
        Unavailable => "unavailable",
        /// The store failed otherwise ([`Error::Store`]).
        Store => "store",
        /// A write lost to another writer ([`Error::Conflict`], [`Error::KeyConflict`]).
        Conflict => "conflict",
        /// A user at `max_sessions_per_user` with rejection on, or a full memory store.
        Limit => "limit",
        /// Bad arguments or data from the caller.
        InvalidInput => "invalid_input",
        /// The manager was closed, or a wait was interrupted.
        Closed => "closed",
        /// A store written by a newer release.
        NewerSchema => "newer_schema",
    }
);

impl ErrorKind {
    /// The kind `error` counts as, `None` for "not found".
    pub fn of(error: &Error) -> Option<Self> {
        Some(match error {
            Error::NotFound => return None,
            Error::Unavailable(_) => Self::Unavailable,
            Error::Store(_) | Error::RotationTargetTaken => Self::Store,
            Error::Conflict { .. } | Error::KeyConflict { .. } => Self::Conflict,
            Error::UserLimitReached { .. } | Error::StoreFull { .. } => Self::Limit,
            Error::InvalidData { .. } | Error::InvalidArgument(_) => Self::InvalidInput,
            Error::Closed | Error::Interrupted => Self::Closed,
            Error::NewerSchema { .. } => Self::NewerSchema,
        })
    }
}

/// Upper bounds of the latency buckets, in nanoseconds: 1 µs to 10 s in
/// 1-2.5-5 steps (Prometheus' convention), then everything slower.
pub const LATENCY_BOUNDS_NS: [u64; 22] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

const BUCKETS: usize = LATENCY_BOUNDS_NS.len() + 1;

/// One operation's histogram; aligned so two never share a cache line.
#[repr(align(128))]
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

impl Histogram {
    fn record(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_NS.partition_point(|&bound| bound < ns);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    fn snapshot(&self) -> Latency {
        let buckets: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        Latency {
            count: buckets.iter().sum(),
            sum: Duration::from_nanos(self.sum_ns.load(Relaxed)),
            buckets,
        }
    }
}

/// The counters; apart from the histograms, as most calls touch only one of them.
#[repr(align(128))]
#[derive(Default)]
struct Counters {
    created: AtomicU64,
    ended: [AtomicU64; EndReason::ALL.len()],
    rotated: AtomicU64,
    expired: AtomicU64,
    retries: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

impl<S: SessionStore> SessionManager<S> {
    /// What this manager has counted since it opened, or `None` when
    /// [`ManagerConfig::metrics`](crate::ManagerConfig::metrics) is off.
    pub fn stats(&self) -> Option<StatsSnapshot> {
        let stats = self.stats.as_deref()?;
        Some(stats.snapshot(self.store().swept(), self.events.dropped()))
    }

    /// `work`, timed and counted as a call of `op`.
    pub(crate) async fn measured<T>(
        &self,
        op: Operation,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(stats) = self.stats.as_deref() else {
            return work.await;
        };
        let started = stats.timer.raw();
        let result = work.await;
        let elapsed = stats.timer.delta_as_nanos(started, stats.timer.raw());
        stats.finished(op, Duration::from_nanos(elapsed), &result);
        result
    }

    /// Counts something with `count` when metrics are on.
    pub(crate) fn note(&self, count: impl FnOnce(&Stats)) {
        if let Some(stats) = self.stats.as_deref() {
            count(stats);
        }
    }
}

/// A manager's live counters. Shared by its calls; read with [`Stats::snapshot`].
pub(crate) struct Stats {
    started: Instant,
    /// Times operations; calibrated when the manager opens, not on a call.
    timer: Clock,
    counters: Counters,
    latency: [Histogram; Operation::ALL.len()],
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            timer: Clock::new(),
            counters: Counters::default(),
            latency: Default::default(),
        }
    }

    /// Counts one finished call of `op` that took `elapsed`.
    pub(crate) fn finished<T>(&self, op: Operation, elapsed: Duration, result: &Result<T>) {
        self.latency[op as usize].record(elapsed);
        if let Err(error) = result
            && let Some(kind) = ErrorKind::of(error)
        {
            self.counters.errors[kind as usize].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn created(&self, evicted: u32) {
        self.counters.created.fetch_add(1, Relaxed);
        if evicted > 0 {
            self.ended(EndReason::Evicted, u64::from(evicted));
        }
    }

    pub(crate) fn ended(&self, reason: EndReason, count: u64) {
        self.counters.ended[reason as usize].fetch_add(count, Relaxed);
    }

    pub(crate) fn rotated(&self) {
        self.counters.rotated.fetch_add(1, Relaxed);
    }

    pub(crate) fn expired(&self, count: u64) {
        self.counters.expired.fetch_add(count, Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.counters.retries.fetch_add(1, Relaxed);
    }

    /// The figures now; `swept` adds what the store's own sweeper removed.
    pub(crate) fn snapshot(&self, swept: u64, events_dropped: u64) -> StatsSnapshot {
        let c = &self.counters;
        StatsSnapshot {
            uptime: self.started.elapsed(),
            created: c.created.load(Relaxed),
            ended: EndReason::ALL
                .iter()
                .map(|&r| (r, c.ended[r as usize].load(Relaxed)))
                .collect(),
            rotated: c.rotated.load(Relaxed),
            expired: c.expired.load(Relaxed) + swept,
            retries: c.retries.load(Relaxed),
            events_dropped,
            errors: ErrorKind::ALL
                .iter()
                .map(|&k| (k, c.errors[k as usize].load(Relaxed)))
                .collect(),
            latency: Operation::ALL
                .iter()
                .map(|&op| (op, self.latency[op as usize].snapshot()))
                .collect(),
        }
    }
}

/// A manager's figures at one moment, counted since it was opened (in a
/// `fork()` child: since the child's first call).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// How long the manager has been counting.
    pub uptime: Duration,
    /// Sessions created.
    pub created: u64,
    /// Sessions ended before their time, by reason (every reason listed).
    pub ended: Vec<(EndReason, u64)>,
    /// Sessions moved to a new token. A rotation ends no session: the
    /// session lives on under its new key.
    pub rotated: u64,
    /// Expired sessions removed: by [`purge_expired`](crate::SessionManager::purge_expired)
    /// and by the store's own sweeper in this process. Stores that let
    /// sessions lapse by themselves (Redis' key expiry) count only what purges removed.
    pub expired: u64,
    /// Compare-and-set writes tried again because another writer got there
    /// first (each one means a concurrent change was kept, not lost).
    pub retries: u64,
    /// Events not delivered because a subscriber's channel was full (see
    /// [`SessionManager::subscribe`](crate::SessionManager::subscribe)).
    pub events_dropped: u64,
    /// Errors operations returned, by kind (every kind listed).
    pub errors: Vec<(ErrorKind, u64)>,
    /// Each operation's latency (every operation listed).
    pub latency: Vec<(Operation, Latency)>,
}

impl StatsSnapshot {
    /// How many sessions ended for `reason`.
    pub fn ended(&self, reason: EndReason) -> u64 {
        self.ended
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |e| e.1)
    }

    /// How many errors of `kind` operations returned.
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |e| e.1)
    }

    /// The latency of `op`.
    pub fn latency(&self, op: Operation) -> &Latency {
        &self.latency[op as usize].1
    }
}

/// One operation's latency histogram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latency {
    /// Calls finished.
    pub count: u64,
    /// Their total time.
    pub sum: Duration,
    /// Calls per bucket (not cumulative): bucket `i` holds calls that took
    /// at most [`LATENCY_BOUNDS_NS`]`[i]` and more than the bound before;
    /// the last holds the slower ones.
    pub buckets: Vec<u64>,
}

impl Latency {
    /// The upper bound of the bucket holding the `q` quantile (`0.0..=1.0`),
    /// `None` without calls or when it falls past the last bound.
    pub fn quantile_bound(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LATENCY_BOUNDS_NS.get(i).map(|&ns| Duration::from_nanos(ns));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_the_bucket_of_their_bound() {
        let stats = Stats::new();
        let ok: Result<()> = Ok(());
        for micros in [0, 1, 2, 3, 2_000_000, 60_000_000] {
            stats.finished(Operation::Get, Duration::from_micros(micros), &ok);
        }
        let snap = stats.snapshot(0, 0);
        let get = snap.latency(Operation::Get);
        assert_eq!(get.count, 6);
        assert_eq!(get.sum, Duration::from_micros(62_000_006));
        assert_eq!(&get.buckets[..3], &[2, 1, 1], "≤1 µs, ≤2.5 µs, ≤5 µs");
        assert_eq!(get.buckets[19], 1, "2 s is in the ≤2.5 s bucket");
        assert_eq!(get.buckets[22], 1, "a minute is past every bound");
        assert_eq!(get.quantile_bound(0.3), Some(Duration::from_micros(1)));
        assert_eq!(get.quantile_bound(0.5), Some(Duration::from_nanos(2_500)));
        assert_eq!(get.quantile_bound(0.6), Some(Duration::from_micros(5)));
        assert_eq!(get.quantile_bound(1.0), None);
        assert_eq!(snap.latency(Operation::Create).quantile_bound(0.5), None);
    }

    #[test]
    fn errors_count_by_kind_and_not_found_is_not_one() {
        let stats = Stats::new();
        let took = Duration::from_micros(3);
        stats.finished::<()>(Operation::Get, took, &Err(Error::NotFound));
        stats.finished::<()>(Operation::Get, took, &Err(Error::Closed));
        let conflict = Error::Conflict {
            expected: 1,
            actual: 2,
        };
        stats.finished::<()>(Operation::SetData, took, &Err(conflict));
        let snap = stats.snapshot(5, 0);
        assert_eq!(snap.errors(ErrorKind::Closed), 1);
        assert_eq!(snap.errors(ErrorKind::Conflict), 1);
        assert_eq!(snap.errors.iter().map(|e| e.1).sum::<u64>(), 2);
        assert_eq!(snap.expired, 5, "the store's sweeps are added");
    }

    #[test]
    fn every_name_is_distinct_and_each_index_fits_its_array() {
        assert_eq!(Operation::ALL.len(), 20);
        assert_eq!(ErrorKind::ALL.len(), 7);
        assert_eq!(EndReason::ALL.len(), 3);
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
        }
        let mut names: Vec<_> = Operation::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
    }
}

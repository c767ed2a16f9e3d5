//! The store-conformance suite: one set of checks, written once, that every
//! [`SessionStore`] runs (memory, SQLite, Redis, PostgreSQL).
//!
//! Each `check_*` function takes a factory that builds a fresh, empty store
//! from a [`ManualClock`], drives a [`SessionManager`](crate::SessionManager)
//! (and, for the store contract itself, the [`SessionStore`] methods directly)
//! and panics with a message naming the broken rule. The clock given to the
//! factory is the one the manager reads, so checks move time by hand; a store
//! that needs a clock (a sweeper, a TTL) should use it too.
//!
//! Rules for the factory:
//! - every call returns an empty store, isolated from every other store it
//!   returned (checks run in parallel as separate tests and count sessions);
//! - the store must not remove records by itself while a check runs, except
//!   ones that are expired at the clock's time. Checks keep every timeout at
//!   minutes of manual-clock time, so a store that also sets real TTLs
//!   (relative to the manual clock) never loses a live record mid-check.
//!
//! A store's test file gets one `#[test]` per check from
//! [`conformance_tests!`](crate::conformance_tests), or calls [`run_all`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use sessionmanager_core::{ManualClock, MemoryStore, MemoryStoreConfig, conformance};
//!
//! fn memory_store(clock: ManualClock) -> MemoryStore {
//!     MemoryStore::open(MemoryStoreConfig {
//!         clock: Arc::new(clock),
//!         sweep_interval: None,
//!         ..Default::default()
//!     })
//!     .unwrap()
//! }
//!
//! conformance::run_all(memory_store);
//! ```

mod apply;
mod basics;
mod concurrency;
mod events;
mod expiry;
mod export;
mod helpers;
mod housekeeping;
mod rate_limit;
mod stats;
mod store_contract;
mod users;
mod writes;

pub use apply::check_apply_changes;
pub use basics::{check_bad_arguments, check_create_get_peek_end, check_malformed_tokens};
pub use concurrency::{check_concurrent_updates, check_concurrent_updates_sized};
pub use events::{
    check_events_name_what_happened, check_expired_sessions_calls_remove_are_reported,
    check_expiry_events,
};
pub use expiry::{
    check_absolute_cap, check_create_options, check_expiry_boundary, check_fixed_expiry,
    check_sliding_refresh_half_window, check_touch,
};
pub use export::check_export_import;
pub use housekeeping::{check_closed, check_purge_and_count};
pub use rate_limit::{
    check_rate_limit, check_rate_limit_across_skewed_clocks, check_store_rate_state,
};
pub use stats::check_stats_count_what_happened;
pub use store_contract::{
    check_store_create_key_taken, check_store_create_load, check_store_create_over_expired,
    check_store_delete_rotate, check_store_rotate_onto_taken_key, check_store_save_cas,
    check_store_touch, check_store_user_limit,
};
pub use users::{
    check_end_session_by_key, check_end_user, check_list_user, check_user_limit_counts_only_live,
    check_user_limit_evict_oldest, check_user_limit_reject,
};
pub use writes::{
    check_edits_match_their_definition, check_increment, check_rotate, check_set_data_cas,
    check_update_merges,
};

use crate::{ManualClock, SessionStore};

/// The idle timeout of every check's manager: ten minutes of manual-clock time.
pub const IDLE_MS: i64 = 600_000;

/// Runs every check, each on a fresh store built by `make_store` with a fresh
/// clock. The closed-store check runs last.
pub fn run_all<S: SessionStore>(make_store: impl Fn(ManualClock) -> S) {
    // The list of checks lives in `conformance_tests!`; `run_all` runs the
    // full-size `check_concurrent_updates` (8 threads x 500 rounds).
    crate::conformance_tests!(@list run make_store);
}

/// Defines one `#[test]` per conformance check, each running the check on
/// stores built by `$make_store` (an expression usable as
/// `impl Fn(ManualClock) -> S`, such as a function's name).
///
/// The `check_concurrent_updates` test runs
/// [`check_concurrent_updates_sized`](crate::conformance::check_concurrent_updates_sized)
/// with 8 threads x 100 rounds, which keeps an unoptimized build's test run
/// to a few seconds; [`run_all`](crate::conformance::run_all) runs the full
/// 8 x 500 of [`check_concurrent_updates`](crate::conformance::check_concurrent_updates).
///
/// ```no_run
/// use std::sync::Arc;
/// use sessionmanager_core::{ManualClock, MemoryStore, MemoryStoreConfig};
///
/// fn memory_store(clock: ManualClock) -> MemoryStore {
///     MemoryStore::open(MemoryStoreConfig {
///         clock: Arc::new(clock),
///         sweep_interval: None,
///         ..Default::default()
///     })
///     .unwrap()
/// }
///
/// sessionmanager_core::conformance_tests!(memory_store);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make_store:expr) => {
        $crate::conformance_tests!(@list each $make_store);
    };
    // The one list of every check, in run order (the closed-store check
    // last), handed to `@each` (one test per check) or `@run` (`run_all`).
    (@list $then:ident $make_store:expr) => {
        $crate::conformance_tests!(
            @$then $make_store;
            check_create_get_peek_end,
            check_malformed_tokens,
            check_bad_arguments,
            check_expiry_boundary,
            check_sliding_refresh_half_window,
            check_touch,
            check_fixed_expiry,
            check_absolute_cap,
            check_create_options,
            check_update_merges,
            check_set_data_cas,
            check_apply_changes,
            check_increment,
            check_edits_match_their_definition,
            check_rotate,
            check_list_user,
            check_end_user,
            check_end_session_by_key,
            check_user_limit_evict_oldest,
            check_user_limit_reject,
            check_user_limit_counts_only_live,
            check_purge_and_count,
            check_stats_count_what_happened,
            check_export_import,
            check_events_name_what_happened,
            check_expiry_events,
            check_expired_sessions_calls_remove_are_reported,
            check_store_create_load,
            check_store_create_key_taken,
            check_store_create_over_expired,
            check_store_user_limit,
            check_store_save_cas,
            check_store_touch,
            check_store_delete_rotate,
            check_store_rotate_onto_taken_key,
            check_concurrent_updates,
            check_rate_limit,
            check_store_rate_state,
            check_closed,
        );
    };
    (@each $make_store:expr; $($check:ident),* $(,)?) => {
        $( $crate::conformance_tests!(@test $make_store; $check); )*
    };
    (@test $make_store:expr; check_concurrent_updates) => {
        #[test]
        fn check_concurrent_updates() {
            $crate::conformance::check_concurrent_updates_sized($make_store, 8, 100);
        }
    };
    (@test $make_store:expr; $check:ident) => {
        #[test]
        fn $check() {
            $crate::conformance::$check($make_store);
        }
    };
    (@run $make_store:expr; $($check:ident),* $(,)?) => {
        $( $crate::conformance::$check(&$make_store); )*
    };
}

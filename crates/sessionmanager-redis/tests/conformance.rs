//! The shared store-conformance suite, run against a real redis-server, each
//! check on its own key prefix of one throwaway server.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessionmanager_core::ManualClock;
use sessionmanager_redis::{RedisConfig, RedisStore};

/// A store on a prefix of its own, swept only by the checks.
fn redis_store(clock: ManualClock) -> RedisStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut config = config_at(&format!(
        "conformance-{}:",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    config.clock = Arc::new(clock);
    config.sweep_interval = None;
    RedisStore::open(config).expect("the store opens")
}

fn config_at(prefix: &str) -> RedisConfig {
    let mut config = RedisConfig::new("127.0.0.1", support::shared().port);
    config.prefix = prefix.to_owned();
    config
}

fn open_at(prefix: &str) -> RedisStore {
    RedisStore::open(config_at(prefix)).expect("the store opens")
}

sessionmanager_core::conformance_tests!(redis_store);

#[test]
fn rate_limits_decide_by_the_servers_clock() {
    let (first, second) = (open_at("skewed:"), open_at("skewed:"));
    sessionmanager_core::conformance::check_rate_limit_across_skewed_clocks(first, second);
}

//! The shared store-conformance suite, run against a real redis-server, each
//! check on its own key prefix of one throwaway server.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use sessionmanager_core::ManualClock;
use sessionmanager_redis::{RedisConfig, RedisStore};

fn redis_store(_clock: ManualClock) -> RedisStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = support::shared();
    let mut config = RedisConfig::new("127.0.0.1", server.port);
    config.prefix = format!("conformance-{}:", NEXT.fetch_add(1, Ordering::Relaxed));
    RedisStore::open(config).expect("the store opens")
}

sessionmanager_core::conformance_tests!(redis_store);

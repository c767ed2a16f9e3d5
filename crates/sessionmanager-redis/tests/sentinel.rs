//! The shared store-conformance suite through Redis Sentinel: the store asks
//! three real sentinels where the master is, each check on its own prefix.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use sessionmanager_core::{Error, ManualClock};
use sessionmanager_redis::{RedisConfig, RedisStore};

fn sentinel_store(_clock: ManualClock) -> RedisStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!("?prefix=sentinel-{}:", NEXT.fetch_add(1, Ordering::Relaxed));
    RedisStore::open_url(&support::sentinel::shared().url(&prefix)).expect("the store opens")
}

sessionmanager_core::conformance_tests!(sentinel_store);

#[test]
fn an_unknown_service_is_named_in_the_error() {
    let topology = support::sentinel::shared();
    let url = topology.url("").replace("/sessions/", "/no-such-master/");
    let err = RedisStore::open_url(&url).expect_err("no such master");
    let Error::Store(cause) = &err else {
        panic!("a store error, not {err:?}");
    };
    let message = cause.to_string();
    assert!(
        message.contains("knows no master \"no-such-master\""),
        "{message}"
    );
    assert!(message.contains("service name"), "{message}");
}

#[test]
fn sentinels_that_are_all_down_make_the_store_unavailable() {
    let mut config = RedisConfig::from_url("redis+sentinel://127.0.0.1:1,127.0.0.1:2/m").unwrap();
    config.timeout = std::time::Duration::from_millis(300);
    let err = RedisStore::open(config).expect_err("nothing listens");
    let Error::Unavailable(cause) = &err else {
        panic!("unavailable, not {err:?}");
    };
    let message = cause.to_string();
    assert!(message.contains("no sentinel named a master"), "{message}");
    assert!(
        message.contains("127.0.0.1:1") && message.contains("127.0.0.1:2"),
        "{message}"
    );
}

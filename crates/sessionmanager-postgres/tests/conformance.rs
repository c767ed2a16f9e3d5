//! The shared store-conformance suite against a real PostgreSQL server (one
//! per test process), each store in a schema of its own (the connections'
//! `search_path`).

mod support;

use std::sync::Arc;

use sessionmanager_core::ManualClock;
use sessionmanager_postgres::{PostgresConfig, PostgresStore};

/// A store on a fresh, empty schema, swept only by the checks.
fn postgres_store(clock: ManualClock) -> PostgresStore {
    let server = support::server();
    let url = server.fresh_schema_url("sweep_interval_ms=0");
    let config = PostgresConfig {
        clock: Arc::new(clock),
        ..PostgresConfig::from_url(&url).expect("a valid URL")
    };
    PostgresStore::open(config).expect("a new schema opens")
}

sessionmanager_core::conformance_tests!(postgres_store);

#[test]
fn rate_limits_decide_by_the_servers_clock() {
    let url = support::server().fresh_schema_url("sweep_interval_ms=0");
    let open = || PostgresStore::open(PostgresConfig::from_url(&url).expect("a valid URL"));
    let (first, second) = (open().expect("opens"), open().expect("opens again"));
    sessionmanager_core::conformance::check_rate_limit_across_skewed_clocks(first, second);
}

//! The store on a real Redis Cluster (3 masters, 3 replicas on loopback):
//! the shared conformance suite, every check on its own prefix, and the
//! settings and faults a cluster adds.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use sessionmanager_core::{
    Clock, Error, ManagerConfig, ManualClock, SessionData, SessionManager, SessionStore, block_on,
};
use sessionmanager_redis::{Address, RedisConfig, RedisStore};

/// A store on a prefix of its own, swept only by the checks.
fn cluster_store(clock: ManualClock) -> RedisStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!("cluster-{}:", NEXT.fetch_add(1, Ordering::Relaxed));
    let mut config = RedisConfig::from_url(&support::cluster::shared().url(&prefix)).unwrap();
    config.clock = std::sync::Arc::new(clock);
    config.sweep_interval = None;
    RedisStore::open(config).expect("the cluster store opens")
}

fn open_at(prefix: &str) -> RedisStore {
    RedisStore::open_url(&support::cluster::shared().url(prefix)).expect("the cluster store opens")
}

sessionmanager_core::conformance_tests!(cluster_store);

#[test]
fn rate_limits_decide_by_the_servers_clock() {
    let (first, second) = (open_at("skewed:"), open_at("skewed:"));
    sessionmanager_core::conformance::check_rate_limit_across_skewed_clocks(first, second);
}

#[test]
fn sessions_spread_over_every_master() {
    let cluster = support::cluster::shared();
    let manager = SessionManager::new(open_at("spread:"), ManagerConfig::default());
    for n in 0..60 {
        let user = format!("user-{n}");
        block_on(manager.create(&user, SessionData::empty(), Default::default())).unwrap();
    }
    for master in cluster.masters() {
        let keys: Vec<String> = support::cluster::command(master, &["KEYS", "spread:s:*"]).unwrap();
        assert!(!keys.is_empty(), "master {master} holds some sessions");
    }
    assert_eq!(block_on(manager.count()).unwrap(), 60);
}

#[test]
fn a_prefix_with_braces_is_refused() {
    let cluster = support::cluster::shared();
    for prefix in ["app{", "{app}:", "a}"] {
        let err = RedisStore::open_url(&cluster.url(prefix)).expect_err(prefix);
        let Error::InvalidArgument(message) = &err else {
            panic!("{prefix}: {err:?}");
        };
        assert!(message.contains("hash tag"), "{message}");
    }
}

#[test]
fn user_ids_with_braces_and_colons_stay_in_their_users_bucket() {
    let manager = SessionManager::new(open_at("odd-users:"), ManagerConfig::default());
    for user in ["{a}", "a}b{", "x:y", "{", "}"] {
        let token =
            block_on(manager.create(user, SessionData::empty(), Default::default())).expect(user);
        assert_eq!(
            &*block_on(manager.get(token.as_str()))
                .unwrap()
                .record
                .user_id,
            user
        );
        let listed = block_on(
            manager
                .store()
                .list_user(user, sessionmanager_core::SystemClock.now()),
        );
        assert_eq!(listed.unwrap().len(), 1, "{user}");
        assert_eq!(block_on(manager.end_user(user, None)).unwrap(), 1);
    }
}

#[test]
fn seeds_that_do_not_answer_are_named() {
    let dead = support::free_port();
    let mut config = RedisConfig::cluster(vec![Address::new("127.0.0.1", dead)]);
    config.timeout = std::time::Duration::from_millis(500);
    let err = RedisStore::open(config).expect_err("nobody answers");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{dead}")), "{message}");
}

#[test]
fn a_server_not_in_cluster_mode_is_named() {
    let server = support::shared();
    let url = format!("redis+cluster://127.0.0.1:{}", server.port);
    let err = RedisStore::open_url(&url).expect_err("not a cluster");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(err.to_string().contains("not in cluster mode"), "{err}");
}

#[test]
fn writes_wait_for_the_replica_of_their_master() {
    let url = format!(
        "{}&wait_replicas=1",
        support::cluster::shared().url("replicated:")
    );
    let manager = SessionManager::new(
        RedisStore::open_url(&url).unwrap(),
        ManagerConfig::default(),
    );
    for n in 0..20 {
        let token =
            block_on(manager.create(&format!("r{n}"), SessionData::empty(), Default::default()))
                .expect("each master's replica acknowledges");
        block_on(manager.rotate(token.as_str())).expect("a rotation too");
    }
    assert_eq!(block_on(manager.count()).unwrap(), 20);
}

#[test]
fn credentials_the_cluster_refuses_are_named() {
    let url = support::cluster::shared()
        .url("auth:")
        .replace("redis+cluster://", "redis+cluster://:hunter2@");
    let err = RedisStore::open_url(&url).expect_err("no password is configured");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("password") && !message.contains("hunter2"),
        "{message}"
    );
}

#[test]
fn a_cluster_over_tls_serves_every_session_and_refuses_an_unknown_ca() {
    let folder = std::env::temp_dir().join(format!("cluster-pki-{}", std::process::id()));
    let pki = support::pki::Pki::make(&folder);
    let cluster = support::cluster::Cluster::start_tls(&pki);
    let url = cluster.tls_url("tls:", &pki.ca);
    let manager = SessionManager::new(
        RedisStore::open_url(&url).unwrap(),
        ManagerConfig::default(),
    );
    for n in 0..30 {
        let token =
            block_on(manager.create(&format!("t{n}"), SessionData::empty(), Default::default()))
                .expect("a session is created over TLS");
        assert!(block_on(manager.is_active(token.as_str())).unwrap());
    }
    // Every master holds some: the store reached each over the TLS port it was told.
    for master in cluster.masters() {
        let keys: Vec<String> = support::cluster::command(master, &["KEYS", "tls:s:*"]).unwrap();
        assert!(!keys.is_empty(), "master {master} holds sessions");
    }
    let other = url.replace(
        &pki.ca.display().to_string(),
        &pki.other_ca.display().to_string(),
    );
    let err = RedisStore::open_url(&other).expect_err("a certificate of another CA");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(err.to_string().contains("not signed by a CA"), "{err}");
    let _ = std::fs::remove_dir_all(&folder);
}

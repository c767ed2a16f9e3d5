//! The cluster store through the cluster's own operations, under traffic:
//! resharding, a graceful failover, a master killed, a master that stops
//! answering, and slots left without a master. Each test runs its own cluster (3 masters, 3
//! replicas), since each changes its topology.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sessionmanager_core::{
    CreateOptions, DataLimits, Error, ManagerConfig, SessionData, SessionManager, block_on,
};
use sessionmanager_redis::RedisStore;
use support::cluster::Cluster;

type Manager = SessionManager<RedisStore>;

/// Threads that write while the cluster changes.
const WRITERS: usize = 8;

/// One test at a time: each runs six servers and eight writers, and
/// together they would starve one another on a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn manager(cluster: &Cluster, options: &str) -> Arc<Manager> {
    let url = format!("{}{options}", cluster.url("faults:"));
    let store = RedisStore::open_url(&url).expect("the cluster store opens");
    Arc::new(SessionManager::new(store, ManagerConfig::default()))
}

/// The counter `n` a session's data holds.
fn counter(session: &sessionmanager_core::Session) -> Option<i64> {
    session.record.data.to_map().get("n")?.as_i64()
}

/// 60 sessions of users `<prefix>0`… holding `json`: their tokens.
fn sessions(manager: &Manager, prefix: &str, json: &str) -> Vec<String> {
    let data = SessionData::from_json_str(json, &DataLimits::default()).unwrap();
    (0..60)
        .map(|n| {
            let user = format!("{prefix}{n}");
            let token = block_on(manager.create(&user, data.clone(), CreateOptions::default()));
            token.unwrap().into_string()
        })
        .collect()
}

/// What one writer acknowledged: each session's token and the counter the
/// session must hold.
type Acknowledged = Vec<(String, i64)>;

/// Starts `WRITERS` threads that create sessions (each its own user, so
/// every bucket gets some), increment, merge and read them until `stop`,
/// recording what was acknowledged and every error.
fn traffic(
    manager: &Arc<Manager>,
    stop: &Arc<AtomicBool>,
    errors: &Arc<Mutex<Vec<String>>>,
) -> Vec<JoinHandle<Acknowledged>> {
    (0..WRITERS)
        .map(|k| {
            let (manager, stop, errors) = (manager.clone(), stop.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut done: Acknowledged = Vec::new();
                let limits = DataLimits::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut step = || -> Result<(), Error> {
                        let user = format!("w{k}-{n}");
                        let data = SessionData::from_json_str(r#"{"n":0}"#, &limits)?;
                        let token =
                            block_on(manager.create(&user, data, CreateOptions::default()))?;
                        done.push((token.as_str().to_owned(), 0));
                        // Earlier sessions too, so slots that moved meanwhile are written.
                        let pick = n % done.len();
                        let (token, count) = &mut done[pick];
                        let value = block_on(manager.increment(token, "n", 1))?;
                        *count += 1;
                        assert_eq!(value, *count, "an increment lost or doubled");
                        let patch =
                            SessionData::from_json_str(&format!(r#"{{"last":{n}}}"#), &limits)?;
                        block_on(manager.update(token, &patch))?;
                        let read = block_on(manager.get(token))?;
                        assert_eq!(counter(&read), Some(*count));
                        Ok(())
                    };
                    if let Err(err) = step() {
                        errors.lock().unwrap().push(format!("writer {k}: {err}"));
                    }
                }
                done
            })
        })
        .collect()
}

/// Runs traffic while `change` runs, then checks that no call failed and
/// every acknowledged write is there.
fn under_traffic(cluster: &Cluster, manager: &Arc<Manager>, change: impl FnOnce(&Cluster)) {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let writers = traffic(manager, &stop, &errors);
    std::thread::sleep(Duration::from_millis(300));
    change(cluster);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<(String, i64)> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("a writer panicked"))
        .collect();
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} calls failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        acknowledged.len() > 100,
        "traffic ran: {} sessions",
        acknowledged.len()
    );
    for (token, count) in &acknowledged {
        let session = block_on(manager.get(token)).expect("every acknowledged session is there");
        assert_eq!(counter(&session), Some(*count), "no update is lost");
    }
    assert_eq!(
        block_on(manager.count()).unwrap(),
        acknowledged.len() as u64
    );
}

#[test]
fn resharding_under_traffic_loses_nothing_and_surfaces_no_error() {
    let _alone = one_at_a_time();
    let cluster = Cluster::start();
    let manager = manager(&cluster, "");
    under_traffic(&cluster, &manager, |cluster| {
        let masters = cluster.masters();
        cluster.reshard(masters[0], masters[1], 1500);
        cluster.reshard(masters[2], masters[0], 1500);
    });
}

#[test]
fn a_graceful_failover_under_traffic_loses_nothing_and_surfaces_no_error() {
    let _alone = one_at_a_time();
    let cluster = Cluster::start();
    let manager = manager(&cluster, "");
    under_traffic(&cluster, &manager, |cluster| {
        let replica = cluster.replicas_of(cluster.masters()[0])[0];
        cluster.failover(replica);
    });
}

#[test]
fn a_killed_master_makes_its_slots_unavailable_until_its_replica_takes_over() {
    let _alone = one_at_a_time();
    let cluster = Cluster::start();
    // Every session on a replica before the kill (wait_replicas): what the
    // promoted replica lacks would be the asynchronous replication's loss,
    // which the README describes, not the store's.
    let manager = manager(&cluster, "&timeout_ms=1000&wait_replicas=1");
    let limits = DataLimits::default();
    let data = || SessionData::from_json_str(r#"{"n":1}"#, &limits).unwrap();
    let tokens = sessions(&manager, "k", r#"{"n":1}"#);
    let victim = cluster.masters()[0];
    cluster.kill(victim);
    // Calls on its slots fail within the timeout, as unavailable; the
    // others keep working.
    let (mut failed, mut served) = (0, 0);
    for token in &tokens {
        let started = Instant::now();
        match block_on(manager.get(token)) {
            Ok(_) => served += 1,
            Err(Error::Unavailable(_)) => {
                failed += 1;
                assert!(
                    started.elapsed() < Duration::from_millis(2_500),
                    "{:?}",
                    started.elapsed()
                );
            }
            Err(other) => panic!("a call failed otherwise: {other}"),
        }
        if failed > 2 {
            break;
        }
    }
    assert!(failed > 0 && served > 0, "failed {failed}, served {served}");
    // Its replica takes over (cluster-node-timeout is a second); the same
    // manager then serves every session again.
    cluster.wait_ok();
    for token in &tokens {
        let session = block_on(manager.get(token)).expect("served by the promoted replica");
        assert_eq!(counter(&session), Some(1));
    }
    // The promoted master has no replica until the killed node comes back
    // as one: a write waiting for a replica says so, and goes through after.
    let err = block_on(manager.create("lonely", data(), Default::default()));
    let lonely =
        matches!(&err, Err(Error::Unavailable(m)) if m.to_string().contains("wait_replicas"));
    cluster.restart(victim);
    cluster.wait_ok();
    // (Its replica may still be catching up: a few tries.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = loop {
        match block_on(manager.create("after", data(), Default::default())) {
            Err(Error::Unavailable(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            done => break done.expect("a replica acknowledges again"),
        }
    };
    assert!(block_on(manager.is_active(token.as_str())).unwrap());
    assert!(lonely || err.is_ok(), "{err:?}");
}

/// The master that serves the session of `token`.
fn master_of_token(cluster: &Cluster, token: &str) -> u16 {
    let key = sessionmanager_core::SessionKey::for_token_text(token).expect("a token");
    let bucket = key.route() % 1024;
    cluster.master_of_key(&format!("{{{bucket}}}"))
}

#[test]
fn a_master_that_stops_answering_holds_up_only_its_own_slots() {
    let _alone = one_at_a_time();
    let cluster = Cluster::start();
    let manager = manager(&cluster, "&timeout_ms=300");
    let tokens = sessions(&manager, "s", "{}");
    // Each master in turn, whichever the router would ask first for a map.
    for sleeper in cluster.masters() {
        let (asleep, awake): (Vec<&String>, Vec<&String>) = tokens
            .iter()
            .partition(|token| master_of_token(&cluster, token) == sleeper);
        assert!(
            !asleep.is_empty() && awake.len() >= 10,
            "sessions on every master"
        );
        let pid = support::cluster::info_field::<u32>(sleeper, "server", "process_id")
            .expect("INFO names the process")
            .to_string();
        let signal = move |name: &str| {
            let sent = std::process::Command::new("kill")
                .args([name, pid.as_str()])
                .status();
            assert!(sent.expect("kill runs").success());
        };
        // It stops for less than cluster-node-timeout (a second): slow, not
        // failed, so no replica takes over.
        signal("-STOP");
        let started = Instant::now();
        let slow = block_on(manager.get(asleep[0]));
        assert!(matches!(slow, Err(Error::Unavailable(_))), "{slow:?}");
        // The router reads the map again, from a master that answers, and
        // serves the other slots at once.
        for token in &awake[..10] {
            let call = Instant::now();
            let served = block_on(manager.get(token));
            let took = call.elapsed();
            assert!(served.is_ok(), "master {sleeper} asleep: {served:?}");
            assert!(took < Duration::from_millis(250), "{took:?}");
        }
        let paused = started.elapsed();
        signal("-CONT");
        assert!(
            paused < Duration::from_millis(900),
            "{paused:?}: the test took too long"
        );
        for token in &tokens {
            block_on(manager.get(token)).expect("the sleeper answers again");
        }
    }
}

#[test]
fn slots_no_master_serves_are_named_when_the_store_opens() {
    let _alone = one_at_a_time();
    let cluster = Cluster::start();
    // Every node forgets the slots (as an operator unassigns them).
    for node in &cluster.nodes {
        support::cluster::command::<()>(node.port, &["CLUSTER", "DELSLOTSRANGE", "0", "9"])
            .unwrap();
    }
    let err = RedisStore::open_url(&cluster.url("uncovered:")).expect_err("slots 0-9 unserved");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("no master for slots 0-9"), "{err}");
}

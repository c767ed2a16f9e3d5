//! `wait_replicas`: a write returns once that many replicas have it, and
//! fails, saying so, when they do not acknowledge it in time.

mod support;

use std::time::{Duration, Instant};

use sessionmanager_core::{Error, ManagerConfig, SessionData, SessionManager, block_on};
use sessionmanager_redis::RedisStore;

/// Runs `words` on the server at `port`.
fn command(port: u16, words: &[&str]) {
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .expect("a raw connection");
    cmd.query::<redis::Value>(&mut conn)
        .expect("the command runs");
}

/// Waits until `replicas` replicas of the master at `master` acknowledge a
/// fresh write. Their `INFO` offsets are no proof: right after a full sync a
/// replica shows the master's offset before it has sent its first ACK, and
/// the master holds back its stream (and so `WAIT`'s GETACK) until then.
fn wait_for_replicas(master: u16, replicas: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{master}/"))
        .and_then(|c| c.get_connection())
        .unwrap();
    loop {
        // `WAIT` counts acknowledgements of this connection's last write.
        redis::cmd("INCR")
            .arg("replicas-test-probe")
            .query::<i64>(&mut conn)
            .unwrap();
        let acked: usize = redis::cmd("WAIT")
            .arg(replicas)
            .arg(1_000)
            .query(&mut conn)
            .unwrap();
        if acked >= replicas {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{replicas} replicas never acknowledged a WAIT; {acked} did"
        );
    }
}

#[test]
fn writes_wait_for_a_replica_and_fail_saying_so_without_one() {
    // No wait for more replicas before a full sync starts.
    let master =
        support::Server::start_with(|_| vec!["--repl-diskless-sync-delay".into(), "0".into()]);
    let replica = support::Server::start_with({
        let port = master.port.to_string();
        move |_| vec!["--replicaof".into(), "127.0.0.1".into(), port]
    });
    wait_for_replicas(master.port, 1);
    let url = format!(
        "redis://127.0.0.1:{}/0?wait_replicas=1&timeout_ms=1000",
        master.port
    );
    let manager = SessionManager::new(
        RedisStore::open_url(&url).unwrap(),
        ManagerConfig::default(),
    );
    let limits = Default::default();
    let data = SessionData::from_json_str(r#"{"n":1}"#, &limits).unwrap();
    let token = block_on(manager.create("alice", data.clone(), Default::default())).unwrap();
    assert_eq!(
        block_on(manager.increment(token.as_str(), "n", 1)).unwrap(),
        2
    );

    // The replica leaves: a write still reaches the master, but fails within
    // the timeout, saying that no replica has it.
    command(replica.port, &["REPLICAOF", "NO", "ONE"]);
    let started = Instant::now();
    let err = block_on(manager.increment(token.as_str(), "n", 1)).expect_err("no replica");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("0 of the 1 replicas") && message.contains("wait_replicas"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    let read = block_on(manager.get(token.as_str())).expect("reads need no replica");
    assert_eq!(
        read.record.data.as_json(),
        r#"{"n":3}"#,
        "the master has the write"
    );

    // Back in sync, writes go through again with the same manager.
    command(
        replica.port,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    );
    wait_for_replicas(master.port, 1);
    assert_eq!(
        block_on(manager.increment(token.as_str(), "n", 1)).unwrap(),
        4
    );
    block_on(manager.end(token.as_str())).unwrap();
}

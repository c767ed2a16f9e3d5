//! What the store keeps in Redis: key names, TTLs, and indexes that stay
//! bounded. Checked by reading the server directly.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis::Commands;
use sessionmanager_core::{
    Clock, CreateOutcome, DataLimits, EditOutcome, MemberEdit, SessionData, SessionKey,
    SessionRecord, SessionStore, SystemClock, Timestamp, UserLimit, block_on,
};
use sessionmanager_redis::{RedisConfig, RedisStore};

fn prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("layout-{}:", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn open(prefix: &str) -> RedisStore {
    let mut config = RedisConfig::new("127.0.0.1", common::shared().port);
    config.prefix = prefix.to_owned();
    RedisStore::open(config).expect("the store opens")
}

fn raw() -> redis::Connection {
    redis::Client::open(common::shared().url("/0"))
        .and_then(|c| c.get_connection())
        .expect("a raw connection")
}

/// A record for `user` created at `now` that expires `ttl_ms` later.
fn record(user: &str, now: Timestamp, ttl_ms: i64) -> SessionRecord {
    SessionRecord {
        user_id: Arc::from(user),
        data: SessionData::empty(),
        version: 1,
        created_at: now,
        last_active: now,
        expires_at: now.plus_millis(ttl_ms),
        idle_timeout_ms: ttl_ms,
        sliding: true,
        absolute_expires_at: None,
    }
}

fn key(n: u32) -> SessionKey {
    SessionKey::of(&format!("token-{n}-{}", std::process::id()))
}

fn create(store: &RedisStore, key: &SessionKey, record: &SessionRecord, now: Timestamp) {
    let outcome = block_on(store.create(key, record, None, now)).expect("create");
    assert_eq!(outcome, CreateOutcome::Created { evicted: 0 });
}

fn pexpiretime(r: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query(r)
        .expect("PEXPIRETIME")
}

#[test]
fn records_are_hashes_under_the_prefix_that_redis_expires_at_expires_at() {
    let p = prefix();
    let store = open(&p);
    let now = SystemClock.now();
    let k = key(1);
    let rec = record("alice", now, 60_000);
    create(&store, &k, &rec, now);
    let mut r = raw();
    let name = format!("{p}s:{}", k.to_hex());
    assert_eq!(pexpiretime(&mut r, &name), rec.expires_at.millis());
    assert_eq!(
        pexpiretime(&mut r, &format!("{p}u:alice")),
        rec.expires_at.millis()
    );
    let user: String = r.hget(&name, "u").unwrap();
    assert_eq!(user, "alice");

    // Activity moves the TTL forward; a touch into the past moves nothing back.
    let later = now.plus_millis(30_000);
    assert!(block_on(store.touch(&k, later, later.plus_millis(60_000), now)).unwrap());
    assert_eq!(
        pexpiretime(&mut r, &name),
        later.plus_millis(60_000).millis()
    );
    assert!(block_on(store.touch(&k, now, now.plus_millis(1), now)).unwrap());
    assert_eq!(
        pexpiretime(&mut r, &name),
        later.plus_millis(60_000).millis()
    );
    let score: f64 = r.zscore(format!("{p}expiry"), k.to_hex()).unwrap();
    assert_eq!(score as i64, later.plus_millis(60_000).millis());
}

#[test]
fn the_user_index_is_trimmed_by_writes_and_lives_as_long_as_its_last_session() {
    let p = prefix();
    let store = open(&p);
    let now = SystemClock.now();
    let index = format!("{p}u:alice");
    for n in 0..10 {
        create(&store, &key(100 + n), &record("alice", now, 5_000), now);
    }
    let long = record("alice", now, 600_000);
    create(&store, &key(200), &long, now);
    let mut r = raw();
    assert_eq!(r.zcard::<_, u64>(&index).unwrap(), 11);
    assert_eq!(pexpiretime(&mut r, &index), long.expires_at.millis());

    // Later, by the store's clock, the short ones have expired; the next
    // write for the user trims them from its index.
    let later = now.plus_millis(6_000);
    create(&store, &key(201), &record("alice", later, 600_000), later);
    let members: Vec<String> = r.zrange(&index, 0, -1).unwrap();
    assert_eq!(members, vec![key(200).to_hex(), key(201).to_hex()]);
    let trimmed: bool = r.exists(format!("{p}s:{}", key(100).to_hex())).unwrap();
    assert!(
        !trimmed,
        "a trimmed session's record goes with its index entry"
    );

    // A write that moves a session's expiry trims its user's index too.
    for n in 0..3 {
        create(&store, &key(210 + n), &record("carol", later, 1_000), later);
    }
    let kept = key(213);
    create(&store, &kept, &record("carol", later, 600_000), later);
    let latest = later.plus_millis(2_000);
    assert!(block_on(store.touch(&kept, latest, latest.plus_millis(600_000), latest)).unwrap());
    let members: Vec<String> = r.zrange(format!("{p}u:carol"), 0, -1).unwrap();
    assert_eq!(members, vec![kept.to_hex()]);
}

#[test]
fn creates_sweep_the_expiry_index_and_purge_empties_it() {
    let p = prefix();
    let store = open(&p);
    let now = SystemClock.now();
    let mut r = raw();
    let expiry = format!("{p}expiry");
    for n in 0..40 {
        create(
            &store,
            &key(300 + n),
            &record(&format!("u{n}"), now, 5_000),
            now,
        );
    }
    assert_eq!(r.zcard::<_, u64>(&expiry).unwrap(), 40);
    let later = now.plus_millis(6_000);
    for n in 0..3 {
        create(&store, &key(400 + n), &record("v", later, 600_000), later);
    }
    // Each create cleared up to 8 expired sessions: 24 of the 40.
    assert_eq!(r.zcard::<_, u64>(&expiry).unwrap(), 40 - 24 + 3);
    assert_eq!(block_on(store.purge_expired(later)).unwrap(), 16);
    assert_eq!(r.zcard::<_, u64>(&expiry).unwrap(), 3);
    assert_eq!(block_on(store.count(later)).unwrap(), 3);
    let left: bool = r.exists(format!("{p}s:{}", key(300).to_hex())).unwrap();
    assert!(
        !left,
        "swept records are gone, not only their index entries"
    );
}

#[test]
fn a_limit_counts_only_sessions_that_still_exist() {
    let p = prefix();
    let store = open(&p);
    let now = SystemClock.now();
    for n in 0..2 {
        create(&store, &key(500 + n), &record("bob", now, 600_000), now);
    }
    // One of bob's records vanishes behind the store's back (an operator's
    // DEL, an eviction under maxmemory): the limit must not count it.
    let mut r = raw();
    let _: i64 = r.del(format!("{p}s:{}", key(500).to_hex())).unwrap();
    let limit = UserLimit {
        max_sessions: 2,
        evict_oldest: false,
    };
    let outcome = block_on(store.create(&key(502), &record("bob", now, 600_000), Some(limit), now));
    assert_eq!(outcome.unwrap(), CreateOutcome::Created { evicted: 0 });
}

#[test]
fn opening_loads_all_nine_scripts() {
    // A server of its own, which no other test loads scripts into.
    let server = common::Server::start();
    let url = server.url("/0");
    let mut r = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("a raw connection");
    let cached = |r: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("memory").query(r).expect("INFO");
        info.lines()
            .find_map(|line| line.strip_prefix("number_of_cached_scripts:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("INFO memory names number_of_cached_scripts")
    };
    assert_eq!(cached(&mut r), 0);
    let _store = RedisStore::open_url(&url).expect("the store opens");
    assert_eq!(
        cached(&mut r),
        9,
        "open loaded every script, before any was called"
    );
}

/// Calls of each command the server has run since its statistics were reset.
fn command_calls(r: &mut redis::Connection) -> std::collections::HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(r)
        .expect("INFO");
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter_map(|line| {
            let (name, stats) = line.split_once(':')?;
            let calls = stats.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

#[test]
fn update_increment_and_append_are_one_script_call_each() {
    // A server of its own: the call counts are the server's, not per client.
    let server = common::Server::start();
    let url = server.url("/0");
    let manager = sessionmanager_core::SessionManager::new(
        RedisStore::open_url(&url).expect("the store opens"),
        sessionmanager_core::ManagerConfig::default(),
    );
    let limits = Default::default();
    let token = block_on(manager.create(
        "alice",
        SessionData::from_json_str(r#"{"cart":["tea"]}"#, &limits).unwrap(),
        Default::default(),
    ))
    .expect("create");
    let mut r = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("a raw connection");
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut r)
        .expect("CONFIG RESETSTAT");
    let patch = SessionData::from_json_str(r#"{"cart":["tea","mug"]}"#, &limits).unwrap();
    block_on(manager.update(token.as_str(), &patch)).expect("update");
    assert_eq!(
        block_on(manager.increment(token.as_str(), "visits", 2)).expect("increment"),
        2
    );
    let mug = serde_json::json!({"sku": "mug"});
    assert_eq!(
        block_on(manager.append(token.as_str(), "cart", &mug)).expect("append"),
        3
    );
    let calls = command_calls(&mut r);
    // Commands a script runs are counted too: each edit script reads the
    // record once (HMGET). A read before each write (HMGET from the client,
    // then the compare-and-set script's own) would make it six.
    assert_eq!(calls.get("evalsha"), Some(&3), "{calls:?}");
    assert_eq!(
        calls.get("hmget"),
        Some(&3),
        "no read before the writes: {calls:?}"
    );
    let stored = block_on(manager.peek(token.as_str())).expect("peek");
    assert_eq!(
        stored.record.data.as_json(),
        r#"{"cart":["tea","mug",{"sku":"mug"}],"visits":2}"#
    );
    assert_eq!(stored.record.version, 4);
}

#[test]
fn the_edit_script_declines_text_the_store_did_not_write() {
    // Data changed by hand: the script leaves it to the manager's read and
    // compare-and-set (which reads well-formed text and reports broken
    // text), instead of editing either as it is.
    let p = prefix();
    let store = open(&p);
    let now = SystemClock.now();
    let limits = DataLimits::default();
    let patch = SessionData::from_json_str(r#"{"b":5}"#, &limits).unwrap();
    let mut r = raw();
    let by_hand = [
        (r#"{"a": 1}"#, true),
        (r#"{"a":1 }"#, true),
        (r#"{"a":true }"#, true),
        (r#"{"a":01}"#, false),
        (r#"{"a":1.}"#, false),
    ];
    for (n, (text, well_formed)) in (10..).zip(by_hand) {
        let k = key(n);
        create(&store, &k, &record("alice", now, 60_000), now);
        let () = r.hset(format!("{p}s:{}", k.to_hex()), "d", text).unwrap();
        assert_eq!(
            block_on(store.edit_in_place(&k, MemberEdit::Merge(&patch), &limits, now)).unwrap(),
            EditOutcome::Declined,
            "{text}"
        );
        let loaded = block_on(store.load(&k, now));
        assert_eq!(loaded.is_ok(), well_formed, "{text}: {loaded:?}");
        let stored: String = r.hget(format!("{p}s:{}", k.to_hex()), "d").unwrap();
        assert_eq!(stored, text, "{text}: a declined edit writes nothing");
    }
}

//! What the store keeps in Redis: key names, TTLs, and indexes that stay
//! bounded. Checked by reading the server directly.

mod support;

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
    let mut config = RedisConfig::new("127.0.0.1", support::shared().port);
    config.prefix = prefix.to_owned();
    RedisStore::open(config).expect("the store opens")
}

fn raw() -> redis::Connection {
    redis::Client::open(support::shared().url("/0"))
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

/// A user's index by expiry (`by_creation`: by creation), as keys.rs names it.
fn index_key(p: &str, user: &str, by_creation: bool) -> String {
    let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{p}{}:{hex}", if by_creation { "uc" } else { "ue" })
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
    for by_creation in [false, true] {
        assert_eq!(
            pexpiretime(&mut r, &index_key(&p, "alice", by_creation)),
            rec.expires_at.millis()
        );
    }
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
    let (by_creation, index) = (index_key(&p, "alice", true), index_key(&p, "alice", false));
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
    let members: Vec<String> = r.zrange(&by_creation, 0, -1).unwrap();
    assert_eq!(members, vec![key(200).to_hex(), key(201).to_hex()]);
    assert_eq!(
        pexpiretime(&mut r, &by_creation),
        pexpiretime(&mut r, &index)
    );
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
    let members: Vec<String> = r.zrange(index_key(&p, "carol", false), 0, -1).unwrap();
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
fn opening_loads_all_twelve_scripts() {
    // A server of its own, which no other test loads scripts into.
    let server = support::Server::start();
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
        12,
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
    let server = support::Server::start();
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

/// Writes a session as a store of the first layout did: its hash, and its
/// user's index under `u:` and the raw user id.
fn first_layout_session(
    r: &mut redis::Connection,
    p: &str,
    k: &SessionKey,
    user: &str,
    now: Timestamp,
) {
    let rec = record(user, now, 600_000);
    let name = format!("{p}s:{}", k.to_hex());
    let () = redis::cmd("HSET")
        .arg(&name)
        .arg(&[
            ("u", user.to_owned()),
            ("d", "{}".to_owned()),
            ("v", "1".to_owned()),
            ("c", rec.created_at.millis().to_string()),
            ("a", rec.last_active.millis().to_string()),
            ("e", rec.expires_at.millis().to_string()),
            ("i", "600000".to_owned()),
            ("s", "1".to_owned()),
            ("x", String::new()),
        ])
        .query(r)
        .unwrap();
    let (): () = r
        .zadd(format!("{p}u:{user}"), k.to_hex(), rec.expires_at.millis())
        .unwrap();
    let (): () = r
        .zadd(format!("{p}expiry"), k.to_hex(), rec.expires_at.millis())
        .unwrap();
}

#[test]
fn sessions_indexed_by_the_first_layout_are_listed_limited_and_ended() {
    let p = prefix();
    let store = open(&p);
    let now = SystemClock.now();
    let mut r = raw();
    for n in 0..3 {
        first_layout_session(&mut r, &p, &key(600 + n), "dave", now);
    }
    let old_index = format!("{p}u:dave");
    let listed = block_on(store.list_user("dave", now)).unwrap();
    assert_eq!(listed.len(), 3, "listed from the old index, which stays");
    assert!(r.exists::<_, bool>(&old_index).unwrap());

    // A create at a limit of 3 counts them: the oldest goes.
    let limit = UserLimit {
        max_sessions: 3,
        evict_oldest: true,
    };
    let later = now.plus_millis(1);
    let outcome = block_on(store.create(
        &key(610),
        &record("dave", later, 600_000),
        Some(limit),
        later,
    ));
    assert_eq!(outcome.unwrap(), CreateOutcome::Created { evicted: 1 });
    assert!(
        !r.exists::<_, bool>(&old_index).unwrap(),
        "adopted, then deleted"
    );
    let members: Vec<String> = r.zrange(index_key(&p, "dave", true), 0, -1).unwrap();
    // Oldest first by creation, then by key: the lowest of the three went.
    let mut first: Vec<String> = (600..603).map(|n| key(n).to_hex()).collect();
    first.sort();
    assert_eq!(
        members,
        vec![first[1].clone(), first[2].clone(), key(610).to_hex()]
    );

    for n in 0..2 {
        first_layout_session(&mut r, &p, &key(620 + n), "erin", now);
    }
    assert_eq!(block_on(store.delete_user("erin", None, now)).unwrap(), 2);
    assert_eq!(block_on(store.list_user("erin", now)).unwrap().len(), 0);
    assert!(!r.exists::<_, bool>(format!("{p}u:erin")).unwrap());
}

#[test]
fn ending_many_sessions_takes_bounded_batches() {
    // A server of its own: the call counts are the server's.
    let server = support::Server::start();
    let mut config = RedisConfig::new("127.0.0.1", server.port);
    config.prefix = "batches:".into();
    let store = RedisStore::open(config).expect("the store opens");
    let now = SystemClock.now();
    for n in 0..1_200 {
        create(&store, &key(1_000 + n), &record("frank", now, 600_000), now);
    }
    let mut r = redis::Client::open(server.url("/0"))
        .and_then(|c| c.get_connection())
        .expect("a raw connection");
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut r).unwrap();
    let ended = block_on(store.delete_user("frank", Some(&key(1_500)), now)).unwrap();
    assert_eq!(ended, 1_199);
    let calls = command_calls(&mut r);
    assert_eq!(
        calls.get("evalsha"),
        Some(&12),
        "11 batches of 100, then 99: {calls:?}"
    );
    let left = block_on(store.list_user("frank", now)).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, key(1_500));
}

#[test]
fn a_create_at_a_limit_reads_only_what_it_evicts() {
    let server = support::Server::start();
    let mut config = RedisConfig::new("127.0.0.1", server.port);
    config.prefix = "limit:".into();
    let store = RedisStore::open(config).expect("the store opens");
    let now = SystemClock.now();
    for n in 0..2_000 {
        let at = now.plus_millis(i64::from(n));
        create(&store, &key(3_000 + n), &record("gina", at, 600_000), at);
    }
    let mut r = redis::Client::open(server.url("/0"))
        .and_then(|c| c.get_connection())
        .expect("a raw connection");
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut r).unwrap();
    let later = now.plus_millis(5_000);
    let limit = UserLimit {
        max_sessions: 2_000,
        evict_oldest: true,
    };
    let outcome = block_on(store.create(
        &key(9_000),
        &record("gina", later, 600_000),
        Some(limit),
        later,
    ));
    assert_eq!(outcome.unwrap(), CreateOutcome::Created { evicted: 1 });
    let calls = command_calls(&mut r);
    let reads: u64 = ["hget", "hmget", "exists", "zrange", "zrangebyscore"]
        .iter()
        .filter_map(|c| calls.get(*c))
        .sum();
    assert!(
        reads <= 8,
        "a handful of reads, not one per session: {calls:?}"
    );
    assert!(
        !r.exists::<_, bool>(format!("limit:s:{}", key(3_000).to_hex()))
            .unwrap()
    );

    let refuse = UserLimit {
        max_sessions: 2_000,
        evict_oldest: false,
    };
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut r).unwrap();
    let outcome = block_on(store.create(
        &key(9_001),
        &record("gina", later, 600_000),
        Some(refuse),
        later,
    ));
    assert_eq!(outcome.unwrap(), CreateOutcome::UserLimitReached);
    let calls = command_calls(&mut r);
    assert!(calls.get("exists").copied().unwrap_or(0) <= 16, "{calls:?}");
}

#[test]
fn rate_limit_state_is_one_string_that_redis_expires_and_no_session() {
    let p = prefix();
    let store = open(&p);
    let mut r = raw();
    let now = SystemClock.now();
    let limited = SessionKey::of("api:alice");
    let tat_us = now.millis() * 1000 + 6_000_000;
    assert!(block_on(store.rate_store(&limited, None, tat_us, now)).unwrap());
    let name = format!("{p}r:{}", limited.to_hex());
    let stored: i64 = r.get(&name).expect("GET");
    assert_eq!(stored, tat_us);
    assert_eq!(
        pexpiretime(&mut r, &name),
        tat_us / 1000 + 1,
        "gone the millisecond after its TAT"
    );
    let keys: Vec<String> = r.keys(format!("{p}*")).expect("KEYS");
    assert_eq!(keys, std::slice::from_ref(&name), "no session, no index");
    assert_eq!(block_on(store.count(now)).unwrap(), 0);
    // Compare-and-set: a stale expectation writes nothing.
    assert!(!block_on(store.rate_store(&limited, None, tat_us + 1, now)).unwrap());
    assert!(!block_on(store.rate_store(&limited, Some(tat_us - 1), tat_us + 1, now)).unwrap());
    assert!(block_on(store.rate_store(&limited, Some(tat_us), tat_us + 1, now)).unwrap());
    let read = block_on(store.rate_load(&limited)).unwrap();
    assert_eq!(read.tat_us, Some(tat_us + 1));
    let server_now_us = read.store_now_us.expect("the server's TIME");
    let wall_us = SystemClock.now().millis() * 1000;
    assert!(
        (server_now_us - wall_us).abs() < 60_000_000,
        "{server_now_us} vs {wall_us}"
    );
    // Past its TAT by the manager's clock, the state is none, stored or not.
    let later = Timestamp(tat_us / 1000 + 2);
    assert!(block_on(store.rate_store(&limited, None, tat_us + 7_000_000, later)).unwrap());
}

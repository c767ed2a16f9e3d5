//! What the store keeps in Redis: key names, TTLs, and indexes that stay
//! bounded. Checked by reading the server directly.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis::Commands;
use sessionmanager_core::{
    Clock, CreateOutcome, DataLimits, EditOutcome, MemberEdit, SessionData, SessionKey,
    SessionRecord, SessionStore, SessionToken, SystemClock, Timestamp, UserLimit, block_on,
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

/// A key that does not route to its user's bucket (a session imported
/// from another store, say): its session is reached through a link.
fn key(n: u32) -> SessionKey {
    SessionKey::of(&format!("token-{n}-{}", std::process::id()))
}

/// The bucket where `user`'s sessions live (keys.rs: 1024 buckets).
fn bucket(user: &str) -> u16 {
    SessionKey::of(user).route() % 1024
}

/// A fresh key routed to `user`'s bucket, as the manager issues them.
fn routed(user: &str) -> SessionKey {
    SessionToken::generate_routed(bucket(user))
        .expect("a token")
        .key()
}

/// `<p><kind>{<bucket>}<hex>`, as keys.rs names keys.
fn name(p: &str, kind: &str, bucket: u16, hex: &str) -> String {
    format!("{p}{kind}{{{bucket}}}{hex}")
}

/// Session `k`'s hash, filed in `user`'s bucket.
fn session_name(p: &str, k: &SessionKey, user: &str) -> String {
    name(p, "s:", bucket(user), &k.to_hex())
}

fn create(store: &RedisStore, key: &SessionKey, record: &SessionRecord, now: Timestamp) {
    let outcome = block_on(store.create(key, record, None, now)).expect("create");
    assert_eq!(outcome, CreateOutcome::Created { evicted: 0 });
}

/// A user's index by expiry (`by_creation`: by creation), as keys.rs names it.
fn index_key(p: &str, user: &str, by_creation: bool) -> String {
    let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
    let kind = if by_creation { "uc:" } else { "ue:" };
    name(p, kind, bucket(user), &hex)
}

fn pexpiretime(r: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query(r)
        .expect("PEXPIRETIME")
}

/// What Redis keeps an expired record for, for a sweep to report it.
const KEPT: i64 = RedisConfig::KEEP_EXPIRED.as_millis() as i64;

#[test]
fn records_are_hashes_under_the_prefix_that_redis_expires_after_a_sweep_could() {
    let p = prefix();
    let store = open(&p);
    let now = SystemClock.now();
    let k = routed("alice");
    let rec = record("alice", now, 60_000);
    create(&store, &k, &rec, now);
    let mut r = raw();
    let name = session_name(&p, &k, "alice");
    assert_eq!(pexpiretime(&mut r, &name), rec.expires_at.millis() + KEPT);
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
        later.plus_millis(60_000 + KEPT).millis()
    );
    assert!(block_on(store.touch(&k, now, now.plus_millis(1), now)).unwrap());
    assert_eq!(
        pexpiretime(&mut r, &name),
        later.plus_millis(60_000 + KEPT).millis()
    );
    let expiry = format!("{p}x:{{{}}}", bucket("alice"));
    let score: f64 = r.zscore(&expiry, k.to_hex()).unwrap();
    assert_eq!(score as i64, later.plus_millis(60_000).millis());
    let keys: Vec<String> = r.keys(format!("{p}*")).unwrap();
    assert_eq!(
        keys.len(),
        4,
        "the session, its user's indexes, the bucket's: {keys:?}"
    );
}

#[test]
fn the_user_index_is_trimmed_by_writes_and_lives_as_long_as_its_last_session() {
    let p = prefix();
    let store = open(&p);
    let now = SystemClock.now();
    let (by_creation, index) = (index_key(&p, "alice", true), index_key(&p, "alice", false));
    let short: Vec<SessionKey> = (0..10).map(|_| routed("alice")).collect();
    for k in &short {
        create(&store, k, &record("alice", now, 5_000), now);
    }
    let (long_key, next_key) = (routed("alice"), routed("alice"));
    let long = record("alice", now, 600_000);
    create(&store, &long_key, &long, now);
    let mut r = raw();
    assert_eq!(r.zcard::<_, u64>(&index).unwrap(), 11);
    assert_eq!(pexpiretime(&mut r, &index), long.expires_at.millis());

    // Later, by the store's clock, the short ones have expired; the next
    // write for the user trims them from its index.
    let later = now.plus_millis(6_000);
    create(&store, &next_key, &record("alice", later, 600_000), later);
    let members: Vec<String> = r.zrange(&index, 0, -1).unwrap();
    assert_eq!(members, vec![long_key.to_hex(), next_key.to_hex()]);
    let members: Vec<String> = r.zrange(&by_creation, 0, -1).unwrap();
    assert_eq!(members, vec![long_key.to_hex(), next_key.to_hex()]);
    assert_eq!(
        pexpiretime(&mut r, &by_creation),
        pexpiretime(&mut r, &index)
    );
    // Their records stay for a sweep, which reports them: the create swept
    // a few (sweep_on_create), a purge takes the rest.
    let kept = |r: &mut redis::Connection| {
        short
            .iter()
            .filter(|k| r.exists(session_name(&p, k, "alice")).unwrap())
            .count()
    };
    let left = kept(&mut r);
    let swept = RedisConfig::DEFAULT_SWEEP_ON_CREATE as usize;
    assert_eq!(left, short.len() - swept, "the create's sweep took {swept}");
    assert_eq!(block_on(store.purge_expired(later)).unwrap(), left as u64);
    assert_eq!(kept(&mut r), 0, "the purge took the rest");

    // A write that moves a session's expiry trims its user's index too.
    for _ in 0..3 {
        create(
            &store,
            &routed("carol"),
            &record("carol", later, 1_000),
            later,
        );
    }
    let kept = routed("carol");
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
    let expiry = format!("{p}x:{{{}}}", bucket("v"));
    // Creates sweep their own bucket: 40 users who share v's.
    let users: Vec<String> = (0..)
        .map(|n| format!("u{n}"))
        .filter(|u| bucket(u) == bucket("v"))
        .take(40)
        .collect();
    let first = routed(&users[0]);
    for (n, user) in users.iter().enumerate() {
        let k = if n == 0 { first } else { routed(user) };
        create(&store, &k, &record(user, now, 5_000), now);
    }
    assert_eq!(r.zcard::<_, u64>(&expiry).unwrap(), 40);
    let later = now.plus_millis(6_000);
    for _ in 0..3 {
        create(&store, &routed("v"), &record("v", later, 600_000), later);
    }
    // Each create cleared up to 8 expired sessions: 24 of the 40.
    assert_eq!(r.zcard::<_, u64>(&expiry).unwrap(), 40 - 24 + 3);
    assert_eq!(block_on(store.purge_expired(later)).unwrap(), 16);
    assert_eq!(r.zcard::<_, u64>(&expiry).unwrap(), 3);
    assert_eq!(block_on(store.count(later)).unwrap(), 3);
    let left: bool = r.exists(session_name(&p, &first, &users[0])).unwrap();
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
    let bobs = [routed("bob"), routed("bob")];
    for k in &bobs {
        create(&store, k, &record("bob", now, 600_000), now);
    }
    // One of bob's records vanishes behind the store's back (an operator's
    // DEL, an eviction under maxmemory): the limit must not count it.
    let mut r = raw();
    let _: i64 = r.del(session_name(&p, &bobs[0], "bob")).unwrap();
    let limit = UserLimit {
        max_sessions: 2,
        evict_oldest: false,
    };
    let outcome = block_on(store.create(
        &routed("bob"),
        &record("bob", now, 600_000),
        Some(limit),
        now,
    ));
    assert_eq!(outcome.unwrap(), CreateOutcome::Created { evicted: 0 });
}

#[test]
fn opening_loads_all_fifteen_scripts() {
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
        15,
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
    for (text, well_formed) in by_hand {
        let k = routed("alice");
        create(&store, &k, &record("alice", now, 60_000), now);
        let () = r.hset(session_name(&p, &k, "alice"), "d", text).unwrap();
        assert_eq!(
            block_on(store.edit_in_place(&k, MemberEdit::Merge(&patch), &limits, now)).unwrap(),
            EditOutcome::Declined,
            "{text}"
        );
        let loaded = block_on(store.load(&k, now));
        assert_eq!(loaded.is_ok(), well_formed, "{text}: {loaded:?}");
        let stored: String = r.hget(session_name(&p, &k, "alice"), "d").unwrap();
        assert_eq!(stored, text, "{text}: a declined edit writes nothing");
    }
}

/// Writes a session as a store of an earlier layout did: its hash under
/// `s:<hex>`, an entry in the one `expiry` index, and its user's index:
/// under `u:` and the raw user id (the first layout) or `ue:`/`uc:` and the
/// id's hex (the second).
fn earlier_layout_session(
    r: &mut redis::Connection,
    p: &str,
    token: &str,
    user: &str,
    first: bool,
) {
    let now = SystemClock.now();
    let rec = record(user, now, 600_000);
    let member = SessionKey::of(token).to_hex();
    let () = redis::cmd("HSET")
        .arg(format!("{p}s:{member}"))
        .arg(&[
            ("u", user.to_owned()),
            ("d", format!(r#"{{"token":"{}"}}"#, &token[..8])),
            ("v", "7".to_owned()),
            ("c", rec.created_at.millis().to_string()),
            ("a", rec.last_active.millis().to_string()),
            ("e", rec.expires_at.millis().to_string()),
            ("i", "600000".to_owned()),
            ("s", "1".to_owned()),
            ("x", String::new()),
        ])
        .query(r)
        .unwrap();
    let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
    let indexes = match first {
        true => vec![format!("{p}u:{user}")],
        false => vec![format!("{p}ue:{hex}"), format!("{p}uc:{hex}")],
    };
    for index in indexes.into_iter().chain([format!("{p}expiry")]) {
        let (): () = r.zadd(index, &member, rec.expires_at.millis()).unwrap();
    }
}

#[test]
fn opening_moves_sessions_of_earlier_layouts_into_buckets() {
    let p = prefix();
    let mut r = raw();
    let tokens: Vec<SessionToken> = (0..5).map(|_| SessionToken::generate().unwrap()).collect();
    for (n, token) in tokens.iter().enumerate() {
        let user = if n < 3 { "dave" } else { "erin" };
        earlier_layout_session(&mut r, &p, token.as_str(), user, n % 2 == 0);
    }
    let manager = sessionmanager_core::SessionManager::new(
        open(&p),
        sessionmanager_core::ManagerConfig::default(),
    );
    let left: Vec<String> = r.keys(format!("{p}*")).unwrap();
    assert!(
        left.iter().all(|k| k.ends_with('}') || k.contains(":{")),
        "no key of the earlier layouts is left: {left:?}"
    );
    for (n, token) in tokens.iter().enumerate() {
        let session = block_on(manager.get(token.as_str())).expect("the session opens");
        assert_eq!(
            &*session.record.user_id,
            if n < 3 { "dave" } else { "erin" }
        );
        assert_eq!(session.record.version, 7);
        assert_eq!(
            session.record.data.as_json(),
            format!(r#"{{"token":"{}"}}"#, &token.as_str()[..8])
        );
    }
    let store = manager.store();
    let now = SystemClock.now();
    assert_eq!(block_on(store.list_user("dave", now)).unwrap().len(), 3);
    assert_eq!(block_on(store.count(now)).unwrap(), 5);
    // They count against a limit, and go with their user.
    let limit = UserLimit {
        max_sessions: 3,
        evict_oldest: false,
    };
    let outcome = block_on(store.create(
        &routed("dave"),
        &record("dave", now, 1_000),
        Some(limit),
        now,
    ));
    assert_eq!(outcome.unwrap(), CreateOutcome::UserLimitReached);
    assert_eq!(block_on(manager.end_user("erin", None)).unwrap(), 2);
    assert!(!block_on(manager.is_active(tokens[3].as_str())).unwrap());
    // A rotation gives a routed token of the same kind (plain here) that
    // still leads to the session.
    let rotated = block_on(manager.rotate(tokens[0].as_str())).unwrap();
    assert!(block_on(manager.is_active(rotated.as_str())).unwrap());
    assert!(!block_on(manager.is_active(tokens[0].as_str())).unwrap());
    // Reopening finds nothing more to move.
    drop(open(&p));
    assert_eq!(block_on(store.count(now)).unwrap(), 3);
}

/// The link keys (`a:`) under prefix `p`.
fn links(r: &mut redis::Connection, p: &str) -> Vec<String> {
    r.keys(format!("{p}a:*")).unwrap()
}

#[test]
fn sessions_filed_away_from_their_keys_bucket_are_reached_through_a_link() {
    let p = prefix();
    let store = open(&p);
    let mut r = raw();
    let now = SystemClock.now();
    let k = key(700);
    assert_ne!(k.route() % 1024, bucket("hank"), "a key routed elsewhere");
    create(&store, &k, &record("hank", now, 60_000), now);
    let link = name(&p, "a:", k.route() % 1024, &k.to_hex());
    assert_eq!(links(&mut r, &p), vec![link.clone()]);
    let home: u16 = r.get(&link).unwrap();
    assert_eq!(home, bucket("hank"));
    assert!(r.exists::<_, bool>(session_name(&p, &k, "hank")).unwrap());

    // Every operation finds it.
    assert!(block_on(store.load(&k, now)).unwrap().is_some());
    assert!(block_on(store.exists(&k, now)).unwrap());
    let later = now.plus_millis(1_000);
    assert!(block_on(store.touch(&k, later, later.plus_millis(60_000), later)).unwrap());
    let patch = SessionData::from_json_str(r#"{"n":1}"#, &DataLimits::default()).unwrap();
    let edited =
        block_on(store.edit_in_place(&k, MemberEdit::Merge(&patch), &DataLimits::default(), later));
    assert!(matches!(edited.unwrap(), EditOutcome::Edited { .. }));

    // A rotation to another such key moves the link; ending removes it.
    let moved = key(701);
    assert!(block_on(store.rotate(&k, &moved, later)).unwrap());
    assert!(block_on(store.load(&k, later)).unwrap().is_none());
    let moved_link = name(&p, "a:", moved.route() % 1024, &moved.to_hex());
    assert_eq!(links(&mut r, &p), vec![moved_link]);
    assert!(block_on(store.delete(&moved, later)).unwrap());
    assert!(
        links(&mut r, &p).is_empty(),
        "the link goes with its session"
    );

    // Eviction, ending a user's sessions and purging remove links too.
    let limit = UserLimit {
        max_sessions: 1,
        evict_oldest: true,
    };
    block_on(store.create(&key(702), &record("hank", now, 60_000), None, now)).unwrap();
    let outcome = block_on(store.create(
        &routed("hank"),
        &record("hank", now, 60_000),
        Some(limit),
        now,
    ));
    assert_eq!(outcome.unwrap(), CreateOutcome::Created { evicted: 1 });
    block_on(store.create(&key(703), &record("hank", now, 60_000), None, now)).unwrap();
    assert_eq!(links(&mut r, &p).len(), 1);
    assert_eq!(block_on(store.delete_user("hank", None, now)).unwrap(), 2);
    block_on(store.create(&key(704), &record("ivy", now, 1_000), None, now)).unwrap();
    assert_eq!(links(&mut r, &p).len(), 1);
    assert_eq!(
        block_on(store.purge_expired(now.plus_millis(2_000))).unwrap(),
        1
    );
    assert!(links(&mut r, &p).is_empty());
    let keys: Vec<String> = r.keys(format!("{p}*")).unwrap();
    assert!(keys.is_empty(), "nothing is left: {keys:?}");
}

#[test]
fn ending_many_sessions_takes_bounded_batches() {
    // A server of its own: the call counts are the server's.
    let server = support::Server::start();
    let mut config = RedisConfig::new("127.0.0.1", server.port);
    config.prefix = "batches:".into();
    let store = RedisStore::open(config).expect("the store opens");
    let now = SystemClock.now();
    let franks: Vec<SessionKey> = (0..1_200).map(|_| routed("frank")).collect();
    for k in &franks {
        create(&store, k, &record("frank", now, 600_000), now);
    }
    let mut r = redis::Client::open(server.url("/0"))
        .and_then(|c| c.get_connection())
        .expect("a raw connection");
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut r).unwrap();
    let ended = block_on(store.delete_user("frank", Some(&franks[500]), now)).unwrap();
    assert_eq!(ended, 1_199);
    let calls = command_calls(&mut r);
    assert_eq!(
        calls.get("evalsha"),
        Some(&12),
        "11 batches of 100, then 99: {calls:?}"
    );
    let left = block_on(store.list_user("frank", now)).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, franks[500]);
}

#[test]
fn a_create_at_a_limit_reads_only_what_it_evicts() {
    let server = support::Server::start();
    let mut config = RedisConfig::new("127.0.0.1", server.port);
    config.prefix = "limit:".into();
    let store = RedisStore::open(config).expect("the store opens");
    let now = SystemClock.now();
    let ginas: Vec<SessionKey> = (0..2_000).map(|_| routed("gina")).collect();
    for (n, k) in (0..).zip(&ginas) {
        let at = now.plus_millis(n);
        create(&store, k, &record("gina", at, 600_000), at);
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
        &routed("gina"),
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
        !r.exists::<_, bool>(session_name("limit:", &ginas[0], "gina"))
            .unwrap()
    );

    let refuse = UserLimit {
        max_sessions: 2_000,
        evict_oldest: false,
    };
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut r).unwrap();
    let outcome = block_on(store.create(
        &routed("gina"),
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
    let name = name(&p, "r:", limited.route() % 1024, &limited.to_hex());
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

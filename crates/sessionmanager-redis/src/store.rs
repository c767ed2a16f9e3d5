//! The Redis store: each operation one command or one Lua script (so every
//! write is atomic on the server), over one shared multiplexed connection,
//! within a timeout.
//!
//! The store owns a single-threaded tokio runtime and no thread: a caller
//! drives the runtime itself (`Runtime::block_on`) for the length of its
//! operation, so a lone caller writes its command and reads the answer on
//! its own thread, with no hand-off to another one. Several callers share
//! the driving: one runs the connection's I/O for all while the others wait
//! for their answers. Callers inside a tokio runtime (which may not block)
//! drive it from tokio's blocking pool instead. Asynchronous hosts hand
//! whole tasks to the runtime instead ([`RedisStore::spawn`], `driver.rs`).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::{RedisError, Script, ScriptInvocation, Value};
use sessionmanager_core::RateRead;
use sessionmanager_core::{
    Clock, CreateOutcome, DataLimits, EditOutcome, Error, ExpiryListener, ExpiryReports,
    ExportCursor, ExportPage, ImportOutcome, MemberEdit, Periodic, Result, SaveOutcome, SessionKey,
    SessionRecord, SessionStore, Tick, Timestamp, UserLimit, block_on, interrupt,
    rate_state_expiry,
};
use tokio::runtime::{Handle, Runtime};
use tokio::task::spawn_blocking;

use futures_util::future::try_join_all;

use crate::buckets::{Claim, on_session, session_fields};
use crate::cluster::Cluster;
use crate::codec::{self, FIELDS};
use crate::config::RedisConfig;
use crate::config::Server;
use crate::connection::{Connection, Connector};
use crate::driver::{Driver, on_driver};
use crate::error::{Failure, engine_error, timed_out};
use crate::import::{Importing, import_batch};
use crate::keys::{self, Keys, bucket_of_key};
use crate::link::{Link, connection_lost};
use crate::scripts::{SOURCES, Scripts};

/// Expired sessions `purge_expired` removes per script run, so the server is
/// never held for long.
const SWEEP_BATCH: u32 = 500;

/// Sessions `delete_user` ends per script run, for the same reason: a few
/// milliseconds of the server's time each (docs/BENCHMARKS.md).
const END_USER_BATCH: u32 = 100;

/// Sessions in Redis or Valkey, shared by every process that opens the same
/// server, database and prefix.
///
/// Records are hashes under `<prefix>s:{<bucket>}<hex of the key>`, in their
/// user's bucket. Sweeps (a few per create, every bucket per
/// [`RedisConfig::sweep_interval`] once a manager watches for expiry
/// events, and `purge_expired`) remove expired ones and report them; Redis
/// removes any left [`RedisConfig::KEEP_EXPIRED`] after their expiry by
/// itself (`PEXPIREAT`, moved only forward, so an expired record is never
/// revived). Each user has a sorted set of their sessions scored by expiry, trimmed of
/// expired ones by every create and every write that moves an expiry, and
/// expiring with its last session; each bucket indexes its sessions by
/// expiry, so `count` and `purge_expired` never walk the keyspace (see the
/// `keys` module).
pub struct RedisStore {
    shared: Arc<Shared>,
    /// `None` once closed; the last operation still running drops it.
    runtime: Mutex<Option<Arc<Runtime>>>,
    /// Drives the runtime for [`RedisStore::spawn`]'s tasks.
    driver: Driver,
    /// The process that opened the store: its connection and runtime are
    /// that process's, so a forked child must not use them (its replies
    /// would cross with the parent's).
    pid: u32,
    /// Sweeps every bucket for expired sessions to report, once a manager
    /// watches for them ([`SessionStore::watch_expiry`]).
    sweeper: Mutex<Option<Periodic>>,
    sweep_interval: Option<Duration>,
    clock: Arc<dyn Clock>,
}

/// The pause between tries while a Sentinel failover runs.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What every operation's task needs.
pub(crate) struct Shared {
    pub(crate) connector: Connector,
    pub(crate) keys: Keys,
    pub(crate) scripts: Scripts,
    timeout: Duration,
    sweep_on_create: u32,
    wait_replicas: u32,
    /// `host:port/db`, for messages.
    address: String,
    db: i64,
    /// Told about the expired sessions scripts remove.
    pub(crate) expiry: ExpiryReports,
}

impl Shared {
    /// A call of `script` in `bucket` with what every script takes first
    /// (see `lua/prelude.lua`): the bucket's expiry index as `KEYS[1]`, the
    /// key prefix and `now` as `ARGV[1]` and `ARGV[2]`. The caller adds the rest.
    pub(crate) fn invoke<'a>(
        &self,
        script: &'a Script,
        bucket: u16,
        now: Timestamp,
    ) -> ScriptInvocation<'a> {
        let mut call = script.prepare_invoke();
        call.key(self.keys.expiry(bucket))
            .arg(self.keys.prefix())
            .arg(ms(now));
        call
    }

    /// Waits until `wait_replicas` replicas of the node that holds `bucket`
    /// have the writes sent to it (`WAIT`, for half the store's timeout):
    /// at once when none are asked for.
    pub(crate) async fn replicated(&self, conn: &Connection, bucket: u16) -> Result<(), Failure> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let waited_ms = (self.timeout / 2).as_millis().max(1);
        let acked: i64 = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(waited_ms as u64)
            .query_async(&mut conn.aimed_at(self.keys.expiry(bucket)))
            .await?;
        if acked < i64::from(self.wait_replicas) {
            return Err(Failure::Unreplicated {
                acked,
                wanted: self.wait_replicas,
                waited_ms,
            });
        }
        Ok(())
    }
}

impl RedisStore {
    /// Connects to the server `config` names and loads the store's scripts.
    ///
    /// Fails with [`Error::Unavailable`] if the server cannot be reached
    /// within `config.timeout`, and with [`Error::Store`] naming the problem
    /// if it refuses the credentials or has no such database.
    pub fn open(config: RedisConfig) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| {
                Error::Store(format!("cannot start the Redis store's runtime: {e}").into())
            })?;
        let connector = match &config.server {
            Server::Cluster(seeds) => {
                check_cluster_settings(&config)?;
                let (info, tls) = crate::link::credentials(&config)?;
                Connector::Cluster(Arc::new(Cluster::new(
                    seeds.clone(),
                    info,
                    tls,
                    config.timeout,
                )))
            }
            _ => Connector::Server(Box::new(Link::new(&config)?)),
        };
        let store = Self {
            shared: Arc::new(Shared {
                connector,
                keys: Keys::new(&config.prefix),
                scripts: Scripts::new(),
                timeout: config.timeout,
                sweep_on_create: config.sweep_on_create,
                wait_replicas: config.wait_replicas,
                address: config.address(),
                db: config.db,
                expiry: ExpiryReports::default(),
            }),
            runtime: Mutex::new(Some(Arc::new(runtime))),
            driver: Driver::default(),
            pid: std::process::id(),
            sweeper: Mutex::new(None),
            sweep_interval: config.sweep_interval,
            clock: config.clock,
        };
        if store.shared.connector.cluster().is_some() {
            block_on(
                store.run("find the cluster's nodes", |shared, _| async move {
                    load_scripts_into_masters(&shared).await
                }),
            )?;
            // Earlier layouts never ran on a cluster: nothing to move.
            return Ok(store);
        }
        block_on(
            store.run("load the session scripts", |_, mut conn| async move {
                load_scripts(&mut conn).await
            }),
        )?;
        store.move_earlier_sessions()?;
        Ok(store)
    }

    /// Moves the sessions a store of an earlier layout left on the server
    /// into the current layout (see `earlier.rs`), a batch per call, so
    /// that every process of an upgraded application finds them.
    fn move_earlier_sessions(&self) -> Result<()> {
        // Without the manager's clock, every session counts as live: an
        // expired one moves too, and expires there as it would have here.
        let now = Timestamp(0);
        loop {
            let read =
                block_on(self.run(
                    "move sessions from an earlier layout",
                    move |shared, conn| async move {
                        crate::earlier::move_batch(&shared, &conn, now).await
                    },
                ))?;
            if read == 0 {
                return Ok(());
            }
        }
    }

    /// Runs `task` (typically a whole manager call on this store) as a task
    /// of the store's own runtime, driven by a thread of the store's that
    /// starts with the first task: for asynchronous hosts, which then wait
    /// for nothing but the task's own notice that it finished. Operations
    /// inside the task run on that runtime directly. Fails with
    /// [`Error::Closed`] once the store is closed; a task still running
    /// then is dropped.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        self.driver.spawn(&self.live_runtime()?, task)
    }

    /// The runtime, unless the store is closed or this is a forked child.
    fn live_runtime(&self) -> Result<Arc<Runtime>> {
        self.refuse_if_forked()?;
        self.runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Closed)
    }

    /// Opens the store a `redis://` URL describes (see [`RedisConfig::from_url`]).
    pub fn open_url(url: &str) -> Result<Self> {
        let config =
            RedisConfig::from_url(url).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Self::open(config)
    }

    /// Runs `op` on the store's runtime with a connection, within the
    /// timeout, and maps its failure to an engine error about `doing`.
    async fn run<T, F, Fut>(&self, doing: &'static str, op: F) -> Result<T>
    where
        T: Send + 'static,
        // Cloned for each try: through Sentinel, an operation that sent
        // nothing that ran is tried again on the new master.
        F: FnOnce(Arc<Shared>, Connection) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        self.drive(move |shared| shared.attempt(doing, op)).await
    }

    /// Runs the task `work` makes of the store's shared state on the
    /// store's runtime: on this thread, driving it, unless this is a task
    /// of the runtime already or a thread of another tokio runtime.
    async fn drive<T, Fut>(&self, work: impl FnOnce(Arc<Shared>) -> Fut) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let runtime = self.live_runtime()?;
        let task = work(Arc::clone(&self.shared));
        if on_driver(&runtime) {
            return task.await;
        }
        if Handle::try_current().is_err() {
            if interrupt::interruptible() {
                return runtime.block_on(interruptibly(task));
            }
            return runtime.block_on(task);
        }
        // Inside a tokio runtime this thread must not block: drive ours
        // from that runtime's blocking pool.
        spawn_blocking(move || runtime.block_on(task))
            .await
            .unwrap_or_else(|e| {
                Err(Error::Store(
                    format!("a Redis store task failed: {e}").into(),
                ))
            })
    }
}

impl Shared {
    /// Runs `op` with a connection, within the timeout, and maps its
    /// failure to an engine error about `doing`. Must run on the store's
    /// runtime.
    async fn attempt<T, F, Fut>(self: Arc<Self>, doing: &'static str, op: F) -> Result<T>
    where
        F: FnOnce(Arc<Shared>, Connection) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let shared = self;
        // The failure of the last try that sent nothing that ran, which
        // says more than "timed out" when the time runs out retrying.
        let mut retried = None;
        let attempts = async {
            let mut op = op;
            loop {
                // A copy for another try, only where there can be one.
                let again = shared.connector.follows_failover().then(|| op.clone());
                let result = async {
                    let conn = shared
                        .connector
                        .connection()
                        .await
                        .map_err(Failure::Connect)?;
                    op(Arc::clone(&shared), conn).await
                }
                .await;
                match (result, again) {
                    (Err(failure), Some(again)) if failure.passing() => {
                        shared.connector.forget();
                        retried = Some(failure);
                        tokio::time::sleep(RETRY_PAUSE).await;
                        op = again;
                    }
                    (done, _) => return done,
                }
            }
        };
        let outcome = tokio::time::timeout(shared.timeout, attempts).await;
        match outcome {
            Ok(Ok(value)) => {
                shared.connector.used();
                Ok(value)
            }
            Ok(Err(failure)) => {
                if let Failure::Command(err) = &failure
                    && connection_lost(err)
                {
                    shared.connector.forget();
                }
                Err(engine_error(failure, doing, &shared.address, shared.db))
            }
            Err(_) => {
                shared.connector.forget();
                Err(match retried {
                    Some(failure) => engine_error(failure, doing, &shared.address, shared.db),
                    None => timed_out(doing, &shared.address, shared.timeout),
                })
            }
        }
    }
}

/// Refuses settings a cluster cannot serve.
fn check_cluster_settings(config: &RedisConfig) -> Result<()> {
    if config.prefix.contains(['{', '}']) {
        return Err(Error::InvalidArgument(format!(
            "the key prefix {:?} contains '{{' or '}}': on Redis Cluster that makes a hash \
             tag of its own, which would put every session in one slot; choose a prefix \
             without braces",
            config.prefix
        )));
    }
    if config.db != 0 {
        return Err(Error::InvalidArgument(format!(
            "a Redis Cluster has database 0 only, not {}",
            config.db
        )));
    }
    Ok(())
}

/// Loads every script into the server `conn` reaches, in one round trip.
async fn load_scripts(conn: &mut (impl redis::aio::ConnectionLike + Send)) -> Result<(), Failure> {
    let mut load = redis::pipe();
    for source in SOURCES {
        load.cmd("SCRIPT").arg("LOAD").arg(source);
    }
    let loaded: redis::RedisResult<Vec<String>> = load.query_async(conn).await;
    loaded.map(drop).map_err(|e| first_server_error(e).into())
}

/// Reads the cluster's slot map, checks that a master serves every slot,
/// and loads the scripts into each master. (A master that joins later gets
/// them when a call first finds them missing.)
async fn load_scripts_into_masters(shared: &Shared) -> Result<(), Failure> {
    let cluster = shared.connector.cluster().expect("a cluster store");
    cluster
        .refresh()
        .await
        .map_err(crate::cluster::DiscoveryError::into_failure)?;
    let map = cluster
        .current_map()
        .await
        .map_err(crate::cluster::DiscoveryError::into_failure)?;
    let uncovered = map.uncovered();
    if !uncovered.is_empty() {
        let ranges: Vec<String> = uncovered
            .iter()
            .map(|(start, end)| match start == end {
                true => start.to_string(),
                false => format!("{start}-{end}"),
            })
            .collect();
        return Err(Failure::Cluster {
            message: format!(
                "the Redis Cluster of {} has no master for slots {} (a master is down, or \
                 the slots were never assigned); sessions may live in any slot",
                cluster
                    .seeds()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                ranges.join(", ")
            ),
            transient: true,
        });
    }
    for (_, mut conn) in cluster.masters().await.map_err(Failure::Connect)? {
        load_scripts(&mut conn).await?;
    }
    Ok(())
}

/// `task`, given up when the host's interrupt hook asks (checked every
/// [`interrupt::CHECK_EVERY`]): what was sent may still run on the server.
async fn interruptibly<T>(task: impl Future<Output = Result<T>>) -> Result<T> {
    let mut task = std::pin::pin!(task);
    loop {
        match tokio::time::timeout(interrupt::CHECK_EVERY, &mut task).await {
            Ok(done) => return done,
            Err(_) if interrupt::interrupted() => return Err(Error::Interrupted),
            Err(_) => {}
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.shared.address)
            .field("prefix", &self.shared.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl RedisStore {
    /// Whether this is a child forked after the store was opened.
    fn forked(&self) -> bool {
        std::process::id() != self.pid
    }

    fn refuse_if_forked(&self) -> Result<()> {
        if !self.forked() {
            return Ok(());
        }
        Err(Error::Store(
            format!(
                "this Redis session store was opened in process {} and this is a forked child; \
                 open a store in each process (the Python package does this by itself)",
                self.pid
            )
            .into(),
        ))
    }

    fn shutdown(&self) {
        // First, while the runtime it drives is still there (in a forked
        // child it only forgets the parent's thread).
        let sweeper = match self.forked() {
            // Its lock may have been held when the process forked.
            true => self.sweeper.try_lock().ok().and_then(|mut s| s.take()),
            false => self
                .sweeper
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        };
        if let Some(sweeper) = sweeper {
            sweeper.stop();
        }
        if self.forked() {
            // The runtime and connection are the parent's: leaked, untouched
            // (a lock of theirs may have been held when the process forked).
            if let Ok(mut runtime) = self.runtime.try_lock() {
                std::mem::forget(runtime.take());
            }
            self.driver.forget();
            return;
        }
        self.driver.stop();
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.shared.connector.close();
        // Operations still running hold the runtime; the last one out drops
        // it. Shutting down in the background never blocks, so closing works
        // from any thread, even a tokio one.
        if let Some(runtime) = runtime.and_then(|r| Arc::try_unwrap(r).ok()) {
            runtime.shutdown_background();
        }
    }
}

/// The edit script's arguments after `max_bytes`, or `None` to decline:
/// keys the script matches by their text between quotes must need no escape.
fn edit_arguments(edit: MemberEdit<'_>) -> Option<Vec<String>> {
    let plain = |key: &str| !key.contains(['"', '\\']) && !key.contains(|c: char| c.is_control());
    match edit {
        MemberEdit::Increment { key, by } => {
            plain(key).then(|| vec!["incr".to_owned(), key.to_owned(), by.to_string()])
        }
        MemberEdit::Append { key, item } => {
            plain(key).then(|| vec!["append".to_owned(), key.to_owned(), item.to_owned()])
        }
        MemberEdit::Merge(patch) => {
            let mut args = vec!["merge".to_owned()];
            for (key, value) in patch.member_texts() {
                if !plain(&key) {
                    return None;
                }
                args.push(key.into_owned());
                args.push(value.into_owned());
            }
            Some(args)
        }
        _ => None,
    }
}

fn ms(t: Timestamp) -> String {
    t.millis().to_string()
}

fn corrupt(what: impl Into<String>) -> Failure {
    Failure::Corrupt(what.into())
}

fn as_int(value: &Value, what: &str) -> Result<i64, Failure> {
    match value {
        Value::Int(n) => Ok(*n),
        other => Err(corrupt(format!(
            "an unexpected answer to {what}: {other:?}"
        ))),
    }
}

impl SessionStore for RedisStore {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        limit: Option<UserLimit>,
        now: Timestamp,
    ) -> Result<CreateOutcome> {
        let (key, fields) = (*key, codec::encode(record));
        let user = self.shared.keys.user(&record.user_id);
        let home = keys::home_bucket(&record.user_id);
        self.run("create a session", move |shared, mut conn| async move {
            let mut made_link = false;
            if bucket_of_key(&key) != home {
                match shared.claim_link(&mut conn, &key, home, now).await? {
                    Claim::Taken => return Ok(CreateOutcome::KeyTaken),
                    Claim::Linked { made } => made_link = made,
                }
            }
            let (max, evict) = limit.map_or((0, false), |l| (l.max_sessions, l.evict_oldest));
            let outcome = loop {
                let answer: Result<Value, Failure> = shared
                    .invoke(&shared.scripts.create, home, now)
                    .key(shared.keys.session(&key, home))
                    .key(&user.by_expiry)
                    .key(&user.by_creation)
                    .arg(keys::member(&key))
                    .arg(&fields[..])
                    .arg(max)
                    .arg(u8::from(evict))
                    .arg(shared.sweep_on_create)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(Failure::from);
                break match answer {
                    Err(Failure::Linked { bucket, .. }) => {
                        if shared
                            .clear_stale_link(&mut conn, &key, bucket, now)
                            .await?
                        {
                            continue;
                        }
                        CreateOutcome::KeyTaken
                    }
                    Ok(Value::Array(items)) => match items.split_first() {
                        Some((head, gone)) => {
                            shared.settle(&mut conn, gone).await?;
                            match as_int(head, "a create")? {
                                -1 => CreateOutcome::KeyTaken,
                                -2 => CreateOutcome::UserLimitReached,
                                evicted => CreateOutcome::Created {
                                    evicted: u32::try_from(evicted)
                                        .map_err(|_| corrupt("a negative eviction count"))?,
                                },
                            }
                        }
                        None => return Err(corrupt("an empty answer to a create")),
                    },
                    Ok(other) => {
                        return Err(corrupt(format!(
                            "an unexpected answer to a create: {other:?}"
                        )));
                    }
                    Err(failure) => return Err(failure),
                };
            };
            if made_link && !matches!(outcome, CreateOutcome::Created { .. }) {
                shared.unlink(&mut conn, [key]).await?;
            }
            shared.replicated(&conn, home).await?;
            Ok(outcome)
        })
        .await
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>> {
        let key = *key;
        self.run("read a session", move |shared, conn| async move {
            let fields = session_fields(&shared, &conn, &key, &FIELDS).await?;
            let record = match fields {
                Some(fields) => codec::decode(fields).map_err(Failure::Corrupt)?,
                None => None,
            };
            // Redis removes a record at its deadline by its own clock; the
            // engine's clock decides, so a record it deems expired is gone.
            Ok(record.filter(|r| r.is_live(now)))
        })
        .await
    }

    async fn exists(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        let key = *key;
        self.run("look up a session", move |shared, conn| async move {
            let fields = session_fields(&shared, &conn, &key, &["e"]).await?;
            let expires_at = fields
                .and_then(|mut f| f.pop().flatten())
                .and_then(|e| std::str::from_utf8(&e).ok()?.parse::<i64>().ok());
            Ok(expires_at.is_some_and(|e| now.millis() < e))
        })
        .await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        expected_version: u64,
        now: Timestamp,
    ) -> Result<SaveOutcome> {
        let key = *key;
        let args = Arc::new(vec![
            expected_version.to_string(),
            record.data.as_json().to_owned(),
            record.version.to_string(),
            ms(record.last_active),
            ms(record.expires_at),
        ]);
        self.run("update a session", move |shared, conn| async move {
            let (answer, _) = on_session(&shared, &conn, &key, |s| &s.save, args, now).await?;
            match answer {
                Value::Int(0) => Ok(SaveOutcome::Saved),
                Value::Int(-1) => Ok(SaveOutcome::NotFound),
                Value::BulkString(actual) => std::str::from_utf8(&actual)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .map(|actual| SaveOutcome::Conflict { actual })
                    .ok_or_else(|| corrupt("a session whose version is not a number")),
                other => Err(corrupt(format!(
                    "an unexpected answer to a save: {other:?}"
                ))),
            }
        })
        .await
    }

    async fn edit_in_place(
        &self,
        key: &SessionKey,
        edit: MemberEdit<'_>,
        limits: &DataLimits,
        now: Timestamp,
    ) -> Result<EditOutcome> {
        let Some(args) = edit_arguments(edit) else {
            return Ok(EditOutcome::Declined);
        };
        let key = *key;
        let args = Arc::new([vec![limits.max_bytes.to_string()], args].concat());
        self.run("update a session", move |shared, conn| async move {
            let (answer, _) = on_session(&shared, &conn, &key, |s| &s.edit, args, now).await?;
            match answer {
                Value::Int(-1) => Ok(EditOutcome::NotFound),
                Value::Int(-2) => Ok(EditOutcome::Declined),
                Value::Array(items) => match items.as_slice() {
                    [version, value] => Ok(EditOutcome::Edited {
                        version: as_int(version, "an edit")? as u64,
                        value: as_int(value, "an edit")?,
                    }),
                    _ => Err(corrupt("an unexpected answer to an edit")),
                },
                other => Err(corrupt(format!(
                    "an unexpected answer to an edit: {other:?}"
                ))),
            }
        })
        .await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_active: Timestamp,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let key = *key;
        let args = Arc::new(vec![ms(last_active), ms(expires_at)]);
        self.run("refresh a session", move |shared, conn| async move {
            let (touched, _) = on_session(&shared, &conn, &key, |s| &s.touch, args, now).await?;
            Ok(touched == Value::Int(1))
        })
        .await
    }

    async fn delete(&self, key: &SessionKey, now: Timestamp) -> Result<bool> {
        let key = *key;
        self.run("delete a session", move |shared, mut conn| async move {
            let (answer, bucket) =
                on_session(&shared, &conn, &key, |s| &s.delete, Arc::default(), now).await?;
            let Value::Array(answer) = answer else {
                return Err(corrupt("an unexpected answer to a delete"));
            };
            let Some((live, tail)) = answer.split_first() else {
                return Err(corrupt("an empty answer to a delete"));
            };
            shared.settle(&mut conn, tail).await?;
            if bucket != bucket_of_key(&key) {
                shared.unlink(&mut conn, [key]).await?;
            }
            Ok(*live == Value::Int(1))
        })
        .await
    }

    async fn rotate(&self, old: &SessionKey, new: &SessionKey, now: Timestamp) -> Result<bool> {
        let (old, new) = (*old, *new);
        self.run("rotate a session", move |shared, mut conn| async move {
            // The session stays in its user's bucket: first assumed to be
            // the old key's, then the one a link there names.
            let mut home = bucket_of_key(&old);
            loop {
                let mut made_link = false;
                if bucket_of_key(&new) != home {
                    match shared.claim_link(&mut conn, &new, home, now).await? {
                        Claim::Taken => return Err(Failure::RotateTargetTaken),
                        Claim::Linked { made } => made_link = made,
                    }
                }
                let moved: Result<i64, Failure> = shared
                    .invoke(&shared.scripts.rotate, home, now)
                    .key(shared.keys.session(&old, home))
                    .key(shared.keys.session(&new, home))
                    .arg(keys::member(&old))
                    .arg(keys::member(&new))
                    .invoke_async(&mut conn)
                    .await
                    .map_err(Failure::from);
                if made_link && !matches!(moved, Ok(1)) {
                    shared.unlink(&mut conn, [new]).await?;
                }
                match moved {
                    Err(Failure::Linked {
                        bucket,
                        new_key: false,
                    }) if home == bucket_of_key(&old) && bucket != home => home = bucket,
                    Err(Failure::Linked {
                        bucket,
                        new_key: true,
                    }) => {
                        if !shared
                            .clear_stale_link(&mut conn, &new, bucket, now)
                            .await?
                        {
                            return Err(Failure::RotateTargetTaken);
                        }
                    }
                    Ok(-1) => return Err(Failure::RotateTargetTaken),
                    Ok(1) => {
                        if home != bucket_of_key(&old) {
                            shared.unlink(&mut conn, [old]).await?;
                        }
                        shared.replicated(&conn, home).await?;
                        return Ok(true);
                    }
                    Ok(_) => return Ok(false),
                    Err(failure) => return Err(failure),
                }
            }
        })
        .await
    }

    async fn list_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<(SessionKey, SessionRecord)>> {
        let (user, index) = (user_id.to_owned(), self.shared.keys.user(user_id));
        let home = keys::home_bucket(user_id);
        self.run(
            "list a user's sessions",
            move |shared, mut conn| async move {
                let flat: Vec<Option<Vec<u8>>> = shared
                    .invoke(&shared.scripts.list_user, home, now)
                    .key(&index.by_expiry)
                    .invoke_async(&mut conn)
                    .await?;
                let mut sessions = decode_sessions(flat, now)?;
                sessions.retain(|(_, record)| *record.user_id == *user);
                sessions.sort_by(|(ka, a), (kb, b)| (a.created_at, ka).cmp(&(b.created_at, kb)));
                Ok(sessions)
            },
        )
        .await
    }

    async fn delete_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
        now: Timestamp,
    ) -> Result<u64> {
        let index = Arc::new(self.shared.keys.user(user_id));
        let home = keys::home_bucket(user_id);
        let user: Arc<str> = user_id.into();
        let keep: Arc<str> = keep.map(keys::member).unwrap_or_default().into();
        let mut total = 0;
        // Batches in separate script runs, so other clients get the server
        // in between however many sessions the user has.
        loop {
            let (index, user, keep) = (index.clone(), user.clone(), keep.clone());
            let (ended, more) = self
                .run(
                    "end a user's sessions",
                    move |shared, mut conn| async move {
                        let answer: Vec<Value> = shared
                            .invoke(&shared.scripts.delete_user, home, now)
                            .key(&index.by_expiry)
                            .key(&index.by_creation)
                            .arg(&*user)
                            .arg(&*keep)
                            .arg(END_USER_BATCH)
                            .invoke_async(&mut conn)
                            .await?;
                        match answer.as_slice() {
                            [ended, more, gone @ ..] => {
                                shared.settle(&mut conn, gone).await?;
                                shared.replicated(&conn, home).await?;
                                Ok((
                                    as_int(ended, "ending a user's sessions")?,
                                    as_int(more, "ending a user's sessions")?,
                                ))
                            }
                            _ => Err(corrupt("an unexpected answer to ending a user's sessions")),
                        }
                    },
                )
                .await?;
            total += ended.max(0) as u64;
            if more == 0 {
                return Ok(total);
            }
        }
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        self.drive(move |shared| purge(shared, now)).await
    }

    async fn rate_load(&self, key: &SessionKey) -> Result<RateRead> {
        let key = *key;
        self.run(
            "read rate-limit state",
            move |shared, mut conn| async move {
                // One round trip: the state and the server's clock.
                let (tat_us, (seconds, micros)): (Option<i64>, (i64, i64)) = redis::pipe()
                    .cmd("GET")
                    .arg(shared.keys.rate(&key))
                    .cmd("TIME")
                    .query_async(&mut conn)
                    .await?;
                Ok(RateRead {
                    tat_us,
                    store_now_us: Some(seconds.saturating_mul(1_000_000).saturating_add(micros)),
                })
            },
        )
        .await
    }

    async fn rate_store(
        &self,
        key: &SessionKey,
        expected: Option<i64>,
        tat_us: i64,
        now: Timestamp,
    ) -> Result<bool> {
        let key = *key;
        let expected = expected.map_or_else(String::new, |tat| tat.to_string());
        self.run(
            "write rate-limit state",
            move |shared, mut conn| async move {
                let written: i64 = shared
                    .invoke(&shared.scripts.rate, bucket_of_key(&key), now)
                    .key(shared.keys.rate(&key))
                    .arg(&expected)
                    .arg(tat_us)
                    .arg(ms(rate_state_expiry(tat_us)))
                    .invoke_async(&mut conn)
                    .await?;
                Ok(written == 1)
            },
        )
        .await
    }

    async fn count(&self, now: Timestamp) -> Result<u64> {
        self.run("count sessions", move |shared, conn| async move {
            // Live means expires_at > now: each bucket's expiry index counts
            // them in O(log n), without walking the keyspace.
            let since = format!("({}", now.millis());
            let counts = (0..keys::BUCKETS).map(|bucket| {
                let (index, since, mut conn) =
                    (shared.keys.expiry(bucket), since.clone(), conn.clone());
                async move {
                    redis::cmd("ZCOUNT")
                        .arg(index)
                        .arg(since)
                        .arg("+inf")
                        .query_async::<u64>(&mut conn)
                        .await
                }
            });
            Ok(try_join_all(counts).await?.into_iter().sum())
        })
        .await
    }

    async fn export_page(
        &self,
        cursor: &ExportCursor,
        limit: u32,
        now: Timestamp,
    ) -> Result<ExportPage> {
        let (mut bucket, mut scan) = match cursor.as_str() {
            "" => (0, 0),
            text => text
                .split_once(':')
                .and_then(|(b, s)| Some((b.parse::<u16>().ok()?, s.parse::<u64>().ok()?)))
                .filter(|&(b, _)| b < keys::BUCKETS)
                .ok_or_else(|| cursor.invalid("Redis"))?,
        };
        self.run("export sessions", move |shared, mut conn| async move {
            // ZSCAN steps over the buckets' expiry indexes in turn, never a
            // scan of the keyspace, until the page is full.
            let mut sessions = Vec::new();
            while sessions.len() < limit as usize {
                let flat: Vec<Option<Vec<u8>>> = shared
                    .invoke(&shared.scripts.export, bucket, now)
                    .arg(scan)
                    .arg(limit)
                    .invoke_async(&mut conn)
                    .await?;
                let mut rest = flat.into_iter();
                let next = rest
                    .next()
                    .flatten()
                    .and_then(|text| String::from_utf8(text).ok()?.parse::<u64>().ok())
                    .ok_or_else(|| corrupt("an export step without a cursor"))?;
                sessions.extend(decode_sessions(rest.collect(), now)?);
                scan = next;
                if scan == 0 {
                    bucket += 1;
                    if bucket == keys::BUCKETS {
                        return Ok(ExportPage {
                            sessions,
                            next: None,
                        });
                    }
                }
            }
            Ok(ExportPage {
                sessions,
                next: Some(ExportCursor::new(format!("{bucket}:{scan}"))),
            })
        })
        .await
    }

    async fn import_many(
        &self,
        sessions: &[(SessionKey, SessionRecord)],
        now: Timestamp,
    ) -> Result<Vec<ImportOutcome>> {
        let mut done = vec![ImportOutcome::Expired; sessions.len()];
        let live: Vec<usize> = (0..sessions.len())
            .filter(|&i| sessions[i].1.is_live(now))
            .collect();
        let items: Arc<Vec<Importing>> = Arc::new(
            live.iter()
                .map(|&i| Importing::new(&self.shared.keys, &sessions[i].0, &sessions[i].1))
                .collect(),
        );
        let stored = self
            .run("import sessions", move |shared, conn| async move {
                import_batch(&shared, &conn, &items, now).await
            })
            .await?;
        for (&i, outcome) in live.iter().zip(stored) {
            done[i] = match outcome {
                1 => ImportOutcome::Created,
                2 => ImportOutcome::Updated,
                3 => ImportOutcome::Unchanged,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "session {} belongs to another user in the target store; nothing was \
                         written for it",
                        sessions[i].0.to_hex()
                    )));
                }
            };
        }
        Ok(done)
    }

    fn token_route(&self, user_id: &str) -> Option<u16> {
        Some(keys::home_bucket(user_id))
    }

    fn layout_version(&self) -> i64 {
        // The first kept user indexes as sets, the second by expiry, the
        // third files sessions in buckets (see `keys`).
        3
    }

    fn watch_expiry(&self, listener: ExpiryListener) {
        self.shared.expiry.set(listener);
        let mut sweeper = self.sweeper.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(runtime) = self.live_runtime() else {
            return; // closed, or a forked child: no sweeps from here
        };
        if sweeper.is_some() {
            return;
        }
        let shared = Arc::downgrade(&self.shared);
        let runtime = Arc::downgrade(&runtime);
        let clock = Arc::clone(&self.clock);
        let started = Periodic::start("redis-session-sweeper", self.sweep_interval, move || {
            let (Some(shared), Some(runtime)) = (shared.upgrade(), runtime.upgrade()) else {
                return Tick::Stop;
            };
            // A failed sweep (the server away) is tried again next tick;
            // Redis keeps expired records for KEEP_EXPIRED meanwhile.
            let _ = runtime.block_on(purge(shared, clock.now()));
            Tick::Sleep
        });
        // Without a thread, creates still sweep (and report) a few.
        *sweeper = started.ok();
    }

    async fn close(&self) -> Result<()> {
        self.shutdown();
        Ok(())
    }
}

/// Removes every expired session, reporting each (see `Shared::settle`):
/// a batch in every bucket at once, then again in those that had more, so
/// other clients get the server in between. Runs on the store's runtime.
async fn purge(shared: Arc<Shared>, now: Timestamp) -> Result<u64> {
    let mut total = 0;
    let mut pending: Vec<u16> = (0..keys::BUCKETS).collect();
    while !pending.is_empty() {
        let buckets = Arc::new(pending);
        let swept = Arc::clone(&shared)
            .attempt("remove expired sessions", move |shared, conn| async move {
                let batches = buckets.iter().map(|&bucket| {
                    let (shared, mut conn) = (Arc::clone(&shared), conn.clone());
                    async move {
                        let answer: Vec<Value> = shared
                            .invoke(&shared.scripts.purge, bucket, now)
                            .arg(SWEEP_BATCH)
                            .invoke_async(&mut conn)
                            .await?;
                        match answer.as_slice() {
                            [removed, read, gone @ ..] => {
                                shared.settle(&mut conn, gone).await?;
                                let read = as_int(read, "a purge")?;
                                let more = read >= i64::from(SWEEP_BATCH);
                                Ok((as_int(removed, "a purge")?, more.then_some(bucket)))
                            }
                            _ => Err(corrupt("an unexpected answer to a purge")),
                        }
                    }
                });
                try_join_all(batches).await
            })
            .await?;
        total += swept
            .iter()
            .map(|(removed, _)| removed.max(&0))
            .sum::<i64>() as u64;
        pending = swept.into_iter().filter_map(|(_, more)| more).collect();
    }
    Ok(total)
}

/// The live sessions of a script's answer: per session, its member followed
/// by its fields (see `list_user.lua`); ones gone meanwhile are left out.
pub(crate) fn decode_sessions(
    flat: Vec<Option<Vec<u8>>>,
    now: Timestamp,
) -> Result<Vec<(SessionKey, SessionRecord)>, Failure> {
    let mut sessions = Vec::with_capacity(flat.len() / (FIELDS.len() + 1));
    let mut rest = flat.into_iter();
    while let Some(member) = rest.next() {
        let key = member
            .as_deref()
            .and_then(keys::parse_member)
            .ok_or_else(|| corrupt("an index entry that is not a session hash"))?;
        let fields: Vec<_> = rest.by_ref().take(FIELDS.len()).collect();
        if let Some(record) = codec::decode(fields).map_err(Failure::Corrupt)?
            && record.is_live(now)
        {
            sessions.push((key, record));
        }
    }
    Ok(sessions)
}

/// A pipeline's failure as its first command's own error, so that it reads
/// (and maps to an engine error) like a single command's: the server refuses
/// every command of a pipeline alike, say without a password.
fn first_server_error(err: RedisError) -> RedisError {
    match err.clone().into_server_errors() {
        Some(errors) if !errors.is_empty() => errors[0].1.clone().into(),
        _ => err,
    }
}

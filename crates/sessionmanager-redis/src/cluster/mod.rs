//! Redis Cluster: a connection per master, and a router that sends each
//! command to the master of its key's slot.
//!
//! The router follows the cluster's answers: `MOVED` (the slot lives
//! elsewhere now: learn it, refresh the map, send there), `ASK` (the slot
//! is moving: send there once, after `ASKING`), `TRYAGAIN` (a multi-key
//! command met a half-moved slot), `CLUSTERDOWN` and `MASTERDOWN` (no master
//! serves the slot yet, during a failover) and `READONLY` (a failover made
//! the node a replica), none of which ran the command, and a node that
//! cannot be reached, which was sent nothing: it tries again, within the
//! store's timeout, on the master the refreshed map names. A command that
//! was sent and lost its answer with the connection is never sent again: it
//! may have run.
//!
//! A node that stops answering (stopped, or cut off without a reset) holds
//! up only its own slots: a request the store's timeout abandons marks the
//! node suspect, and the map is then read from the other nodes first, each
//! given a third of the timeout; if none answers, the map as it was serves.
//!
//! Every node connection is a [`Link`]: multiplexed, over TLS if the store
//! uses it, checked after sitting idle, and opened again when it died.

pub(crate) mod slots;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, ErrorKind, Pipeline, RedisConnectionInfo, RedisError, RedisFuture, Value};
use tokio_rustls::TlsConnector;

use crate::config::Address;
use crate::link::{ConnectError, Link, connection_lost};
use slots::{SlotMap, parse_node, slot_of_command, slot_of_pipeline};

/// The pause before trying again while a slot moves or a failover runs.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// How long a node that left a request unanswered is asked for the slot map
/// only after every other node.
const SUSPECT_FOR: Duration = Duration::from_secs(10);

/// The nodes of one cluster and which of them serves each slot.
pub(crate) struct Cluster {
    /// The addresses the store was given, asked when no known master answers.
    seeds: Vec<Address>,
    info: RedisConnectionInfo,
    tls: Option<TlsConnector>,
    links: Mutex<HashMap<Address, Arc<Link>>>,
    map: RwLock<Arc<SlotMap>>,
    /// Set when an answer showed the map out of date.
    stale: AtomicBool,
    /// Held while the map is read again, so callers that find it stale
    /// read it once between them.
    refreshing: tokio::sync::Mutex<()>,
    /// How long one node may take to give the slot map before the next is
    /// asked: a node that stopped (or sits behind a partition) accepts the
    /// connection and never answers.
    per_node: Duration,
    /// Nodes that lately left a request unanswered, and when.
    suspects: Mutex<HashMap<Address, Instant>>,
}

/// Why the slot map could not be read.
pub(crate) enum DiscoveryError {
    /// No node answered: each address tried, with why.
    Unreachable(Vec<(Address, ConnectError)>),
    /// A node refused the connection itself: credentials, TLS.
    Connect(ConnectError),
    /// A node answered `CLUSTER SLOTS` with an error: it is not in cluster
    /// mode, or refused the command.
    Refused(Address, RedisError),
    /// A node answered something that is not a slot map.
    Garbled(Address, String),
}

impl Cluster {
    /// A cluster reached through `seeds`, whose operations may each take
    /// `timeout`.
    pub(crate) fn new(
        seeds: Vec<Address>,
        info: RedisConnectionInfo,
        tls: Option<TlsConnector>,
        timeout: Duration,
    ) -> Self {
        Self {
            seeds,
            info,
            tls,
            links: Mutex::new(HashMap::new()),
            map: RwLock::new(Arc::new(SlotMap::empty())),
            stale: AtomicBool::new(true),
            refreshing: tokio::sync::Mutex::new(()),
            per_node: (timeout / 3).max(Duration::from_millis(50)),
            suspects: Mutex::new(HashMap::new()),
        }
    }

    /// The seed addresses, for messages.
    pub(crate) fn seeds(&self) -> &[Address] {
        &self.seeds
    }

    /// The connection to the node at `address`.
    fn link(&self, address: &Address) -> Arc<Link> {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(links.entry(address.clone()).or_insert_with(|| {
            Arc::new(Link::to(
                address.clone(),
                self.info.clone(),
                self.tls.clone(),
            ))
        }))
    }

    fn map(&self) -> Arc<SlotMap> {
        Arc::clone(&self.map.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The current map, read again first if it is out of date. If no node
    /// gives a fresh one, the map as it was is the best knowledge there is
    /// (a node that stopped answering holds up its own slots only), unless
    /// there is none yet.
    pub(crate) async fn current_map(&self) -> Result<Arc<SlotMap>, DiscoveryError> {
        if self.stale.load(Ordering::Acquire)
            && let Err(err) = self.refresh().await
        {
            let map = self.map();
            return if map.masters().is_empty() {
                Err(err)
            } else {
                Ok(map)
            };
        }
        Ok(self.map())
    }

    /// Reads the slot map from the first node that answers within
    /// `per_node`: the known masters, then the seeds, the nodes that lately
    /// left a request unanswered last.
    pub(crate) async fn refresh(&self) -> Result<(), DiscoveryError> {
        let _refreshing = self.refreshing.lock().await;
        if !self.stale.load(Ordering::Acquire) {
            // Another caller read it while this one waited.
            return Ok(());
        }
        let mut unreachable = Vec::new();
        for address in self.candidates() {
            let asked = tokio::time::timeout(self.per_node, self.ask_for_map(&address)).await;
            let answer = match asked {
                Ok(Ok(answer)) => answer,
                Ok(Err(AskError::Unreachable(err))) => {
                    unreachable.push((address, err));
                    continue;
                }
                Ok(Err(AskError::Refused(err))) => return Err(err),
                Err(_elapsed) => {
                    self.suspect(&address);
                    self.link(&address).forget();
                    let silent = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {} ms", self.per_node.as_millis()),
                    );
                    unreachable.push((address, ConnectError::Redis(silent.into())));
                    continue;
                }
            };
            let map = SlotMap::parse(answer, &address)
                .map_err(|what| DiscoveryError::Garbled(address.clone(), what))?;
            *self.map.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
            self.stale.store(false, Ordering::Release);
            return Ok(());
        }
        Err(DiscoveryError::Unreachable(unreachable))
    }

    /// The nodes to ask for the slot map, each once, in the order to ask
    /// them.
    fn candidates(&self) -> Vec<Address> {
        let mut candidates: Vec<Address> = Vec::new();
        for address in self.map().masters().iter().chain(&self.seeds) {
            if !candidates.contains(address) {
                candidates.push(address.clone());
            }
        }
        let suspects = self.suspects.lock().unwrap_or_else(PoisonError::into_inner);
        // Stable: otherwise the order stays the map's, then the seeds'.
        candidates.sort_by_key(|address| {
            suspects
                .get(address)
                .is_some_and(|since| since.elapsed() < SUSPECT_FOR)
        });
        candidates
    }

    /// `CLUSTER SLOTS` as the node at `address` answers it.
    async fn ask_for_map(&self, address: &Address) -> Result<Value, AskError> {
        let link = self.link(address);
        let mut conn = match link.connection().await {
            Ok(conn) => conn,
            Err(ConnectError::Redis(err)) if crate::error::is_unreachable(&err) => {
                return Err(AskError::Unreachable(ConnectError::Redis(err)));
            }
            Err(err) => return Err(AskError::Refused(DiscoveryError::Connect(err))),
        };
        let answer: Result<Value, RedisError> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await;
        match answer {
            Ok(answer) => {
                link.used();
                Ok(answer)
            }
            Err(err) if connection_lost(&err) => {
                link.forget();
                Err(AskError::Unreachable(ConnectError::Redis(err)))
            }
            Err(err) => Err(AskError::Refused(DiscoveryError::Refused(
                address.clone(),
                err,
            ))),
        }
    }

    /// Records that the node at `address` left a request unanswered.
    fn suspect(&self, address: &Address) {
        self.suspects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(address.clone(), Instant::now());
    }

    /// Records that `address` serves `slot` (a `MOVED` answer), and that the
    /// rest of the map may be out of date too.
    fn learn(&self, slot: u16, address: Address) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let mut updated = SlotMap::clone(&map);
        updated.learn(slot, address);
        *map = Arc::new(updated);
        self.stale.store(true, Ordering::Release);
    }

    fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// A live connection to every master of the current map (to load
    /// scripts into each, say).
    pub(crate) async fn masters(
        &self,
    ) -> Result<Vec<(Address, MultiplexedConnection)>, ConnectError> {
        let mut connections = Vec::new();
        for address in self.map().masters() {
            let conn = self.link(address).connection().await?;
            connections.push((address.clone(), conn));
        }
        Ok(connections)
    }

    /// Drops every node connection (the store closes).
    pub(crate) fn forget(&self) {
        for link in self
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            link.forget();
        }
    }
}

impl DiscoveryError {
    /// The store's failure, in words that name the nodes.
    pub(crate) fn into_failure(self) -> crate::error::Failure {
        use crate::error::Failure;
        match self {
            Self::Unreachable(tried) => {
                let tried: Vec<String> = tried
                    .iter()
                    .map(|(address, err)| format!("{address} ({})", describe(err)))
                    .collect();
                Failure::Cluster {
                    message: format!(
                        "no node of the Redis Cluster answered: {}",
                        tried.join(", ")
                    ),
                    transient: true,
                }
            }
            Self::Connect(err) => Failure::Connect(err),
            Self::Refused(address, err) => {
                let message = if err.to_string().contains("cluster support disabled") {
                    format!(
                        "Redis at {address} is not in cluster mode (cluster-enabled no): \
                         for a standalone server write redis://{address}"
                    )
                } else {
                    format!("Redis at {address} refused CLUSTER SLOTS: {err}")
                };
                Failure::Cluster {
                    message,
                    transient: false,
                }
            }
            Self::Garbled(address, what) => Failure::Corrupt(format!(
                "{what} (from {address}, asked which node serves each slot)"
            )),
        }
    }
}

/// Why one node did not give the slot map.
enum AskError {
    /// It could not be reached: the next node may answer.
    Unreachable(ConnectError),
    /// It refused: every node of the cluster would.
    Refused(DiscoveryError),
}

/// A connect error in a few words.
fn describe(err: &ConnectError) -> String {
    match err {
        ConnectError::Redis(err) => err.to_string(),
        ConnectError::Tls(err) => err.to_string(),
        ConnectError::Name(err) => err.to_string(),
        ConnectError::Sentinel(err) => err.message.clone(),
    }
}

/// What the router sends: one command, or part of a pipeline.
#[derive(Clone, Copy)]
enum Request<'a> {
    One(&'a Cmd),
    Many(&'a Pipeline, usize, usize),
}

impl Request<'_> {
    fn slot(self) -> Option<u16> {
        match self {
            Self::One(cmd) => slot_of_command(cmd),
            Self::Many(pipeline, ..) => slot_of_pipeline(pipeline),
        }
    }

    /// Sends the request on `conn`, after `ASKING` if `asking`.
    async fn send(self, conn: &mut MultiplexedConnection, asking: bool) -> Answer {
        if !asking {
            return match self {
                Self::One(cmd) => Answer::One(conn.req_packed_command(cmd).await),
                Self::Many(pipeline, offset, count) => {
                    Answer::Many(conn.req_packed_commands(pipeline, offset, count).await)
                }
            };
        }
        let mut asked = redis::pipe();
        asked.cmd("ASKING");
        let (offset, count) = match self {
            Self::One(cmd) => {
                asked.add_command(cmd.clone());
                (1, 1)
            }
            Self::Many(pipeline, offset, count) => {
                for cmd in pipeline.cmd_iter() {
                    asked.add_command(cmd.clone());
                }
                (offset + 1, count)
            }
        };
        let answers = conn.req_packed_commands(&asked, offset, count).await;
        match self {
            Self::One(_) => Answer::One(answers.and_then(|mut values| {
                values
                    .pop()
                    .ok_or_else(|| RedisError::from((ErrorKind::Client, "no answer after ASKING")))
            })),
            Self::Many(..) => Answer::Many(answers),
        }
    }
}

/// What a node answered.
enum Answer {
    One(Result<Value, RedisError>),
    Many(Result<Vec<Value>, RedisError>),
}

/// What an answer asks the router to do.
enum Redirect {
    /// The slot lives at this node now.
    Moved(u16, Address),
    /// Ask this node, once.
    Ask(Address),
    /// Nothing ran: try again shortly (with a fresh map if `refresh`).
    Again { refresh: bool },
}

impl Answer {
    fn redirect(&self) -> Option<Redirect> {
        match self {
            Self::One(Ok(Value::ServerError(err))) => redirect_of(err.code(), err.details()),
            Self::One(Err(err)) => redirect_of(err.code()?, err.detail()),
            Self::Many(Ok(values)) => values.iter().find_map(|value| match value {
                Value::ServerError(err) => redirect_of(err.code(), err.details()),
                _ => None,
            }),
            Self::Many(Err(err)) => redirect_of(err.code()?, err.detail()),
            Self::One(Ok(_)) => None,
        }
    }

    fn lost_connection(&self) -> bool {
        match self {
            Self::One(Err(err)) | Self::Many(Err(err)) => connection_lost(err),
            _ => false,
        }
    }
}

/// What the error `code` (with `detail`) asks of the router, if anything.
fn redirect_of(code: &str, detail: Option<&str>) -> Option<Redirect> {
    let node = || {
        let mut words = detail?.split_whitespace();
        let slot = words.next()?.parse::<u16>().ok()?;
        Some((slot, parse_node(words.next()?)?))
    };
    match code {
        "MOVED" => node().map(|(slot, address)| Redirect::Moved(slot, address)),
        "ASK" => node().map(|(_, address)| Redirect::Ask(address)),
        "TRYAGAIN" | "LOADING" => Some(Redirect::Again { refresh: false }),
        "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" => Some(Redirect::Again { refresh: true }),
        // A script met a key of its slot that a slot move took to another
        // node already; the scripts read every such key before writing
        // anything (`reach` in lua/prelude.lua), so it changed nothing.
        _ if detail.is_some_and(|d| d.contains("non local key")) => {
            Some(Redirect::Again { refresh: true })
        }
        _ => None,
    }
}

/// A request sent to a node and not answered yet. Dropped unanswered (the
/// store's timeout gave up on it), it drops that node's connection, which
/// may never answer again, and has the map read again before the next
/// call: the node may be down, its slots about to move.
struct Waiting<'a> {
    cluster: &'a Cluster,
    address: &'a Address,
    link: &'a Link,
    answered: bool,
}

impl Waiting<'_> {
    fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.link.forget();
            self.cluster.suspect(self.address);
            self.cluster.mark_stale();
        }
    }
}

/// A handle that sends each command to the master of its key's slot.
/// Commands without a key go where the handle's last keyed command went
/// (a `SCRIPT LOAD` that an `EVALSHA` answered `NOSCRIPT` for, say).
#[derive(Clone)]
pub(crate) struct ClusterConnection {
    cluster: Arc<Cluster>,
    last_slot: u16,
}

impl ClusterConnection {
    pub(crate) fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            last_slot: 0,
        }
    }

    /// This handle, sending keyless commands to the master of `key`'s slot.
    pub(crate) fn aimed_at(&self, key: &str) -> Self {
        Self {
            cluster: Arc::clone(&self.cluster),
            last_slot: slots::slot_of(key.as_bytes()),
        }
    }

    async fn route(&mut self, request: Request<'_>) -> Answer {
        let slot = request.slot().unwrap_or(self.last_slot);
        self.last_slot = slot;
        let mut asking: Option<Address> = None;
        loop {
            let address = match asking.take() {
                Some(address) => Ok((address, true)),
                None => self.master_of(slot).await.map(|address| (address, false)),
            };
            let (address, asked) = match address {
                Ok(found) => found,
                Err(()) => {
                    // No node serves the slot yet (or none answered): the
                    // store's timeout ends the wait.
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let link = self.cluster.link(&address);
            let mut conn = match link.connection().await {
                Ok(conn) => conn,
                Err(ConnectError::Redis(err)) if !crate::error::is_unreachable(&err) => {
                    return Answer::One(Err(err));
                }
                Err(_) => {
                    // Nothing was sent: the node may be down, its slots
                    // about to move to a replica.
                    self.cluster.mark_stale();
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let waiting = Waiting {
                cluster: &self.cluster,
                address: &address,
                link: &link,
                answered: false,
            };
            let answer = request.send(&mut conn, asked).await;
            waiting.answered();
            match answer.redirect() {
                Some(Redirect::Moved(moved, address)) => self.cluster.learn(moved, address),
                Some(Redirect::Ask(address)) => asking = Some(address),
                Some(Redirect::Again { refresh }) => {
                    if refresh {
                        self.cluster.mark_stale();
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                None => {
                    if answer.lost_connection() {
                        link.forget();
                        self.cluster.mark_stale();
                    } else {
                        link.used();
                    }
                    return answer;
                }
            }
        }
    }

    /// The master of `slot` by the current map, reading it again if it is
    /// out of date or names none.
    async fn master_of(&self, slot: u16) -> Result<Address, ()> {
        let map = self.cluster.current_map().await.map_err(drop)?;
        if let Some(address) = map.master(slot) {
            return Ok(address.clone());
        }
        self.cluster.mark_stale();
        let map = self.cluster.current_map().await.map_err(drop)?;
        map.master(slot).cloned().ok_or(())
    }
}

impl ConnectionLike for ClusterConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match self.route(Request::One(cmd)).await {
                Answer::One(answer) => answer,
                Answer::Many(answers) => answers?
                    .pop()
                    .ok_or_else(|| RedisError::from((ErrorKind::Client, "no answer to a command"))),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match self.route(Request::Many(pipeline, offset, count)).await {
                Answer::Many(answer) => answer,
                Answer::One(answer) => answer.map(|value| vec![value]),
            }
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

//! Finding the master through Redis Sentinel, and noticing when it moves.
//!
//! As the Sentinel client guidelines ask: the sentinels are asked in turn
//! (`SENTINEL get-master-addr-by-name`), the one that answered first next
//! time; the server named is checked with `ROLE` (a sentinel may answer
//! from before a failover); and the store listens to every sentinel's
//! `+switch-master` announcements (the sentinel that ran the failover
//! announces it first, the others up to two seconds later), so a
//! connection to a master that was demoted is dropped at once. Without that
//! a client keeps writing to the old master until the sentinels reconfigure
//! it as a replica (about ten seconds after a manual failover), and every
//! one of those writes is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::{RedisConnectionInfo, RedisError, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use crate::config::{Address, SentinelConfig};
use crate::link::{ConnectError, Stream, connect_stream, start};

/// The channel on which sentinels announce a new master.
const SWITCH_MASTER: &str = "+switch-master";

/// Why no usable master was found.
pub(crate) struct SentinelError {
    pub(crate) message: String,
    /// Whether waiting may help: no sentinel answered, or the master named
    /// is (still) a replica while a failover runs. Otherwise a setting is
    /// wrong (an unknown service, refused sentinel credentials).
    pub(crate) transient: bool,
    pub(crate) source: Option<RedisError>,
}

/// The sentinels of one master.
pub(crate) struct Sentinels {
    shared: Arc<Watch>,
    /// How long one sentinel may take to answer before the next is asked.
    per_sentinel: Duration,
}

/// What the announcement listener shares with the store.
struct Watch {
    service: String,
    /// The sentinels' own credentials.
    info: RedisConnectionInfo,
    /// The sentinels, the last one that answered first.
    order: Mutex<Vec<Address>>,
    tls: Option<TlsConnector>,
    /// Set by a listener when a sentinel announces a new master.
    moved: AtomicBool,
    /// Each sentinel, and whether a listener is subscribed to it (or subscribing).
    listeners: Vec<(Address, AtomicBool)>,
    /// When a listener was last started in the background, so sentinels
    /// that are all down are not asked again by every operation.
    last_relisten: Mutex<Option<Instant>>,
}

/// How often a lost listener is started again in the background.
const RELISTEN_EVERY: Duration = Duration::from_secs(1);

impl Sentinels {
    pub(crate) fn new(
        config: &SentinelConfig,
        tls: Option<TlsConnector>,
        timeout: Duration,
    ) -> Self {
        let mut info = RedisConnectionInfo::default();
        if let Some(user) = &config.username {
            info = info.set_username(user);
        }
        if let Some(password) = &config.password {
            info = info.set_password(password);
        }
        let count = u32::try_from(config.sentinels.len().max(1)).unwrap_or(u32::MAX);
        Self {
            shared: Arc::new(Watch {
                service: config.service.clone(),
                info,
                order: Mutex::new(config.sentinels.clone()),
                tls,
                moved: AtomicBool::new(false),
                listeners: config
                    .sentinels
                    .iter()
                    .map(|s| (s.clone(), AtomicBool::new(false)))
                    .collect(),
                last_relisten: Mutex::new(None),
            }),
            per_sentinel: timeout / count,
        }
    }

    /// Whether the sentinels announced a new master since the last call.
    pub(crate) fn master_moved(&self) -> bool {
        self.shared.moved.swap(false, Ordering::AcqRel)
    }

    /// Lets the listeners read announcements that arrived while the store
    /// was idle (their sockets are read only while the runtime runs), and
    /// starts listeners again for sentinels that were lost, now and then.
    pub(crate) async fn heed_announcements(&self) {
        let all_listening = self
            .shared
            .listeners
            .iter()
            .all(|(_, on)| on.load(Ordering::Acquire));
        if !all_listening && self.relisten_due() {
            self.listen_to_all();
        }
        // The runtime reads the listeners' sockets when the operation first
        // yields, and runs the listeners when it yields again.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }

    /// Starts a listener on each sentinel that has none.
    fn listen_to_all(&self) {
        for at in 0..self.shared.listeners.len() {
            let watch = Arc::clone(&self.shared);
            let per_sentinel = self.per_sentinel;
            tokio::spawn(async move {
                let _ = tokio::time::timeout(per_sentinel, listen(&watch, at)).await;
            });
        }
    }

    fn relisten_due(&self) -> bool {
        let mut last = self
            .shared
            .last_relisten
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < RELISTEN_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Where the sentinels say the master is now. Listeners are started
    /// first (they subscribe while the sentinels are asked), so a failover
    /// that ends just after the answer is heard about.
    pub(crate) async fn master(&self) -> Result<Address, ConnectError> {
        self.listen_to_all();
        let sentinels = self
            .shared
            .order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut failures = Vec::new();
        let mut last_error = None;
        let mut unknown = 0;
        for sentinel in &sentinels {
            match tokio::time::timeout(self.per_sentinel, self.ask(sentinel)).await {
                Ok(Ok(Some(master))) => {
                    self.prefer(sentinel);
                    return Ok(master);
                }
                Ok(Ok(None)) => {
                    unknown += 1;
                    failures.push(format!(
                        "{sentinel} knows no master {:?}",
                        self.shared.service
                    ));
                }
                Ok(Err(err)) => {
                    failures.push(format!("{sentinel}: {}", describe(&err)));
                    last_error = Some(err);
                }
                Err(_) => failures.push(format!(
                    "{sentinel} did not answer within {} ms",
                    self.per_sentinel.as_millis()
                )),
            }
        }
        let refused = matches!(&last_error, Some(ConnectError::Redis(e)) if refused_credentials(e));
        // A certificate refused now will be refused again.
        let tls_refused = matches!(
            &last_error,
            Some(ConnectError::Tls(_) | ConnectError::Name(_))
        );
        let transient = unknown == 0 && !refused && !tls_refused;
        let hint = if unknown == sentinels.len() {
            " (is the service name after the sentinels in the URL the one in `sentinel monitor`?)"
        } else if refused {
            " (the sentinels' own credentials are the \
             options sentinel_username and sentinel_password)"
        } else {
            ""
        };
        Err(ConnectError::Sentinel(SentinelError {
            message: format!("no sentinel named a master: {}{hint}", failures.join("; ")),
            transient,
            source: match last_error {
                Some(ConnectError::Redis(err)) => Some(err),
                _ => None,
            },
        }))
    }

    /// Checks that the server at `master` is a master: a sentinel that has
    /// not yet seen a failover may name the old one, now a replica.
    pub(crate) async fn confirm_master(
        &self,
        master: &Address,
        connection: &MultiplexedConnection,
    ) -> Result<(), ConnectError> {
        let mut connection = connection.clone();
        let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut connection).await?;
        match role.first() {
            Some(Value::BulkString(role)) if role == b"master" => Ok(()),
            _ => Err(ConnectError::Sentinel(SentinelError {
                message: format!(
                    "the sentinels name {master} as the master of {:?}, \
                     but it is a replica (a failover is under way)",
                    self.shared.service
                ),
                transient: true,
                source: None,
            })),
        }
    }

    /// Asks one sentinel where the master is.
    async fn ask(&self, sentinel: &Address) -> Result<Option<Address>, ConnectError> {
        let (stream, _) = connect_stream(self.shared.tls.as_ref(), sentinel).await?;
        let mut connection = match stream {
            // The connection's driver ends when it is dropped, after the question.
            Stream::Plain(stream) => start(&self.shared.info, stream).await?.0,
            Stream::Tls(stream, _) => start(&self.shared.info, stream).await?.0,
        };
        let master: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.shared.service)
            .query_async(&mut connection)
            .await?;
        Ok(master.map(|(host, port)| Address::new(host, port)))
    }

    /// Puts `sentinel` first, so the next discovery asks it first.
    fn prefer(&self, sentinel: &Address) {
        let mut order = self
            .shared
            .order
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = order.iter().position(|s| s == sentinel) {
            order[..=at].rotate_right(1);
        }
    }
}

/// Subscribes to the announcements of sentinel number `at` (unless a
/// listener already does) and reads them until the sentinel goes away,
/// setting `watch.moved` on each new master of the service.
async fn listen(watch: &Arc<Watch>, at: usize) {
    let (sentinel, listening) = &watch.listeners[at];
    if listening.swap(true, Ordering::AcqRel) {
        return;
    }
    let subscribed = async {
        let (stream, _) = connect_stream(watch.tls.as_ref(), sentinel).await?;
        Ok::<_, ConnectError>(match stream {
            Stream::Plain(stream) => subscribe(&watch.info, stream).await?,
            Stream::Tls(stream, _) => subscribe(&watch.info, stream).await?,
        })
    };
    // Cleared however this ends, the timeout of the caller included.
    let subscribing = Cleared(listening);
    let Ok(pubsub) = subscribed.await else {
        return;
    };
    let mut messages = pubsub.into_on_message();
    let watch = Arc::clone(watch);
    // Announcements come any time: read them on a task of their own,
    // whose flag is cleared when the sentinel goes away.
    std::mem::forget(subscribing);
    tokio::spawn(async move {
        let _stopped = Cleared(&watch.listeners[at].1);
        while let Some(message) = messages.next().await {
            // "<service> <old ip> <old port> <new ip> <new port>"
            let payload: String = message.get_payload().unwrap_or_default();
            if payload.split(' ').next() == Some(watch.service.as_str()) {
                watch.moved.store(true, Ordering::Release);
            }
        }
    });
}

/// Clears its flag when dropped.
struct Cleared<'a>(&'a AtomicBool);

impl Drop for Cleared<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn subscribe<S>(info: &RedisConnectionInfo, stream: S) -> Result<PubSub, RedisError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut pubsub = PubSub::new(info, stream).await?;
    pubsub.subscribe(SWITCH_MASTER).await?;
    Ok(pubsub)
}

fn refused_credentials(err: &RedisError) -> bool {
    err.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

fn describe(err: &ConnectError) -> String {
    match err {
        ConnectError::Redis(err) => err.to_string(),
        ConnectError::Tls(err) => {
            sessionmanager_tls::describe(err, crate::config::TLS_OPTION_NAMES)
        }
        ConnectError::Name(err) => err.to_string(),
        ConnectError::Sentinel(err) => err.message.clone(),
    }
}

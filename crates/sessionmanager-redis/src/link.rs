//! The store's one connection: multiplexed (every thread's commands share one
//! socket, pipelined), and replaced when it dies.
//!
//! redis-rs runs a connection's reader/writer as a "driver" task; this module
//! spawns that task itself so it knows when the socket closed (the server was
//! killed, restarted, or dropped us), and the next operation opens a new
//! connection before sending anything. The driver only runs while some
//! thread is inside an operation, so a connection that sat idle may have
//! been closed by the server unnoticed: before using a connection idle for
//! [`IDLE_CHECK`] or more, the store peeks at its socket (one non-blocking
//! system call) and opens a new one if the server hung up. Either way a
//! restarted server just works again, and no command is ever sent twice (a
//! command that failed may have run, so it is not retried).
//!
//! Through Sentinel the link asks the sentinels where the master is before
//! each new connection, checks that the server it reaches is a master, and
//! drops the connection as soon as the sentinels announce a failover
//! (see [`crate::sentinel`]).

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, RedisError, RedisResult};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Address, RedisConfig, Server};
use crate::sentinel::Sentinels;

/// How long the connection may sit unused before an operation checks that
/// the server has not hung up on it. A server restarts in far more than this,
/// so a busy application never pays for the check.
pub(crate) const IDLE_CHECK: Duration = Duration::from_millis(1);

/// A connection, whether its driver still runs, and a second handle on its
/// socket to peek at.
#[derive(Clone)]
struct Live {
    connection: MultiplexedConnection,
    alive: Arc<AtomicBool>,
    probe: Arc<std::net::TcpStream>,
}

impl Live {
    fn running(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Whether the server has not closed the socket: a peek that finds
    /// nothing to read (`WouldBlock`) or unread answers means it is open; end
    /// of stream or an error (a reset) means it is gone.
    fn open(&self) -> bool {
        match self.probe.peek(&mut [0u8; 1]) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e.kind() == ErrorKind::WouldBlock,
        }
    }
}

/// Where the server is.
enum Target {
    Fixed(Address),
    Sentinel(Sentinels),
}

/// Where to connect, and the current connection if there is one.
pub(crate) struct Link {
    target: Target,
    info: RedisConnectionInfo,
    /// The TLS client, for servers and sentinels alike.
    tls: Option<TlsConnector>,
    current: Mutex<Option<Live>>,
    /// Held while connecting, so threads that find the connection dead open
    /// one new connection between them, not one each.
    connecting: tokio::sync::Mutex<()>,
    /// When the link was made; `last_used` counts milliseconds from it.
    epoch: Instant,
    last_used: AtomicU64,
}

impl Link {
    /// Fails if the TLS settings name files it cannot read.
    pub(crate) fn new(config: &RedisConfig) -> sessionmanager_core::Result<Self> {
        let (info, tls) = credentials(config)?;
        let target = match &config.server {
            Server::Standalone(address) => {
                if tls.is_some() {
                    // A host that cannot be a certificate name fails now, not at each connect.
                    sessionmanager_tls::server_name(&address.host)?;
                }
                Target::Fixed(address.clone())
            }
            Server::Sentinel(sentinel) => {
                Target::Sentinel(Sentinels::new(sentinel, tls.clone(), config.timeout))
            }
            Server::Cluster(_) => {
                return Err(sessionmanager_core::Error::InvalidArgument(
                    "a cluster has a link per node (see the cluster module)".into(),
                ));
            }
        };
        Ok(Self::with_target(target, info, tls))
    }

    /// A link to the one server at `address` (a node of a cluster).
    pub(crate) fn to(
        address: Address,
        info: RedisConnectionInfo,
        tls: Option<TlsConnector>,
    ) -> Self {
        Self::with_target(Target::Fixed(address), info, tls)
    }

    fn with_target(target: Target, info: RedisConnectionInfo, tls: Option<TlsConnector>) -> Self {
        Self {
            target,
            info,
            tls,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            epoch: Instant::now(),
            last_used: AtomicU64::new(0),
        }
    }

    /// The current connection, unless its driver ended or (after it sat
    /// idle) the server closed it.
    fn usable(&self) -> Option<MultiplexedConnection> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Target::Sentinel(sentinels) = &self.target
            && sentinels.master_moved()
        {
            current.take();
            return None;
        }
        let live = current.as_ref().filter(|live| live.running())?;
        if self.idle() && !live.open() {
            return None;
        }
        Some(live.connection.clone())
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records that the server just answered.
    pub(crate) fn used(&self) {
        self.last_used.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    fn idle(&self) -> bool {
        let last = self.last_used.load(Ordering::Relaxed);
        self.elapsed_ms().saturating_sub(last) >= IDLE_CHECK.as_millis() as u64
    }

    /// The live connection, opening one if there is none or it died.
    /// Must run on the store's runtime.
    pub(crate) async fn connection(&self) -> Result<MultiplexedConnection, ConnectError> {
        if let Target::Sentinel(sentinels) = &self.target {
            sentinels.heed_announcements().await;
        }
        if let Some(connection) = self.usable() {
            return Ok(connection);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(connection) = self.usable() {
            return Ok(connection);
        }
        let live = self.connect().await?;
        let connection = live.connection.clone();
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(live);
        self.used();
        Ok(connection)
    }

    /// Whether an operation whose connection could not be opened, or whose
    /// write a replica refused, should try again: through Sentinel the
    /// master moves, and the next try asks the sentinels where it went.
    pub(crate) fn follows_failover(&self) -> bool {
        matches!(self.target, Target::Sentinel(_))
    }

    /// Drops the current connection (after a timeout: a server that stopped
    /// answering may never answer on it), so the next operation opens a new one.
    pub(crate) fn forget(&self) {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    async fn connect(&self) -> Result<Live, ConnectError> {
        match &self.target {
            Target::Fixed(address) => self.open(address).await,
            Target::Sentinel(sentinels) => {
                let master = sentinels.master().await?;
                let live = self.open(&master).await?;
                sentinels.confirm_master(&master, &live.connection).await?;
                Ok(live)
            }
        }
    }

    /// A connection to `address`, over TLS if the store uses it.
    async fn open(&self, address: &Address) -> Result<Live, ConnectError> {
        let info = &self.info;
        let (stream, probe) = connect_stream(self.tls.as_ref(), address).await?;
        let (connection, alive) = match stream {
            Stream::Plain(stream) => start(info, stream).await?,
            Stream::Tls(stream, refused) => start(info, stream).await.map_err(|e| {
                let tls = refused
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                tls.map_or(ConnectError::Redis(e), ConnectError::Tls)
            })?,
        };
        Ok(Live {
            connection,
            alive,
            probe,
        })
    }
}

/// The handshake's credentials and database, and the TLS client, that
/// `config` asks for. Fails if the TLS settings name files it cannot read.
pub(crate) fn credentials(
    config: &RedisConfig,
) -> sessionmanager_core::Result<(RedisConnectionInfo, Option<TlsConnector>)> {
    let mut info = RedisConnectionInfo::default().set_db(config.db);
    if let Some(user) = &config.username {
        info = info.set_username(user);
    }
    if let Some(password) = &config.password {
        info = info.set_password(password);
    }
    let tls = match &config.tls {
        Some(tls) => Some(TlsConnector::from(sessionmanager_tls::client_config(
            tls,
            crate::config::TLS_OPTION_NAMES,
        )?)),
        None => None,
    };
    Ok((info, tls))
}

/// A socket to `address`, over TLS with `tls` if given, and a duplicate of
/// the socket to peek at.
pub(crate) async fn connect_stream(
    tls: Option<&TlsConnector>,
    address: &Address,
) -> Result<(Stream, Arc<std::net::TcpStream>), ConnectError> {
    let stream = TcpStream::connect((address.host.as_str(), address.port)).await?;
    // Requests are small and answered one by one: never wait to coalesce them.
    stream.set_nodelay(true)?;
    // The duplicate stays non-blocking like the original.
    let stream = stream.into_std()?;
    let probe = Arc::new(stream.try_clone()?);
    let stream = TcpStream::from_std(stream)?;
    let Some(connector) = tls else {
        return Ok((Stream::Plain(stream), probe));
    };
    let name = sessionmanager_tls::server_name(&address.host).map_err(ConnectError::Name)?;
    let stream = connector
        .connect(name, stream)
        .await
        .map_err(|e| tls_error(&e).map_or_else(|| e.into(), ConnectError::Tls))?;
    // TLS 1.3 servers refuse a client certificate after the
    // handshake, in an alert read by the first command.
    let refused = Arc::new(Mutex::new(None));
    let stream = Watched {
        inner: stream,
        refused: Arc::clone(&refused),
    };
    Ok((Stream::Tls(Box::new(stream), refused), probe))
}

/// An open socket to a server or sentinel.
pub(crate) enum Stream {
    Plain(TcpStream),
    /// Over TLS, with the first TLS error read or written through it.
    Tls(
        // Boxed: a TLS stream is a thousand bytes, and lives as long as its connection.
        Box<Watched<tokio_rustls::client::TlsStream<TcpStream>>>,
        Arc<Mutex<Option<rustls::Error>>>,
    ),
}

/// Runs redis-rs's handshake (AUTH, SELECT) on `stream`, so a wrong password
/// or a missing database fails the connect with the server's reason, and
/// spawns the connection's driver; returns the connection and whether its
/// driver still runs.
pub(crate) async fn start<S>(
    info: &RedisConnectionInfo,
    stream: S,
) -> RedisResult<(MultiplexedConnection, Arc<AtomicBool>)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // No response timeout of redis-rs's own (it defaults to 500 ms): the
    // store's timeout covers each whole operation.
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    let (connection, driver) = MultiplexedConnection::new_with_config(info, stream, config).await?;
    let alive = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&alive);
    // The driver ends when the socket closes or every handle is dropped.
    tokio::spawn(async move {
        driver.await;
        flag.store(false, Ordering::Release);
    });
    Ok((connection, alive))
}

/// Why a connection could not be opened.
pub(crate) enum ConnectError {
    /// The network or the server refused (down, a wrong password, no such database).
    Redis(RedisError),
    /// The TLS handshake failed: a certificate refused on either side, or a
    /// server that does not speak TLS.
    Tls(rustls::Error),
    /// A host (one a sentinel announced) that no certificate can be checked against.
    Name(sessionmanager_core::Error),
    /// The sentinels named no usable master (see [`crate::sentinel`]).
    Sentinel(crate::sentinel::SentinelError),
}

impl From<RedisError> for ConnectError {
    fn from(err: RedisError) -> Self {
        Self::Redis(err)
    }
}

impl From<std::io::Error> for ConnectError {
    fn from(err: std::io::Error) -> Self {
        Self::Redis(err.into())
    }
}

/// The TLS error inside an I/O error of a TLS stream, if that is what it is.
fn tls_error(err: &std::io::Error) -> Option<rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>().cloned()
}

/// A TLS stream that keeps the first TLS error read or written through it,
/// which redis-rs would turn into an I/O error without its cause.
pub(crate) struct Watched<S> {
    inner: S,
    refused: Arc<Mutex<Option<rustls::Error>>>,
}

impl<S> Watched<S> {
    fn note<T>(&self, result: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(err)) = &result
            && let Some(tls) = tls_error(err)
        {
            let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
            refused.get_or_insert(tls);
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.note(result)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note(result)
    }
}

/// Whether `err` means the connection is gone (as opposed to a command error).
pub(crate) fn connection_lost(err: &RedisError) -> bool {
    err.is_unrecoverable_error() || err.is_connection_dropped() || err.is_io_error()
}

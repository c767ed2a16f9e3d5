//! What the store's operations send their commands through: the one
//! connection to a server (standalone, or the master Sentinel names), or a
//! router over a cluster's masters.

use std::sync::Arc;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::cluster::{Cluster, ClusterConnection};
use crate::link::{ConnectError, Link};

/// A connection, cheap to clone: clones share the socket(s).
#[derive(Clone)]
pub(crate) enum Connection {
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

impl Connection {
    /// This connection, sending the commands that name no key to the node
    /// that holds `key` (on a cluster; one server holds every key).
    pub(crate) fn aimed_at(&self, key: &str) -> Self {
        match self {
            Self::Server(conn) => Self::Server(conn.clone()),
            Self::Cluster(conn) => Self::Cluster(conn.aimed_at(key)),
        }
    }
}

/// Where connections come from.
pub(crate) enum Connector {
    Server(Box<Link>),
    Cluster(Arc<Cluster>),
}

impl Connector {
    /// A connection to send through: the server's live one (opened if
    /// needed), or a router over the cluster.
    pub(crate) async fn connection(&self) -> Result<Connection, ConnectError> {
        match self {
            Self::Server(link) => link.connection().await.map(Connection::Server),
            Self::Cluster(cluster) => Ok(Connection::Cluster(ClusterConnection::new(Arc::clone(
                cluster,
            )))),
        }
    }

    /// Whether an operation that sent nothing that ran should try again
    /// (see [`Link::follows_failover`]); a cluster's router does that itself.
    pub(crate) fn follows_failover(&self) -> bool {
        match self {
            Self::Server(link) => link.follows_failover(),
            Self::Cluster(_) => false,
        }
    }

    /// Drops the connection after a call on it failed or timed out, so the
    /// next operation opens a new one. A cluster's router drops the one
    /// node's connection that did not answer itself.
    pub(crate) fn forget(&self) {
        if let Self::Server(link) = self {
            link.forget();
        }
    }

    /// Drops every connection: the store closes.
    pub(crate) fn close(&self) {
        match self {
            Self::Server(link) => link.forget(),
            Self::Cluster(cluster) => cluster.forget(),
        }
    }

    /// Records that the server just answered (the router does it per node).
    pub(crate) fn used(&self) {
        if let Self::Server(link) = self {
            link.used();
        }
    }

    /// The cluster, if the store runs on one.
    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        match self {
            Self::Server(_) => None,
            Self::Cluster(cluster) => Some(cluster),
        }
    }
}

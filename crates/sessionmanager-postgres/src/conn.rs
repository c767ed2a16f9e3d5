//! A pooled connection that is never reused in an unknown state.
//!
//! A call that times out is dropped mid-query, perhaps mid-transaction; a
//! connection whose server went away is dead. Either way the connection must
//! not go back to the pool: [`Conn`] remembers whether a statement or a
//! transaction is unfinished and, if so, takes the connection out of the pool
//! when dropped (closing it). Statements are prepared once per connection
//! (the pool keeps each connection's prepared statements).

use std::sync::Arc;

use deadpool_postgres::Object;
use sessionmanager_core::Result;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::error::query_error;
use crate::store::Inner;

/// Query parameters.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A connection checked out of the pool for one store call.
pub(crate) struct Conn {
    object: Option<Object>,
    inner: Arc<Inner>,
    doing: &'static str,
    /// A statement was sent and its answer not yet read.
    busy: bool,
    /// `BEGIN` was sent and neither `COMMIT` nor `ROLLBACK` has finished.
    in_transaction: bool,
}

impl Conn {
    pub(crate) fn new(object: Object, inner: Arc<Inner>, doing: &'static str) -> Self {
        Self {
            object: Some(object),
            inner,
            doing,
            busy: false,
            in_transaction: false,
        }
    }

    fn client(&self) -> &Object {
        self.object.as_ref().expect("present until dropped")
    }

    /// Marks the statement finished if the connection is still usable.
    fn settle<T>(&mut self, result: Result<T, tokio_postgres::Error>) -> Result<T> {
        match result {
            Ok(value) => {
                self.busy = false;
                Ok(value)
            }
            Err(e) => {
                // A server-side error leaves the connection usable; anything else does not.
                if e.as_db_error().is_some() {
                    self.busy = false;
                }
                Err(query_error(&self.inner.target, self.doing, e))
            }
        }
    }

    /// Prepares `sql` (once per connection) and runs it with `run`.
    async fn prepared<T>(
        &mut self,
        sql: &str,
        run: impl AsyncFnOnce(&Object, &Statement) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T> {
        self.busy = true;
        let client = self.client();
        let result = async {
            let statement = client.prepare_cached(sql).await?;
            run(client, &statement).await
        }
        .await;
        self.settle(result)
    }

    /// Runs the prepared statement `sql` and returns its rows.
    pub(crate) async fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        self.prepared(sql, async |client, statement| {
            client.query(statement, params).await
        })
        .await
    }

    /// Runs the prepared statement `sql`; returns its row, if any.
    pub(crate) async fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        self.prepared(sql, async |client, statement| {
            client.query_opt(statement, params).await
        })
        .await
    }

    /// Runs the prepared statement `sql`, which returns exactly one row.
    pub(crate) async fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row> {
        self.prepared(sql, async |client, statement| {
            client.query_one(statement, params).await
        })
        .await
    }

    /// Runs the prepared statement `sql`; returns how many rows it changed.
    pub(crate) async fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64> {
        self.prepared(sql, async |client, statement| {
            client.execute(statement, params).await
        })
        .await
    }

    /// Sends `sql` (one or more statements without parameters) as a simple query.
    pub(crate) async fn batch(&mut self, sql: &str) -> Result<()> {
        self.busy = true;
        let result = self.client().batch_execute(sql).await;
        self.settle(result)
    }

    /// Starts a transaction with `sql` (which begins with `BEGIN`).
    pub(crate) async fn begin(&mut self, sql: &str) -> Result<()> {
        self.in_transaction = true;
        self.batch(sql).await
    }

    /// Commits the transaction.
    pub(crate) async fn commit(&mut self) -> Result<()> {
        self.batch("COMMIT").await?;
        self.in_transaction = false;
        Ok(())
    }

    /// Rolls the transaction back.
    pub(crate) async fn rollback(&mut self) -> Result<()> {
        self.batch("ROLLBACK").await?;
        self.in_transaction = false;
        Ok(())
    }

    /// Passes `result` on, first rolling back the open transaction if it is
    /// an error (a failed statement leaves PostgreSQL's transaction aborted).
    pub(crate) async fn rollback_on_error<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() && self.in_transaction && !self.busy {
            // Best effort: if this fails too, dropping the connection discards it.
            let _ = self.rollback().await;
        }
        result
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if (self.busy || self.in_transaction)
            && let Some(object) = self.object.take()
        {
            // Out of the pool for good; dropping the client closes the connection.
            drop(Object::take(object));
        }
    }
}

//! The asyncio front: `AsyncSessionManager` and `AsyncRateLimiter` (in
//! `aio.py`) hand each call to [`AsyncCore::call`], which checks its
//! arguments like the synchronous manager (the same `ops`) and then runs it
//! where its store runs best, without ever blocking the event loop:
//!
//! - memory: at once, on the loop's thread (it never waits);
//! - Redis and PostgreSQL: as a task of the store's own runtime, so a
//!   thousand calls in flight cost no thread each;
//! - SQLite: on a few threads of the binding (`pool.rs`), since its calls
//!   block while they wait.
//!
//! Calls made during one loop step are handed over together when the step
//! ends ([`LoopWaker::flush`]), and the loop is woken once for however many
//! finished since it last looked (`waker.rs`).
//!
//! A call in flight always runs to its end, even when its caller is
//! cancelled: each write is one atomic step in the store, so a cancelled
//! write has happened entirely or not at all.

mod pool;
mod waker;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use sessionmanager_core::block_on;

pub(crate) use waker::{Job, LoopWaker};

use crate::fork::Engine;
use crate::manager::SessionManager;
use crate::ops::{self, Task};
use crate::ratelimit::RateLimiter;
use crate::store::AnyStore;

/// What an [`AsyncCore`] runs calls of.
enum Source {
    Manager(Py<SessionManager>),
    Limiter(Py<RateLimiter>),
}

/// Runs a manager's or a rate limiter's calls for an asyncio event loop.
#[pyclass(module = "pysessionmanager._native", frozen)]
pub(crate) struct AsyncCore {
    source: Source,
    /// Returns the running loop's [`LoopWaker`] (`aio._waker`); asked only
    /// by calls that wait.
    waker_of: Py<PyAny>,
    /// Calls handed out and not finished, cancelled callers' included.
    in_flight: Arc<AtomicUsize>,
}

#[pymethods]
impl AsyncCore {
    #[new]
    fn new(source: &Bound<'_, PyAny>, waker_of: Py<PyAny>) -> PyResult<Self> {
        let source = if let Ok(manager) = source.cast::<SessionManager>() {
            Source::Manager(manager.clone().unbind())
        } else if let Ok(limiter) = source.cast::<RateLimiter>() {
            Source::Limiter(limiter.clone().unbind())
        } else {
            return Err(PyTypeError::new_err(
                "AsyncCore runs the calls of a SessionManager or a RateLimiter",
            ));
        };
        Ok(Self {
            source,
            waker_of,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Starts the operation `op` with `args` (all of its parameters, in
    /// order, as `aio.py` passes them). Returns its result when it is
    /// already done, else an asyncio future of the running loop.
    #[pyo3(signature = (op, *args))]
    fn call(&self, py: Python<'_>, op: &str, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let (engine, task) = self.task(py, op, args)?;
        if let AnyStore::Memory(_) = engine.store() {
            // Never waits: done here, with no thread crossing.
            return block_on(task)(py);
        }
        let waker = self.waker_of.bind(py).call0()?;
        let waker = waker.cast::<LoopWaker>()?;
        let (future, reply) = waker.get().expect(py)?;
        let counted = InFlight::count(&self.in_flight);
        let job = async move {
            let outcome = task.await;
            drop(counted);
            reply.send(outcome);
        };
        LoopWaker::submit(waker, engine, Box::pin(job))?;
        Ok(future)
    }

    /// Calls started and not finished, including those whose callers were
    /// cancelled.
    #[getter]
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

impl AsyncCore {
    fn engine(&self, py: Python<'_>) -> PyResult<Arc<Engine>> {
        match &self.source {
            Source::Manager(manager) => manager.get().owned_engine(py),
            Source::Limiter(limiter) => limiter.get().engine(py),
        }
    }

    /// The engine to run on and the checked call.
    fn task(
        &self,
        py: Python<'_>,
        op: &str,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<(Arc<Engine>, Task)> {
        let engine = self.engine(py)?;
        let arg = |i: usize| args.get_item(i);
        // An optional parameter: `None` is leaving it out.
        let opt = |i: usize| args.get_item(i).ok().filter(|v| !v.is_none());
        let e = Arc::clone(&engine);
        let task = match (&self.source, op) {
            (Source::Limiter(limiter), "hit") => limiter.get().hit_task(py, &arg(0)?)?,
            (Source::Limiter(_), _) => return Err(unknown(op)),
            (_, "create_session") => ops::create_session(
                e,
                &arg(0)?,
                opt(1).as_ref(),
                opt(2).as_ref(),
                opt(3).as_ref(),
                opt(4).as_ref(),
            )?,
            (_, "get_session") => ops::get_session(e, &arg(0)?)?,
            (_, "session_info") => ops::session_info(e, &arg(0)?)?,
            (_, "is_session_active") => ops::is_session_active(e, &arg(0)?)?,
            (_, "end_session") => ops::end_session(e, &arg(0)?)?,
            (_, "update_session") => ops::update_session(e, &arg(0)?, &arg(1)?)?,
            (_, "set_session_data") => {
                ops::set_session_data(e, &arg(0)?, &arg(1)?, opt(2).as_ref())?
            }
            (_, "apply_changes") => {
                ops::apply_changes(e, &arg(0)?, &arg(1)?, &arg(2)?, &arg(3)?, &arg(4)?)?
            }
            (_, "increment") => ops::increment(e, &arg(0)?, &arg(1)?, Some(&arg(2)?))?,
            (_, "append") => ops::append(e, &arg(0)?, &arg(1)?, &arg(2)?)?,
            (_, "rotate_session") => ops::rotate_session(e, &arg(0)?)?,
            (_, "touch") => ops::touch(e, &arg(0)?)?,
            (_, "list_sessions") => ops::list_sessions(e, &arg(0)?)?,
            (_, "end_session_by_key") => ops::end_session_by_key(e, &arg(0)?, &arg(1)?)?,
            (_, "end_user_sessions") => ops::end_user_sessions(e, &arg(0)?, opt(1).as_ref())?,
            (_, "purge_expired") => ops::purge_expired(e)?,
            (_, "count") => ops::count(e)?,
            (_, "export_sessions") => {
                crate::export::export_sessions(e, opt(0).as_ref(), opt(1).as_ref())?
            }
            (_, "import_sessions") => crate::export::import_sessions(e, &arg(0)?)?,
            _ => return Err(unknown(op)),
        };
        Ok((engine, task))
    }
}

/// Starts `jobs`, calls of one engine's store that a loop step made: on
/// Redis and PostgreSQL as one task of the store's runtime, which wakes its
/// thread once for them all and lets their commands share a write; on
/// SQLite one job per pool thread. A job that cannot start is dropped,
/// which answers its caller with `ManagerClosed`.
pub(crate) fn start(engine: &Engine, jobs: Vec<Job>) {
    let together = |jobs| async move {
        futures_util::future::join_all(jobs).await;
    };
    match engine.store() {
        AnyStore::Redis(store) => drop(store.spawn(together(jobs))),
        AnyStore::Postgres(store) => drop(store.spawn(together(jobs))),
        AnyStore::Sqlite(_) | AnyStore::Memory(_) => drop(pool::spawn_all(jobs)),
    }
}

/// One call counted in flight until it ends or its task is dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn count(calls: &Arc<AtomicUsize>) -> Self {
        calls.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(calls))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn unknown(op: &str) -> PyErr {
    PyValueError::new_err(format!("no asynchronous operation named {op:?}"))
}

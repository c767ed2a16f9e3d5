//! Waking an asyncio event loop when store work finishes, without the GIL.
//!
//! Each event loop gets one [`LoopWaker`]: a socket pair whose reading end
//! the loop watches (`loop.add_reader`), and an inbox of finished calls.
//! A worker thread that finishes a call puts its [`Outcome`] in the inbox
//! and writes one byte, only if the inbox was not already waiting to be
//! read: many calls finishing together cost the loop one wakeup. The loop
//! then runs [`LoopWaker::drain`], which turns each outcome into Python and
//! resolves the asyncio future its caller awaits. Workers never take the
//! GIL, so nothing they do can meet the interpreter's exit (see `exit.rs`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::exceptions::PyOSError;
use pyo3::intern;
use pyo3::prelude::*;
use sessionmanager_core::Error;

use crate::errors;
use crate::fork::Engine;
use crate::ops::Outcome;

/// A call ready to run on its store's executor; it answers through its [`Reply`].
pub(crate) type Job = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// How many finished calls one run of [`LoopWaker::drain`] resolves: each
/// costs a few microseconds (its result becomes Python objects), and a loop
/// step should stay well under a millisecond.
const DRAIN_BATCH: usize = 64;

/// Where finished calls go until the loop picks them up. Sending takes no
/// lock, so a worker preempted mid-send never holds the loop up.
struct Inbox {
    finished: Sender<(u64, Outcome)>,
    /// Whether a byte is on its way to the loop for what was sent.
    armed: AtomicBool,
    writer: UnixStream,
}

impl Inbox {
    fn put(&self, id: u64, outcome: Outcome) {
        // Fails only once the loop's waker is gone: nobody waits for it then.
        let _ = self.finished.send((id, outcome));
        if !self.armed.swap(true, Ordering::AcqRel) {
            // Non-blocking; a full buffer already holds a wakeup.
            let _ = (&self.writer).write(&[1]);
        }
    }
}

/// Resolves the futures of one event loop's calls (see the module docs).
#[pyclass(module = "pysessionmanager._native", frozen)]
pub(crate) struct LoopWaker {
    inbox: Arc<Inbox>,
    /// The inbox's receiving end (only the loop's thread takes it).
    finished: Mutex<Receiver<(u64, Outcome)>>,
    reader: UnixStream,
    event_loop: Py<PyAny>,
    /// The future each call in flight resolves, by call number. Touched
    /// only on the loop's thread.
    waiting: Mutex<HashMap<u64, Py<PyAny>>>,
    next_id: AtomicU64,
    /// Calls made during the current loop step, started together by
    /// [`LoopWaker::flush`] once the step ends.
    outbox: Mutex<Vec<(Arc<Engine>, Job)>>,
}

#[pymethods]
impl LoopWaker {
    #[new]
    fn new(event_loop: Py<PyAny>) -> PyResult<Self> {
        let (reader, writer) = UnixStream::pair().map_err(socket_error)?;
        reader.set_nonblocking(true).map_err(socket_error)?;
        writer.set_nonblocking(true).map_err(socket_error)?;
        let (sender, finished) = channel();
        Ok(Self {
            finished: Mutex::new(finished),
            inbox: Arc::new(Inbox {
                finished: sender,
                armed: AtomicBool::new(false),
                writer,
            }),
            reader,
            event_loop,
            waiting: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            outbox: Mutex::new(Vec::new()),
        })
    }

    /// The descriptor the event loop watches.
    fn fileno(&self) -> i32 {
        self.reader.as_raw_fd()
    }

    /// Resolves the futures of calls that finished (run by the loop when
    /// the descriptor is readable), at most [`DRAIN_BATCH`] per run so that
    /// one run never holds the loop long; the rest wait for the next run,
    /// which a fresh byte asks for. A future whose caller was cancelled is
    /// left alone: its call ran to its end all the same.
    fn drain(&self, py: Python<'_>) {
        let mut bytes = [0_u8; 64];
        while matches!((&self.reader).read(&mut bytes), Ok(n) if n == bytes.len()) {}
        // Disarmed before taking (and synchronized with the senders' swaps):
        // a call that finishes from now on writes again.
        self.inbox.armed.swap(false, Ordering::AcqRel);
        let finished: Vec<_> = self
            .finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_iter()
            .take(DRAIN_BATCH)
            .collect();
        if finished.len() == DRAIN_BATCH && !self.inbox.armed.swap(true, Ordering::AcqRel) {
            // Perhaps more: another run for them.
            let _ = (&self.inbox.writer).write(&[1]);
        }
        for (id, outcome) in finished {
            let future = self.lock_waiting().remove(&id);
            let Some(future) = future else { continue };
            let future = future.bind(py);
            if future
                .call_method0(intern!(py, "done"))
                .and_then(|done| done.is_truthy())
                .unwrap_or(true)
            {
                continue;
            }
            let _ = match outcome(py) {
                Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
                Err(err) => future.call_method1(intern!(py, "set_exception"), (err,)),
            };
        }
    }

    /// Starts the calls the loop step that just ended made, all of one
    /// store's at once (see [`super::start`]): tasks that wake the loop
    /// together may well all have called the store.
    fn flush(&self) {
        let mut calls =
            std::mem::take(&mut *self.outbox.lock().unwrap_or_else(PoisonError::into_inner));
        while let Some((engine, _)) = calls.first() {
            let engine = Arc::clone(engine);
            let (same, others): (Vec<_>, Vec<_>) = calls
                .into_iter()
                .partition(|(of, _)| Arc::ptr_eq(of, &engine));
            super::start(&engine, same.into_iter().map(|(_, job)| job).collect());
            calls = others;
        }
    }

    /// Calls in flight on this loop.
    #[getter]
    fn waiting(&self) -> usize {
        self.lock_waiting().len()
    }
}

impl LoopWaker {
    /// A new asyncio future on the loop, and the [`Reply`] that resolves it.
    pub(crate) fn expect(&self, py: Python<'_>) -> PyResult<(Py<PyAny>, Reply)> {
        let future = self
            .event_loop
            .call_method0(py, intern!(py, "create_future"))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock_waiting().insert(id, future.clone_ref(py));
        let reply = Reply {
            inbox: Arc::clone(&self.inbox),
            id,
            sent: false,
        };
        Ok((future, reply))
    }

    /// Queues `job` to start when the current loop step ends.
    pub(crate) fn submit(slf: &Bound<'_, Self>, engine: Arc<Engine>, job: Job) -> PyResult<()> {
        let first = {
            let mut outbox = slf
                .get()
                .outbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            outbox.push((engine, job));
            outbox.len() == 1
        };
        if first {
            let py = slf.py();
            let flush = slf.getattr(intern!(py, "flush"))?;
            slf.get()
                .event_loop
                .call_method1(py, intern!(py, "call_soon"), (flush,))?;
        }
        Ok(())
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Py<PyAny>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Delivers one call's outcome to its loop. Dropped unsent (its task was
/// dropped with a closed store's runtime), it delivers `ManagerClosed`, so
/// no caller waits forever.
pub(crate) struct Reply {
    inbox: Arc<Inbox>,
    id: u64,
    sent: bool,
}

impl Reply {
    /// Hands `outcome` to the loop.
    pub(crate) fn send(mut self, outcome: Outcome) {
        self.sent = true;
        self.inbox.put(self.id, outcome);
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if !self.sent {
            let closed: Outcome = Box::new(|py| Err(errors::to_py(py, Error::Closed)));
            self.inbox.put(self.id, closed);
        }
    }
}

fn socket_error(err: std::io::Error) -> PyErr {
    PyOSError::new_err(format!("cannot make the event loop's wakeup socket: {err}"))
}

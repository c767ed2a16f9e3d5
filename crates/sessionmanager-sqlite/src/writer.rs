//! Group commit. Every write is queued; a writer that finds the connection
//! free leads: it runs everything queued in one transaction, each write in its
//! own savepoint, commits once, wakes exactly the writers of that batch, and
//! hands the lead to a writer whose write came in meanwhile. Under load many
//! writes share one commit (and one disk sync with `durability=full`); alone,
//! a write runs on the caller's thread with no handoff. A write is
//! acknowledged only after its commit.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use sessionmanager_core::{Error, Result, interrupt};

use crate::error::store_error;

/// One queued write: `run` does it inside the batch's transaction and returns
/// whether it succeeded plus how to report the commit; `abort` reports a batch
/// that never started.
struct Job {
    run: Run,
    abort: Box<dyn FnOnce(Error) + Send>,
    /// The thread waiting for this write, woken when it is done (or to lead).
    waiter: Thread,
}

/// Does a write; returns whether it succeeded and how to report it.
type Run = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// Reports a write's outcome once the batch's commit is known (`None` = committed).
type Finish = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

/// The write connection and its queue.
pub(crate) struct Writer {
    /// `None` once closed.
    conn: Mutex<Option<Connection>>,
    queue: Mutex<Vec<Job>>,
    /// How long a batch waits for another process's write lock. The writer
    /// waits itself (the connection's own busy timeout is zero), so that an
    /// interruptible caller can give up the wait (see `begin`).
    busy_timeout: Duration,
}

fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Everything guarded here stays consistent if a holder panics.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Writer {
    pub(crate) fn new(conn: Connection, busy_timeout: Duration) -> Self {
        let _ = conn.busy_timeout(Duration::ZERO);
        Self {
            conn: Mutex::new(Some(conn)),
            queue: Mutex::new(Vec::new()),
            busy_timeout,
        }
    }

    /// Runs `op` in a (possibly shared) transaction and returns its result
    /// once committed. A failing `op` is rolled back alone.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _gate = crate::fork::enter();
        let slot: Arc<Mutex<Option<Result<T>>>> = Arc::default();
        let (on_run, on_abort) = (slot.clone(), slot.clone());
        let me = thread::current();
        let (wake_run, wake_abort) = (me.clone(), me.clone());
        let job = Job {
            run: Box::new(move |conn| {
                let result = op(conn);
                let ok = result.is_ok();
                let finish: Finish = Box::new(move |commit_error| {
                    let outcome = match commit_error {
                        None => result,
                        Some(err) => Err(store_error("commit")(clone_error(err))),
                    };
                    *relock(&on_run) = Some(outcome);
                    wake_run.unpark();
                });
                (ok, finish)
            }),
            abort: Box::new(move |err| {
                *relock(&on_abort) = Some(Err(err));
                wake_abort.unpark();
            }),
            waiter: me,
        };
        relock(&self.queue).push(job);
        loop {
            if let Some(done) = relock(&slot).take() {
                return done;
            }
            // Lead a batch if nobody is committing; otherwise sleep until the
            // current leader reports this write done or hands over the lead.
            let led = match self.conn.try_lock() {
                Ok(mut conn) => {
                    self.lead(&mut conn);
                    true
                }
                Err(TryLockError::Poisoned(poisoned)) => {
                    self.lead(&mut poisoned.into_inner());
                    true
                }
                Err(TryLockError::WouldBlock) => false,
            };
            if led {
                // Writes queued during the commit need a leader: wake one of their writers.
                if let Some(next) = relock(&self.queue).first() {
                    next.waiter.unpark();
                }
            } else {
                // A wake that came before this park is not lost (park's token).
                thread::park_timeout(interrupt::CHECK_EVERY);
                if interrupt::interruptible() && interrupt::interrupted() {
                    // The queued write may still run with a later batch.
                    return Err(Error::Interrupted);
                }
            }
        }
    }

    /// Runs every queued write in one transaction and reports each.
    /// One batch per turn: a writer whose own write is done does not keep
    /// committing others' (its caller would wait without bound under load).
    fn lead(&self, conn: &mut Option<Connection>) {
        let batch = std::mem::take(&mut *relock(&self.queue));
        if batch.is_empty() {
            return;
        }
        match conn.as_mut() {
            Some(conn) => match begin(conn, self.busy_timeout) {
                Ok(()) => commit_batch(conn, batch),
                Err(Begin::Interrupted) => {
                    // Only this caller gave up: the others' writes go back
                    // to the front of the queue for the next leader.
                    let me = thread::current().id();
                    let (mine, others): (Vec<Job>, Vec<Job>) =
                        batch.into_iter().partition(|job| job.waiter.id() == me);
                    mine.into_iter()
                        .for_each(|job| (job.abort)(Error::Interrupted));
                    let mut queue = relock(&self.queue);
                    let later = std::mem::replace(&mut *queue, others);
                    queue.extend(later);
                }
                Err(Begin::Failed(err)) => {
                    for job in batch {
                        (job.abort)(store_error("begin a write")(clone_error(&err)));
                    }
                }
            },
            None => batch.into_iter().for_each(|job| (job.abort)(Error::Closed)),
        }
    }

    /// Closes the connection; queued and later writes fail with `Closed`.
    pub(crate) fn close(&self) {
        relock(&self.conn).take();
    }

    /// Puts an open connection back after [`Writer::close`].
    pub(crate) fn reopen(&self, conn: Connection) {
        let _ = conn.busy_timeout(Duration::ZERO);
        *relock(&self.conn) = Some(conn);
    }
}

/// Why a batch's transaction did not begin.
enum Begin {
    /// The leading caller gave up waiting for the write lock.
    Interrupted,
    Failed(rusqlite::Error),
}

/// How long the writer sleeps between attempts at a write lock another
/// process holds.
const BUSY_STEP: Duration = Duration::from_millis(5);

/// Begins the batch's transaction, waiting up to `busy_timeout` for a write
/// lock another process holds, as SQLite's busy timeout would, except that
/// an interruptible caller may give up the wait.
fn begin(conn: &Connection, busy_timeout: Duration) -> Result<(), Begin> {
    let started = Instant::now();
    let interruptible = interrupt::interruptible();
    let mut checked = started;
    loop {
        match run_cached(conn, "BEGIN IMMEDIATE") {
            Ok(_) => return Ok(()),
            Err(err) if is_busy(&err) && started.elapsed() < busy_timeout => {
                thread::sleep(BUSY_STEP.min(busy_timeout.saturating_sub(started.elapsed())));
                if interruptible && checked.elapsed() >= interrupt::CHECK_EVERY {
                    if interrupt::interrupted() {
                        return Err(Begin::Interrupted);
                    }
                    checked = Instant::now();
                }
            }
            Err(err) => return Err(Begin::Failed(err)),
        }
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy)
    )
}

fn commit_batch(conn: &mut Connection, batch: Vec<Job>) {
    let finishes: Vec<Finish> = batch
        .into_iter()
        .map(|job| {
            let _ = run_cached(conn, "SAVEPOINT write");
            let (ok, finish) = (job.run)(conn);
            if !ok {
                let _ = run_cached(conn, "ROLLBACK TO write");
            }
            let _ = run_cached(conn, "RELEASE write");
            finish
        })
        .collect();
    match run_cached(conn, "COMMIT") {
        Ok(_) => finishes.into_iter().for_each(|finish| finish(None)),
        Err(err) => {
            let _ = run_cached(conn, "ROLLBACK");
            finishes.into_iter().for_each(|finish| finish(Some(&err)));
        }
    }
}

/// Runs a statement without parsing it again: `execute_batch` would, and a
/// batch runs these for every write.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

/// A copy of a SQLite error good enough to report to each write of a batch.
fn clone_error(err: &rusqlite::Error) -> rusqlite::Error {
    match err {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

//! Threads for store calls that block while they wait (SQLite's: its
//! writer queue, a reader's connection, another process's write lock), so
//! that an event loop never does. A few threads, started on first use and
//! again in each forked child (threads do not cross a fork).

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use sessionmanager_core::{Error, Result, block_on, fork};

/// How many calls of blocking stores run at once. SQLite serializes its
/// writes anyway (a group commit takes what is queued), and WAL readers
/// rarely wait, so a few threads keep it busy.
const THREADS: usize = 4;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The pool of this process, with the fork generation it was started in.
static POOL: Mutex<Option<(u64, Sender<Job>)>> = Mutex::new(None);

/// Runs `job` to its end on one of the pool's threads.
pub(crate) fn spawn(job: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let generation = fork::generation();
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if !matches!(&*pool, Some((started_in, _)) if *started_in == generation) {
        // A parent's pool: its threads are not in this process; its queue is
        // leaked rather than dropped.
        if let Some(parents) = pool.take() {
            std::mem::forget(parents);
        }
        *pool = Some((generation, start()?));
    }
    let (_, queue) = pool.as_ref().expect("started above");
    queue
        .send(Box::pin(job))
        .map_err(|_| Error::Store("the store's worker threads are gone".into()))
}

fn start() -> Result<Sender<Job>> {
    let (queue, jobs) = channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    for n in 0..THREADS {
        let jobs = Arc::clone(&jobs);
        std::thread::Builder::new()
            .name(format!("session-store-{n}"))
            .spawn(move || work(&jobs))
            .map_err(|e| Error::Store(format!("cannot start a store thread: {e}").into()))?;
    }
    Ok(queue)
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => block_on(job),
            Err(_) => return,
        }
    }
}

//! Threads for store calls that block while they wait (SQLite's: its
//! writer queue, a reader's connection, another process's write lock), so
//! that an event loop never does. A few threads, started on first use and
//! again in each forked child (threads do not cross a fork).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use sessionmanager_core::{Error, Result, block_on, fork};

use super::Job;

/// How many calls of blocking stores run at once. SQLite serializes its
/// writes anyway (a group commit takes what is queued), and WAL readers
/// rarely wait, so a few threads keep it busy.
const THREADS: usize = 4;

/// The pool of this process, with the fork generation it was started in.
/// Sending takes no lock the threads hold, so a thread preempted while it
/// takes a job never holds up the loop that hands them out.
static POOL: Mutex<Option<(u64, Sender<Vec<Job>>)>> = Mutex::new(None);

/// Runs each of `jobs` to its end on the pool's threads: in at most as many
/// shares as there are threads, each run in turn by one thread, so that
/// handing out a thousand calls wakes a few threads, not a thousand times.
pub(crate) fn spawn_all(jobs: Vec<Job>) -> Result<()> {
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
    let shares = jobs.len().min(THREADS);
    let mut split: Vec<Vec<Job>> = (0..shares).map(|_| Vec::new()).collect();
    for (n, job) in jobs.into_iter().enumerate() {
        split[n % shares].push(job);
    }
    for share in split {
        queue
            .send(share)
            .map_err(|_| Error::Store("the store's worker threads are gone".into()))?;
    }
    Ok(())
}

fn start() -> Result<Sender<Vec<Job>>> {
    let (queue, jobs) = channel::<Vec<Job>>();
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

fn work(shares: &Mutex<Receiver<Vec<Job>>>) {
    loop {
        let share = shares.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match share {
            Ok(jobs) => jobs.into_iter().for_each(block_on),
            Err(_) => return,
        }
    }
}

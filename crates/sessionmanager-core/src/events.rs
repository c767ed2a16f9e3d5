//! Session lifecycle events: what a manager did to sessions, for whoever
//! subscribes ([`SessionManager::subscribe`]). Each subscription is a
//! bounded channel the manager never waits on: a subscriber that falls
//! behind loses events (counted in [`StatsSnapshot::events_dropped`](crate::StatsSnapshot)),
//! and no operation ever slows down for it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Timestamp;
use crate::manager::SessionManager;
use crate::record::SessionRecord;
use crate::stats::EndReason;
use crate::store::SessionStore;
use crate::token::SessionKey;

/// How often [`Subscription::next_timeout`] looks at an empty channel again.
pub const POLL: Duration = Duration::from_millis(5);

/// What happened to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A session started.
    Created,
    /// A session ended before its time, for `reason`.
    Ended(EndReason),
    /// A session moved to a new key (its old one stopped working).
    Rotated {
        /// The key it lives under now.
        new_key: SessionKey,
    },
    /// An expired session was removed from this manager's store (by a
    /// sweep, a purge, or a call that met it), reported by the process
    /// whose delete removed it.
    Expired,
}

/// An expired session a store removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredSession {
    /// Its key.
    pub key: SessionKey,
    /// Its user.
    pub user_id: Arc<str>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it expired.
    pub expires_at: Timestamp,
}

/// What a store calls with the expired sessions each of its deletes removed
/// (see [`SessionStore::watch_expiry`]). Called on the thread of the sweep
/// or call that removed them, outside the store's locks; it must not block.
pub type ExpiryListener = Arc<dyn Fn(Vec<ExpiredSession>) + Send + Sync>;

/// One event: the session's key (never its token), owner and times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEvent {
    /// What happened.
    pub kind: EventKind,
    /// The session's key ([`SessionKey::to_hex`] is its public name).
    pub key: SessionKey,
    /// Its user.
    pub user_id: Arc<str>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it would have expired (or, for a creation, will).
    pub expires_at: Timestamp,
    /// When this happened, by the manager's clock.
    pub at: Timestamp,
}

impl SessionEvent {
    fn about(kind: EventKind, key: SessionKey, record: &SessionRecord, at: Timestamp) -> Self {
        Self {
            kind,
            key,
            user_id: Arc::clone(&record.user_id),
            created_at: record.created_at,
            expires_at: record.expires_at,
            at,
        }
    }
}

/// A store's place for its expiry listener: empty until a manager
/// subscribes ([`SessionStore::watch_expiry`]), then told what each sweep
/// and purge removes.
#[derive(Default)]
pub struct ExpiryReports(Mutex<Option<ExpiryListener>>);

impl ExpiryReports {
    /// Reports to `listener` from now on.
    pub fn set(&self, listener: ExpiryListener) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(listener);
    }

    /// Tells the listener, if there is one, about the sessions `expired`
    /// lists; `expired` runs only then, and only for a non-empty `removed`.
    pub fn report(&self, removed: usize, expired: impl FnOnce() -> Vec<ExpiredSession>) {
        if removed == 0 {
            return;
        }
        let listener = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(listener) = listener {
            listener(expired());
        }
    }
}

impl std::fmt::Debug for ExpiryReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpiryReports")
    }
}

/// A subscriber's end of its channel. Dropping it ends the subscription.
#[derive(Debug)]
pub struct Subscription {
    events: Receiver<SessionEvent>,
}

impl Subscription {
    /// The next event, waiting at most `timeout`; `None` when none came (or
    /// the manager is gone).
    ///
    /// An empty channel is looked at again every [`POLL`] rather than waited
    /// on: a reader blocked in the channel would make every operation that
    /// publishes wake its thread (a system call and a context switch, which
    /// tripled the time of a create on a busy machine), while a reader that
    /// polls costs publishers nothing. Events arrive up to [`POLL`] late.
    pub fn next_timeout(&self, timeout: Duration) -> Option<SessionEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.events.try_recv() {
                Ok(event) => return Some(event),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(POLL.min(left));
        }
    }

    /// The next event if one is waiting.
    pub fn try_next(&self) -> Option<SessionEvent> {
        self.events.try_recv().ok()
    }
}

/// A manager's subscribers.
#[derive(Default)]
pub(crate) struct Subscribers {
    /// Whether the store reports its expired sessions here already.
    watching: AtomicBool,
    senders: Mutex<Vec<SyncSender<SessionEvent>>>,
    /// Whether there are any, read without the lock on every operation.
    any: AtomicBool,
    dropped: AtomicU64,
}

impl Subscribers {
    fn add(&self, capacity: usize) -> Subscription {
        let (sender, events) = sync_channel(capacity.max(1));
        let mut senders = self.lock();
        senders.push(sender);
        self.any.store(true, Ordering::Release);
        Subscription { events }
    }

    pub(crate) fn active(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn publish(&self, event: SessionEvent) {
        let mut senders = self.lock();
        senders.retain(|sender| match sender.try_send(event.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
        self.any.store(!senders.is_empty(), Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SyncSender<SessionEvent>>> {
        self.senders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: SessionStore> SessionManager<S> {
    /// A new subscription to this manager's session events, holding at most
    /// `capacity` events its reader has not taken yet (past that, new events
    /// are dropped for it and counted, so a slow reader never slows an
    /// operation).
    ///
    /// Events are what this manager did: a creation, a rotation, an end by
    /// token or key ([`EndReason::Logout`]), by the user limit
    /// ([`EndReason::Evicted`]) or with the user's others
    /// ([`EndReason::EndedWithUser`]). While anyone subscribes, an end and a
    /// rotation read the session first (its owner and times, for the event),
    /// and a create under a user limit and `end_user` list the user's
    /// sessions first: one more store call each, and none without subscribers.
    ///
    /// Expired sessions are reported as [`EventKind::Expired`] by the
    /// process whose store removed them (see [`SessionStore::watch_expiry`]).
    pub fn subscribe(&self, capacity: usize) -> Subscription {
        let subscription = self.events.add(capacity);
        if !self.events.watching.swap(true, Ordering::AcqRel) {
            let events = Arc::clone(&self.events);
            let clock = Arc::clone(&self.config().clock);
            self.store().watch_expiry(Arc::new(move |expired| {
                if !events.active() {
                    return;
                }
                let at = clock.now();
                for gone in expired {
                    events.publish(SessionEvent {
                        kind: EventKind::Expired,
                        key: gone.key,
                        user_id: gone.user_id,
                        created_at: gone.created_at,
                        expires_at: gone.expires_at,
                        at,
                    });
                }
            }));
        }
        subscription
    }

    /// Whether anyone subscribes, so operations read what their events need.
    pub(crate) fn observed(&self) -> bool {
        self.events.active()
    }

    /// Publishes an event about `record` under `key`, now.
    pub(crate) fn emit(&self, kind: EventKind, key: SessionKey, record: &SessionRecord) {
        if self.observed() {
            self.events
                .publish(SessionEvent::about(kind, key, record, self.now()));
        }
    }
}

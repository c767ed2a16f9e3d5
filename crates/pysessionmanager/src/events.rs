//! Session events for Python: a native stream the package's dispatcher
//! thread reads (`pysessionmanager.events`), waiting without the GIL.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;
use sessionmanager_core::{EventKind, SessionEvent, Subscription, Timestamp};

/// A subscription's events, read one at a time by `next`.
#[pyclass(module = "pysessionmanager._native", frozen)]
pub(crate) struct EventStream {
    /// Read by one thread at a time (a receiver is not shareable).
    subscription: Mutex<Subscription>,
}

impl EventStream {
    pub(crate) fn new(subscription: Subscription) -> Self {
        Self {
            subscription: Mutex::new(subscription),
        }
    }
}

/// An event as `(kind, reason, key, new_key, user_id, created_at_ms,
/// expires_at_ms, at_ms)`, which `pysessionmanager.events` makes into a
/// `SessionEvent`.
type EventTuple = (
    &'static str,
    Option<&'static str>,
    String,
    Option<String>,
    String,
    i64,
    i64,
    i64,
);

fn to_tuple(event: SessionEvent) -> EventTuple {
    let (kind, reason, new_key) = match &event.kind {
        EventKind::Created => ("created", None, None),
        EventKind::Ended(reason) => ("ended", Some(reason.name()), None),
        EventKind::Rotated { new_key } => ("rotated", None, Some(new_key.to_hex())),
        EventKind::Expired => ("expired", None, None),
        _ => ("other", None, None),
    };
    (
        kind,
        reason,
        event.key.to_hex(),
        new_key,
        event.user_id.to_string(),
        event.created_at.millis(),
        event.expires_at.millis(),
        Timestamp::millis(event.at),
    )
}

#[pymethods]
impl EventStream {
    /// The next event, waiting at most `timeout` seconds; `None` if none came.
    fn next(&self, py: Python<'_>, timeout: f64) -> Option<EventTuple> {
        let wait = Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        py.detach(|| {
            let subscription = self
                .subscription
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            subscription.next_timeout(wait)
        })
        .map(to_tuple)
    }
}

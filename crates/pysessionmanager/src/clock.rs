//! A clock Python tests can move by hand, to exercise expiry without sleeping.

use std::sync::Arc;

use pyo3::prelude::*;
use sessionmanager_core::{Clock, SystemClock, Timestamp};

use crate::convert::seconds_to_millis;
use crate::errors::wrong_type;

/// The `clock=` argument: a [`ManualClock`] for tests, or `None` for the system clock.
pub(crate) fn clock_arg(clock: Option<&Bound<'_, PyAny>>) -> PyResult<Arc<dyn Clock>> {
    match clock.filter(|c| !c.is_none()) {
        Some(clock) => match clock.cast::<ManualClock>() {
            Ok(manual) => Ok(Arc::new(manual.get().0.clone())),
            Err(_) => Err(wrong_type(
                "clock",
                "a pysessionmanager.testing.ManualClock or None",
                clock,
            )),
        },
        None => Ok(Arc::new(SystemClock)),
    }
}

/// A clock that stands still until moved. Pass it as `SessionManager(clock=...)`.
#[pyclass(module = "pysessionmanager.testing", frozen)]
pub(crate) struct ManualClock(pub(crate) sessionmanager_core::ManualClock);

#[pymethods]
impl ManualClock {
    #[new]
    #[pyo3(signature = (start = 1_700_000_000.0))]
    fn new(start: f64) -> PyResult<Self> {
        Ok(Self(sessionmanager_core::ManualClock::new(to_timestamp(
            start,
        )?)))
    }

    /// The current time, in seconds since the Unix epoch.
    fn now(&self) -> f64 {
        self.0.now().millis() as f64 / 1000.0
    }

    /// Moves the clock forward by `seconds`.
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let millis = seconds_to_millis(seconds, "seconds")?;
        let after = self.0.now().millis().saturating_add(millis);
        to_timestamp(after as f64 / 1000.0)?; // stays within the range
        self.0.advance(millis);
        Ok(())
    }

    /// Sets the clock to `timestamp` seconds since the Unix epoch.
    fn set(&self, timestamp: f64) -> PyResult<()> {
        self.0.set(to_timestamp(timestamp)?);
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("ManualClock({})", self.now())
    }
}

/// The range of a manual clock, in seconds since the epoch: years 5 to 9892,
/// so that every deadline a session can have (up to 100 years later) is
/// still a `datetime`, whose range ends with the year 9999.
const MANUAL_RANGE: std::ops::RangeInclusive<f64> = -62_000_000_000.0..=250_000_000_000.0;

fn to_timestamp(seconds: f64) -> PyResult<Timestamp> {
    if !MANUAL_RANGE.contains(&seconds) {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "a ManualClock's time must be a number of seconds since the epoch from {:e} to {:e} \
             (years 5 to 9892, so that every session deadline is a datetime), got {seconds:e}",
            MANUAL_RANGE.start(),
            MANUAL_RANGE.end()
        )));
    }
    Ok(Timestamp((seconds * 1000.0).round() as i64))
}

//! `pysessionmanager.RateLimiter`: GCRA rate limits kept in a session store.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sessionmanager_core::{ManagerConfig, Rate, RateDecision, RateLimit};

use crate::clock::clock_arg;
use crate::convert::{positive_u32, str_arg};
use crate::errors::{IntoPyResult, wrong_type};
use crate::fork::{Engine, ProcessEngine};
use crate::manager::SessionManager;
use crate::ops::{self, Task, run_task};

/// Allows `rate` hits per key (`"100/minute"`), `burst` of them at once.
#[pyclass(module = "pysessionmanager", frozen)]
pub(crate) struct RateLimiter {
    engine: Arc<ProcessEngine>,
    limit: RateLimit,
    rate: String,
    store_url: String,
}

impl RateLimiter {
    /// A hit on `key`, ready to run (here or on the store's executor).
    pub(crate) fn hit_task(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Task> {
        ops::hit_rate_limit(self.engine(py)?, self.limit, key)
    }

    /// The engine of this process.
    pub(crate) fn engine(&self, py: Python<'_>) -> PyResult<Arc<Engine>> {
        Ok(self.engine.get(py)?.into_owned())
    }
}

#[pymethods]
impl RateLimiter {
    #[new]
    #[pyo3(signature = (rate, *, burst = None, store = None, clock = None))]
    fn new(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        burst: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let text = str_arg(rate, "rate")?;
        let parsed: Rate = text.parse().py(py)?;
        let burst = burst
            .filter(|b| !b.is_none())
            .map(|b| positive_u32(b, "burst"))
            .transpose()?;
        let limit = RateLimit::new(parsed, burst).py(py)?;
        let (engine, store_url) = match store.filter(|s| !s.is_none()) {
            Some(store) => match store.cast::<SessionManager>() {
                Ok(manager) => {
                    if clock.is_some_and(|c| !c.is_none()) {
                        return Err(PyValueError::new_err(
                            "clock= cannot be given with a SessionManager: \
                             the limiter uses the manager's clock",
                        ));
                    }
                    let manager = manager.get();
                    (
                        Arc::clone(manager.shared_engine()),
                        manager.store_url().to_owned(),
                    )
                }
                Err(_) => {
                    let url = str_arg(store, "store").map_err(|_| {
                        wrong_type("store", "a store URL or a SessionManager", store)
                    })?;
                    own_engine(py, url, clock)?
                }
            },
            None => own_engine(py, "memory://", clock)?,
        };
        Ok(Self {
            engine,
            limit,
            rate: text.to_owned(),
            store_url,
        })
    }

    /// Counts a hit on `key` if the limit allows it; says what it decided.
    fn hit(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        run_task(py, self.hit_task(py, key)?)
    }

    /// The rate, as given.
    #[getter]
    fn rate(&self) -> &str {
        &self.rate
    }

    /// Hits allowed at once.
    #[getter]
    fn burst(&self) -> u32 {
        self.limit.burst()
    }

    /// The store URL, with any password hidden.
    #[getter]
    fn store(&self) -> &str {
        &self.store_url
    }

    fn __repr__(&self) -> String {
        format!("RateLimiter({:?}, burst={})", self.rate, self.limit.burst())
    }
}

/// What one hit decided. True when allowed.
#[pyclass(module = "pysessionmanager", frozen)]
pub(crate) struct RateLimitResult {
    /// Whether the hit was allowed (and counted).
    #[pyo3(get)]
    allowed: bool,
    /// Hits still allowed right now.
    #[pyo3(get)]
    remaining: u32,
    /// Seconds until a hit would be allowed; 0 when this one was.
    #[pyo3(get)]
    retry_after: f64,
}

impl From<RateDecision> for RateLimitResult {
    fn from(decision: RateDecision) -> Self {
        Self {
            allowed: decision.allowed,
            remaining: decision.remaining,
            retry_after: decision.retry_after.as_secs_f64(),
        }
    }
}

#[pymethods]
impl RateLimitResult {
    fn __bool__(&self) -> bool {
        self.allowed
    }

    fn __repr__(&self) -> String {
        format!(
            "RateLimitResult(allowed={}, remaining={}, retry_after={:?})",
            if self.allowed { "True" } else { "False" },
            self.remaining,
            self.retry_after
        )
    }
}

/// A store of the limiter's own, with default settings, and its URL.
fn own_engine(
    py: Python<'_>,
    url: &str,
    clock: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Arc<ProcessEngine>, String)> {
    let config = ManagerConfig {
        clock: clock_arg(clock)?,
        ..ManagerConfig::default()
    };
    let manager = SessionManager::open(py, url, config)?;
    Ok((
        Arc::clone(manager.shared_engine()),
        manager.store_url().to_owned(),
    ))
}

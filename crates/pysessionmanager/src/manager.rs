//! `pysessionmanager.SessionManager`: argument checking and conversion around
//! the engine's manager, with the GIL released while the engine works.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use sessionmanager_core::{
    DataLimits, ExpiryPolicy, LimitAction, ManagerConfig, block_on_interruptible,
};

use crate::clock::clock_arg;
use crate::convert::{optional_bool, optional_seconds, positive_int, positive_u32, str_arg};
use crate::errors::IntoPyResult;
use crate::fork::{Engine, ProcessEngine};
use crate::ops::{self, run_task};
use crate::store;

/// Creates, reads, updates and ends sessions. See the package documentation.
#[pyclass(module = "pysessionmanager", subclass, frozen)]
pub(crate) struct SessionManager {
    engine: Arc<ProcessEngine>,
    store_url: String,
}

impl SessionManager {
    /// A manager on the store `url` names, with `config`.
    pub(crate) fn open(py: Python<'_>, url: &str, config: ManagerConfig) -> PyResult<Self> {
        Ok(Self {
            engine: Arc::new(ProcessEngine::open(py, url, config)?),
            store_url: store::redact(url),
        })
    }

    /// The engine of this process, for a call to own.
    pub(crate) fn owned_engine(&self, py: Python<'_>) -> PyResult<Arc<Engine>> {
        Ok(self.engine.get(py)?.into_owned())
    }

    /// The engine, to share its store (a rate limiter does).
    pub(crate) fn shared_engine(&self) -> &Arc<ProcessEngine> {
        &self.engine
    }

    /// The store URL, with any password hidden.
    pub(crate) fn store_url(&self) -> &str {
        &self.store_url
    }
}

#[pymethods]
impl SessionManager {
    #[new]
    #[pyo3(signature = (
        expiration_time = None,
        *,
        store = None,
        absolute_timeout = None,
        sliding = None,
        max_sessions_per_user = None,
        on_limit = None,
        max_data_bytes = None,
        clock = None,
        metrics = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        expiration_time: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
        absolute_timeout: Option<&Bound<'_, PyAny>>,
        sliding: Option<&Bound<'_, PyAny>>,
        max_sessions_per_user: Option<&Bound<'_, PyAny>>,
        on_limit: Option<&Bound<'_, PyAny>>,
        max_data_bytes: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        metrics: Option<&Bound<'_, PyAny>>,
        py: Python<'_>,
    ) -> PyResult<Self> {
        let expiry = ExpiryPolicy {
            idle_timeout_ms: optional_seconds(expiration_time, "expiration_time")?
                .unwrap_or(ExpiryPolicy::DEFAULT.idle_timeout_ms),
            sliding: optional_bool(sliding, "sliding")?.unwrap_or(true),
            absolute_timeout_ms: optional_seconds(absolute_timeout, "absolute_timeout")?,
        };
        let on_limit = match on_limit.filter(|v| !v.is_none()) {
            Some(value) => str_arg(value, "on_limit")?,
            None => "evict_oldest",
        };
        let on_limit = match on_limit {
            "evict_oldest" => LimitAction::EvictOldest,
            "reject" => LimitAction::Reject,
            other => {
                return Err(PyValueError::new_err(format!(
                    "on_limit must be \"evict_oldest\" or \"reject\", got {other:?}"
                )));
            }
        };
        let max_sessions_per_user = max_sessions_per_user
            .filter(|v| !v.is_none())
            .map(|v| positive_u32(v, "max_sessions_per_user"))
            .transpose()?;
        let limits = DataLimits {
            max_bytes: match max_data_bytes.filter(|v| !v.is_none()) {
                Some(value) => positive_int(value, "max_data_bytes")? as usize,
                None => DataLimits::DEFAULT_MAX_BYTES,
            },
            ..DataLimits::default()
        };
        let clock = clock_arg(clock)?;
        let url = match store.filter(|s| !s.is_none()) {
            Some(url) => str_arg(url, "store")?,
            None => "memory://",
        };
        let config = ManagerConfig {
            expiry,
            limits,
            max_sessions_per_user,
            on_limit,
            clock,
            metrics: optional_bool(metrics, "metrics")?.unwrap_or(true),
        };
        Self::open(py, url, config)
    }

    /// Starts a session for `user_id` holding `data` and returns its id.
    #[pyo3(signature = (
        user_id, data = None, *, expiration_time = None, absolute_timeout = None, sliding = None
    ))]
    fn create_session(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
        data: Option<&Bound<'_, PyAny>>,
        expiration_time: Option<&Bound<'_, PyAny>>,
        absolute_timeout: Option<&Bound<'_, PyAny>>,
        sliding: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let engine = self.owned_engine(py)?;
        let task = ops::create_session(
            engine,
            user_id,
            data,
            expiration_time,
            absolute_timeout,
            sliding,
        )?;
        run_task(py, task)
    }

    /// The session's data as a `Session` dict, counting as activity.
    fn get_session(&self, py: Python<'_>, session_id: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        run_task(py, ops::get_session(self.owned_engine(py)?, session_id)?)
    }

    /// Like `get_session`, but not counted as activity (no sliding refresh).
    fn session_info(&self, py: Python<'_>, session_id: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        run_task(py, ops::session_info(self.owned_engine(py)?, session_id)?)
    }

    /// Whether `session_id` names a live session. Never raises for a bad or unknown id.
    fn is_session_active(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        run_task(
            py,
            ops::is_session_active(self.owned_engine(py)?, session_id)?,
        )
    }

    /// Ends the session. Ending an unknown or already ended session does nothing.
    fn end_session(&self, py: Python<'_>, session_id: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        run_task(py, ops::end_session(self.owned_engine(py)?, session_id)?)
    }

    /// Sets the given top-level keys, keeping the others; atomic against concurrent updates.
    fn update_session(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        run_task(
            py,
            ops::update_session(self.owned_engine(py)?, session_id, data)?,
        )
    }

    /// Replaces the data; with `expected_version`, only if unchanged since.
    /// Returns the new version.
    #[pyo3(signature = (session_id, data, *, expected_version = None))]
    fn set_session_data(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        expected_version: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let engine = self.owned_engine(py)?;
        let task = ops::set_session_data(engine, session_id, data, expected_version)?;
        run_task(py, task)
    }

    /// For the web integrations: writes back what a request changed in a
    /// session it read, the keys that `save_step` named. `basis` is what the
    /// request last read or wrote (a `Session`, a `SessionMeta`, or only a
    /// version), `stored` the data then, `current` the data now. Returns
    /// `None` when the session is gone, else the written session's metadata
    /// and, when another writer's keys were merged in, the data as stored
    /// (`None` when `current` was stored as given).
    #[pyo3(signature = (session_id, basis, stored, current, keys))]
    fn apply_changes(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
        basis: &Bound<'_, PyAny>,
        stored: &Bound<'_, PyAny>,
        current: &Bound<'_, PyAny>,
        keys: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let engine = self.owned_engine(py)?;
        let task = ops::apply_changes(engine, session_id, basis, stored, current, keys)?;
        run_task(py, task)
    }

    /// Adds `by` to the integer at `key` (missing counts as 0), atomically. Returns the new value.
    #[pyo3(signature = (session_id, key, by = None))]
    fn increment(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        by: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        run_task(
            py,
            ops::increment(self.owned_engine(py)?, session_id, key, by)?,
        )
    }

    /// Appends `value` to the list at `key` (missing starts one), atomically:
    /// concurrent appends all land. Returns the list's new length.
    fn append(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        run_task(
            py,
            ops::append(self.owned_engine(py)?, session_id, key, value)?,
        )
    }

    /// Moves the session to a new id (same data and user) and returns it; the old id dies at once.
    fn rotate_session(&self, py: Python<'_>, session_id: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        run_task(py, ops::rotate_session(self.owned_engine(py)?, session_id)?)
    }

    /// Records activity now, extending a sliding expiry.
    fn touch(&self, py: Python<'_>, session_id: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        run_task(py, ops::touch(self.owned_engine(py)?, session_id)?)
    }

    /// The user's live sessions, oldest first (their `session_id` is None: only hashes are stored).
    fn list_sessions(&self, py: Python<'_>, user_id: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        run_task(py, ops::list_sessions(self.owned_engine(py)?, user_id)?)
    }

    /// Ends the session whose `key` (as `list_sessions` shows it) is given,
    /// if it is `user_id`'s. Returns whether it ended one.
    fn end_session_by_key(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        run_task(
            py,
            ops::end_session_by_key(self.owned_engine(py)?, user_id, key)?,
        )
    }

    /// Ends the session named `key` whoever owns it: for operators' tools.
    fn end_any_session_by_key(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let task = ops::end_any_session_by_key(self.owned_engine(py)?, key)?;
        run_task(py, task)
    }

    /// Ends the user's sessions, except `except_session`. Returns how many ended.
    #[pyo3(signature = (user_id, except_session = None))]
    fn end_user_sessions(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
        except_session: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let engine = self.owned_engine(py)?;
        run_task(py, ops::end_user_sessions(engine, user_id, except_session)?)
    }

    /// Removes expired sessions now (the store also does this on its own). Returns how many.
    fn purge_expired(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        run_task(py, ops::purge_expired(self.owned_engine(py)?)?)
    }

    /// How many live sessions the store holds.
    fn count(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        run_task(py, ops::count(self.owned_engine(py)?)?)
    }

    /// A page of about `limit` live sessions (default 1000) from `cursor`
    /// on, as dicts, and the cursor of the next page (`None`: done).
    #[pyo3(signature = (cursor = None, limit = None))]
    fn export_sessions(
        &self,
        py: Python<'_>,
        cursor: Option<&Bound<'_, PyAny>>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let task = crate::export::export_sessions(self.owned_engine(py)?, cursor, limit)?;
        run_task(py, task)
    }

    /// Stores sessions as `export_sessions` gave them; counts by outcome.
    fn import_sessions(&self, py: Python<'_>, sessions: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let engine = self.owned_engine(py)?;
        let task = crate::export::import_sessions(Arc::clone(&engine), sessions)?;
        crate::export::run_batch(py, &engine, task)
    }

    /// Copies a page of sessions from this store into `target`'s.
    #[pyo3(signature = (target, cursor = None, limit = None))]
    fn copy_sessions(
        &self,
        py: Python<'_>,
        target: PyRef<'_, SessionManager>,
        cursor: Option<&Bound<'_, PyAny>>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let to = target.owned_engine(py)?;
        let task =
            crate::export::copy_sessions(self.owned_engine(py)?, Arc::clone(&to), cursor, limit)?;
        crate::export::run_batch(py, &to, task)
    }

    /// The version of the layout the store reads and writes (a SQL store's schema version).
    #[getter]
    fn store_layout_version(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(sessionmanager_core::SessionStore::layout_version(
            self.owned_engine(py)?.store(),
        ))
    }

    /// A native stream of this manager's session events holding at most
    /// `capacity` unread ones; `pysessionmanager.events.subscribe` reads it.
    fn event_stream(
        &self,
        py: Python<'_>,
        capacity: usize,
    ) -> PyResult<crate::events::EventStream> {
        let subscription = self.owned_engine(py)?.subscribe(capacity);
        Ok(crate::events::EventStream::new(subscription))
    }

    /// What this manager counted since it opened (in a forked child: since
    /// the child's first call), or `None` when made with `metrics=False`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match self.owned_engine(py)?.stats() {
            Some(snapshot) => crate::stats::to_py(py, &snapshot).map(Some),
            None => Ok(None),
        }
    }

    /// Releases the store. Later calls raise `ManagerClosed`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.engine.close(py)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// The default idle timeout, in seconds.
    #[getter]
    fn expiration_time(&self) -> f64 {
        self.engine.config().expiry.idle_timeout_ms as f64 / 1000.0
    }

    /// The store URL, with any password hidden.
    #[getter]
    fn store(&self) -> &str {
        self.store_url()
    }

    fn __repr__(&self) -> String {
        format!(
            "SessionManager(store={:?}, expiration_time={})",
            self.store_url,
            self.expiration_time()
        )
    }
}

/// Runs an engine call with the GIL released, converting its error.
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    call: impl Future<Output = sessionmanager_core::Result<T>> + Send,
) -> PyResult<T> {
    crate::interrupt::note_thread(py);
    let result = crate::exit::detach(py, || block_on_interruptible(call));
    if let Some(raised) = crate::interrupt::take_raised() {
        return Err(raised); // Ctrl-C's KeyboardInterrupt, say
    }
    result.py(py)
}

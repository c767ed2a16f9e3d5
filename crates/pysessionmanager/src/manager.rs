//! `pysessionmanager.SessionManager`: argument checking and conversion around
//! the engine's manager, with the GIL released while the engine works.

use std::borrow::Cow;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use sessionmanager_core::{
    ApplyOutcome, CreateOptions, DataLimits, ExpiryPolicy, LimitAction, ManagerConfig,
    block_on_interruptible,
};

use crate::clock::clock_arg;
use crate::convert::{
    basis_arg, data_from_py, dict_arg, fill_dict, int_arg, key_items, optional_bool,
    optional_seconds, positive_int, positive_u32, required_data, session_id_arg, str_arg,
};
use crate::errors::IntoPyResult;
use crate::fork::{Engine, ProcessEngine};
use crate::session::{self, SessionMeta};
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

    /// The engine of this process.
    fn engine<'a>(&'a self, py: Python<'_>) -> PyResult<Cow<'a, Arc<Engine>>> {
        self.engine.get(py)
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
        };
        Self::open(py, url, config)
    }

    /// Starts a session for `user_id` holding `data` and returns its id.
    #[pyo3(signature = (
        user_id, data = None, *, expiration_time = None, absolute_timeout = None, sliding = None
    ))]
    fn create_session<'py>(
        &self,
        py: Python<'py>,
        user_id: &Bound<'py, PyAny>,
        data: Option<&Bound<'py, PyAny>>,
        expiration_time: Option<&Bound<'py, PyAny>>,
        absolute_timeout: Option<&Bound<'py, PyAny>>,
        sliding: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyString>> {
        let user_id = str_arg(user_id, "user_id")?;
        let options = CreateOptions {
            idle_timeout_ms: optional_seconds(expiration_time, "expiration_time")?,
            sliding: optional_bool(sliding, "sliding")?,
            absolute_timeout_ms: optional_seconds(absolute_timeout, "absolute_timeout")?,
        };
        let data = data_from_py(data, &self.engine.config().limits).py(py)?;
        let token = run(py, self.engine(py)?.create(user_id, data, options))?;
        Ok(PyString::new(py, token.as_str()))
    }

    /// The session's data as a `Session` dict, counting as activity.
    fn get_session<'py>(
        &self,
        py: Python<'py>,
        session_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = session_id_arg(session_id, "session_id")?;
        let found = run(py, self.engine(py)?.get(token))?;
        session::to_py(py, found, Some(session_id.clone().unbind()))
    }

    /// Like `get_session`, but not counted as activity (no sliding refresh).
    fn session_info<'py>(
        &self,
        py: Python<'py>,
        session_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = session_id_arg(session_id, "session_id")?;
        let found = run(py, self.engine(py)?.peek(token))?;
        session::to_py(py, found, Some(session_id.clone().unbind()))
    }

    /// Whether `session_id` names a live session. Never raises for a bad or unknown id.
    fn is_session_active(&self, py: Python<'_>, session_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(token) = session_id_arg(session_id, "session_id") else {
            return Ok(false);
        };
        run(py, self.engine(py)?.is_active(token))
    }

    /// Ends the session. Ending an unknown or already ended session does nothing.
    fn end_session(&self, py: Python<'_>, session_id: &Bound<'_, PyAny>) -> PyResult<()> {
        let token = session_id_arg(session_id, "session_id")?;
        run(py, self.engine(py)?.end(token))
    }

    /// Sets the given top-level keys, keeping the others; atomic against concurrent updates.
    fn update_session(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let token = session_id_arg(session_id, "session_id")?;
        let patch = required_data(data, &self.engine.config().limits).py(py)?;
        run(py, self.engine(py)?.update(token, &patch))?;
        Ok(())
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
    ) -> PyResult<u64> {
        let token = session_id_arg(session_id, "session_id")?;
        let expected = match expected_version.filter(|v| !v.is_none()) {
            Some(v) => Some(positive_int(v, "expected_version")?),
            None => None,
        };
        let data = required_data(data, &self.engine.config().limits).py(py)?;
        run(py, self.engine(py)?.set_data(token, data, expected))
    }

    /// For the web integrations: writes back what a request changed in a
    /// session it read, the keys that `save_step` named. `basis` is what the
    /// request last read or wrote (a `Session`, a `SessionMeta`, or only a
    /// version), `stored` the data then, `current` the data now. Returns
    /// `None` when the session is gone, else the written session's metadata
    /// and, when another writer's keys were merged in, the data as stored
    /// (`None` when `current` was stored as given).
    #[pyo3(signature = (session_id, basis, stored, current, keys))]
    fn apply_changes<'py>(
        &self,
        py: Python<'py>,
        session_id: &Bound<'py, PyAny>,
        basis: &Bound<'py, PyAny>,
        stored: &Bound<'py, PyAny>,
        current: &Bound<'py, PyAny>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let token = session_id_arg(session_id, "session_id")?;
        let limits = self.engine.config().limits;
        let stored = dict_arg(stored, "stored")?;
        let data = required_data(current, &limits).py(py)?;
        let keys = key_items(keys)?;
        let keys = keys
            .iter()
            .map(|key| str_arg(key, "each key"))
            .collect::<PyResult<Vec<&str>>>()?;
        // What the changed keys held when the request read them.
        let base = PyDict::new(py);
        for key in &keys {
            if let Some(value) = stored.get_item(key)? {
                base.set_item(key, value)?;
            }
        }
        let base = required_data(&base, &limits).py(py)?;
        let basis = basis_arg(basis, &data)?;
        let sent = data.clone();
        let ApplyOutcome::Saved(written) = run(
            py,
            self.engine(py)?
                .apply_changes(token, basis, data, &keys, &base),
        )?
        else {
            return Ok(None);
        };
        let merged = if written.record.data == sent {
            py.None().into_bound(py)
        } else {
            let dict = PyDict::new(py);
            fill_dict(&dict, written.record.data.as_json())?;
            dict.into_any()
        };
        let meta = SessionMeta::of(written, Some(session_id.clone().unbind()));
        Ok(Some(PyTuple::new(
            py,
            [Bound::new(py, meta)?.into_any(), merged],
        )?))
    }

    /// Adds `by` to the integer at `key` (missing counts as 0), atomically. Returns the new value.
    #[pyo3(signature = (session_id, key, by = None))]
    fn increment(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        by: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<i64> {
        let token = session_id_arg(session_id, "session_id")?;
        let key = str_arg(key, "key")?;
        let by = match by {
            Some(by) => int_arg(by, "by")?,
            None => 1,
        };
        run(py, self.engine(py)?.increment(token, key, by))
    }

    /// Appends `value` to the list at `key` (missing starts one), atomically:
    /// concurrent appends all land. Returns the list's new length.
    fn append(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let token = session_id_arg(session_id, "session_id")?;
        let key_text = str_arg(key, "key")?;
        // Checked as the data it becomes part of, so a refusal names its path.
        let holder = PyDict::new(py);
        holder.set_item(key, PyList::new(py, [value])?)?;
        let checked = data_from_py(Some(holder.as_any()), &self.engine.config().limits).py(py)?;
        let item = match checked.to_map().remove(key_text) {
            Some(serde_json::Value::Array(mut list)) if list.len() == 1 => list.remove(0),
            _ => unreachable!("the holder has the one key, holding a list of one item"),
        };
        run(py, self.engine(py)?.append(token, key_text, &item))
    }

    /// Moves the session to a new id (same data and user) and returns it; the old id dies at once.
    fn rotate_session<'py>(
        &self,
        py: Python<'py>,
        session_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyString>> {
        let token = session_id_arg(session_id, "session_id")?;
        let new = run(py, self.engine(py)?.rotate(token))?;
        Ok(PyString::new(py, new.as_str()))
    }

    /// Records activity now, extending a sliding expiry.
    fn touch(&self, py: Python<'_>, session_id: &Bound<'_, PyAny>) -> PyResult<()> {
        let token = session_id_arg(session_id, "session_id")?;
        run(py, self.engine(py)?.touch(token))
    }

    /// The user's live sessions, oldest first (their `session_id` is None: only hashes are stored).
    fn list_sessions<'py>(
        &self,
        py: Python<'py>,
        user_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let user_id = str_arg(user_id, "user_id")?;
        let sessions = run(py, self.engine(py)?.list_user(user_id))?;
        let list = PyList::empty(py);
        for found in sessions {
            list.append(session::to_py(py, found, None)?)?;
        }
        Ok(list)
    }

    /// Ends the user's sessions, except `except_session`. Returns how many ended.
    #[pyo3(signature = (user_id, except_session = None))]
    fn end_user_sessions(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
        except_session: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let user_id = str_arg(user_id, "user_id")?;
        let keep = match except_session.filter(|s| !s.is_none()) {
            Some(s) => Some(session_id_arg(s, "except_session")?),
            None => None,
        };
        run(py, self.engine(py)?.end_user(user_id, keep))
    }

    /// Removes expired sessions now (the store also does this on its own). Returns how many.
    fn purge_expired(&self, py: Python<'_>) -> PyResult<u64> {
        run(py, self.engine(py)?.purge_expired())
    }

    /// How many live sessions the store holds.
    fn count(&self, py: Python<'_>) -> PyResult<u64> {
        run(py, self.engine(py)?.count())
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

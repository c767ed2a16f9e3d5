//! Sessions handed to Python: a `dict` subclass (defined in
//! `pysessionmanager/session.py`) holding the data, with the metadata in a
//! small native object behind read-only properties.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use sessionmanager_core::{Session, SessionData, SessionKey, SessionRecord, Timestamp};

use crate::convert::fill_dict;

static SESSION_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Metadata of one session. Times are milliseconds since the Unix epoch; the
/// Python `Session` class turns them into aware datetimes on access.
#[pyclass(module = "pysessionmanager", frozen)]
pub(crate) struct SessionMeta {
    session_id: Option<Py<PyAny>>,
    key: [u8; 32],
    user_id: std::sync::Arc<str>,
    #[pyo3(get)]
    version: u64,
    #[pyo3(get)]
    created_at_ms: i64,
    #[pyo3(get)]
    last_active_ms: i64,
    #[pyo3(get)]
    expires_at_ms: i64,
    #[pyo3(get)]
    absolute_expires_at_ms: Option<i64>,
    #[pyo3(get)]
    idle_timeout_ms: i64,
    #[pyo3(get)]
    sliding: bool,
}

impl SessionMeta {
    /// The metadata of `session` (its data is left out), read or written by
    /// `session_id`.
    pub(crate) fn of(session: Session, session_id: Option<Py<PyAny>>) -> Self {
        let record = session.record;
        Self {
            session_id,
            key: *session.key.as_bytes(),
            user_id: record.user_id,
            version: record.version,
            created_at_ms: record.created_at.millis(),
            last_active_ms: record.last_active.millis(),
            expires_at_ms: record.expires_at.millis(),
            absolute_expires_at_ms: record.absolute_expires_at.map(|t| t.millis()),
            idle_timeout_ms: record.idle_timeout_ms,
            sliding: record.sliding,
        }
    }

    /// The session this describes, holding `data`: what a write that read
    /// it is based on.
    pub(crate) fn to_session(&self, data: SessionData) -> Session {
        Session {
            key: SessionKey::from_bytes(self.key),
            record: SessionRecord {
                user_id: self.user_id.clone(),
                data,
                version: self.version,
                created_at: Timestamp(self.created_at_ms),
                last_active: Timestamp(self.last_active_ms),
                expires_at: Timestamp(self.expires_at_ms),
                idle_timeout_ms: self.idle_timeout_ms,
                sliding: self.sliding,
                absolute_expires_at: self.absolute_expires_at_ms.map(Timestamp),
            },
        }
    }
}

#[pymethods]
impl SessionMeta {
    /// The session's token, when it was read by token (`None` from `list_sessions`,
    /// since stores keep only token hashes).
    #[getter]
    fn session_id(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.session_id.as_ref().map(|id| id.clone_ref(py))
    }

    /// SHA-256 of the token in hex: a public, non-secret name for the session.
    #[getter]
    fn key(&self) -> String {
        sessionmanager_core::SessionKey::from_bytes(self.key).to_hex()
    }

    /// The user the session belongs to.
    #[getter]
    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn __repr__(&self) -> String {
        format!(
            "SessionMeta(user_id={:?}, version={})",
            &*self.user_id, self.version
        )
    }
}

/// Builds a `pysessionmanager.Session` (a dict) from an engine session.
pub(crate) fn to_py<'py>(
    py: Python<'py>,
    session: Session,
    session_id: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let class = SESSION_CLASS.get_or_try_init(py, || -> PyResult<_> {
        let class = py.import("pysessionmanager.session")?.getattr("Session")?;
        Ok(class.cast_into::<PyType>()?.unbind())
    })?;
    let object = class.bind(py).call0()?;
    fill_dict(object.cast::<PyDict>()?, session.record.data.as_json())?;
    let meta = SessionMeta::of(session, session_id);
    object.setattr(pyo3::intern!(py, "_meta"), Bound::new(py, meta)?)?;
    Ok(object)
}

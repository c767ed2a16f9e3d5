//! The one place engine errors become Python exceptions. The classes live in
//! `pysessionmanager/errors.py` so they can inherit from two builtins at once
//! (`SessionNotFound` is also a `KeyError`).

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;
use sessionmanager_core::{DataErrorKind, Error};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let module = ERRORS.get_or_try_init(py, || {
        py.import("pysessionmanager.errors").map(Bound::unbind)
    })?;
    module.bind(py).getattr(name)
}

/// Builds an instance of `pysessionmanager.errors.<name>(message)` with extra attributes.
fn raise(py: Python<'_>, name: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let built = class(py, name).and_then(|cls| {
        let exc = cls.call1((message,))?;
        for (attr, value) in attrs {
            exc.setattr(*attr, value)?;
        }
        Ok(exc)
    });
    match built {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// An exception attribute value.
fn attr<'py, T: IntoPyObjectExt<'py>>(py: Python<'py>, value: T) -> Py<PyAny> {
    value.into_py_any(py).unwrap_or_else(|_| py.None())
}

/// Converts an engine error to the matching Python exception.
pub(crate) fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::NotFound => raise(py, "SessionNotFound", message, &[]),
        Error::Conflict { expected, actual } => raise(
            py,
            "SessionConflict",
            message,
            &[
                ("expected_version", attr(py, expected)),
                ("actual_version", attr(py, actual)),
                ("key", py.None()),
            ],
        ),
        Error::KeyConflict {
            key,
            expected,
            actual,
        } => raise(
            py,
            "SessionConflict",
            message,
            &[
                ("expected_version", attr(py, expected)),
                ("actual_version", attr(py, actual)),
                ("key", attr(py, key)),
            ],
        ),
        Error::UserLimitReached { limit } => raise(
            py,
            "SessionLimitExceeded",
            message,
            &[("limit", attr(py, limit))],
        ),
        Error::StoreFull { max_sessions } => raise(
            py,
            "StoreFull",
            message,
            &[("limit", attr(py, max_sessions))],
        ),
        Error::InvalidData { path, kind, .. } => {
            let name = match kind {
                DataErrorKind::Type => "UnsupportedDataType",
                _ => "InvalidSessionData",
            };
            let path = attr(py, path);
            raise(py, name, message, &[("path", path)])
        }
        Error::InvalidArgument(message) => PyValueError::new_err(message),
        Error::Closed => raise(py, "ManagerClosed", message, &[]),
        Error::Unavailable(_) => raise(py, "StoreUnavailable", message, &[]),
        Error::Store(_) | Error::NewerSchema { .. } | Error::RotationTargetTaken => {
            raise(py, "StoreError", message, &[])
        }
        other => raise(py, "SessionError", other.to_string(), &[]),
    }
}

/// Extension for engine results: `.py(py)?` converts the error.
pub(crate) trait IntoPyResult<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

/// A `TypeError` for an argument of the wrong type.
pub(crate) fn wrong_type(name: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "{name} must be {expected}, got {}",
        got.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    ))
}

//! The `basis` argument of `SessionManager.apply_changes`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt};
use sessionmanager_core::{Basis, SessionData};

use super::positive_int;
use crate::errors::wrong_type;
use crate::session::SessionMeta;

/// `basis` of `apply_changes`: a `Session` or `SessionMeta` this request
/// read (with `data`, the data it will write), or only a version.
pub(crate) fn basis_arg(basis: &Bound<'_, PyAny>, data: &SessionData) -> PyResult<Basis> {
    let meta = match basis.cast::<PyDict>() {
        // A `Session`: its metadata is what this binding attached to it.
        Ok(session) => session.getattr(pyo3::intern!(basis.py(), "_meta")).ok(),
        Err(_) => Some(basis.clone()),
    };
    if let Some(meta) = meta.as_ref().and_then(|m| m.cast::<SessionMeta>().ok()) {
        return Ok(Basis::Read(meta.get().to_session(data.clone())));
    }
    if basis.is_instance_of::<PyInt>() {
        return Ok(Basis::Version(positive_int(basis, "basis")?));
    }
    Err(wrong_type(
        "basis",
        "a Session, a SessionMeta or an int version",
        basis,
    ))
}

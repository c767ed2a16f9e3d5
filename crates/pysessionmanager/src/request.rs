//! The web integrations' save rule ([`sessionmanager_core::save_step`]) on
//! Python dicts, for Flask, Starlette and Django (`contrib/_web.py`).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use sessionmanager_core::{RequestData, SaveStep, save_step as core_save_step};

use crate::convert::dict_arg;

/// A request's session data as a `dict` of stored (encoded) values.
pub(crate) struct PyData<'py>(pub(crate) Bound<'py, PyDict>);

impl<'py> RequestData for PyData<'py> {
    type Key = Bound<'py, PyAny>;
    type Error = PyErr;

    fn keys(&self) -> Vec<Self::Key> {
        self.0.keys().iter().collect()
    }

    fn contains(&self, key: &Self::Key) -> bool {
        // A key taken from a dict is hashable: this cannot raise.
        self.0.contains(key).unwrap_or(false)
    }

    fn same_at(&self, other: &Self, key: &Self::Key) -> PyResult<bool> {
        match (self.0.get_item(key)?, other.0.get_item(key)?) {
            (Some(mine), Some(theirs)) => mine.eq(theirs),
            _ => Ok(false),
        }
    }
}

/// What the end of a request needs, by the rule every integration follows:
/// `("nothing", [])` (the request failed, changed nothing, or is a visitor
/// with empty data), `("create", [])` (a visitor's first data), `("end", [])`
/// (the data was cleared) or `("apply", keys)` (write the data with
/// `SessionManager.apply_changes`, re-applying the keys the request set,
/// changed or removed). `stored` is the data as stored when the request
/// last read or wrote it, `current` what it holds now (both encoded).
#[pyfunction]
#[pyo3(signature = (stored, current, *, stored_session, failed = false))]
pub(crate) fn save_step<'py>(
    py: Python<'py>,
    stored: &Bound<'py, PyAny>,
    current: &Bound<'py, PyAny>,
    stored_session: bool,
    failed: bool,
) -> PyResult<(&'static str, Bound<'py, PyList>)> {
    let stored = PyData(dict_arg(stored, "stored")?);
    let current = PyData(dict_arg(current, "current")?);
    let step = core_save_step(failed, stored_session, &stored, &current)?;
    Ok(match step {
        SaveStep::Nothing => ("nothing", PyList::empty(py)),
        SaveStep::Create => ("create", PyList::empty(py)),
        SaveStep::End => ("end", PyList::empty(py)),
        SaveStep::Apply(keys) => ("apply", PyList::new(py, keys)?),
    })
}

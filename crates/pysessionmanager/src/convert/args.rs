//! Checking plain arguments: ids, durations, flags, key lists and dicts.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use sessionmanager_core::MAX_TIMEOUT_MS;

use crate::errors::wrong_type;

/// `value` as a borrowed Rust string (no copy: CPython keeps the UTF-8 form
/// with the object), or a `TypeError` naming the argument.
pub(crate) fn str_arg<'a>(value: &'a Bound<'_, PyAny>, name: &str) -> PyResult<&'a str> {
    match value.cast::<PyString>() {
        Ok(text) => text
            .to_str()
            .map_err(|_| PyValueError::new_err(format!("{name} must be encodable as UTF-8"))),
        Err(_) => Err(wrong_type(name, "a str", value)),
    }
}

/// A session id as a Rust string. A `str` that cannot be UTF-8 (a lone
/// surrogate) cannot be a token either, so it reads as an id that matches no
/// session rather than as an error: a malformed id is simply "not found".
pub(crate) fn session_id_arg<'a>(value: &'a Bound<'_, PyAny>, name: &str) -> PyResult<&'a str> {
    match value.cast::<PyString>() {
        Ok(text) => Ok(text.to_str().unwrap_or("")),
        Err(_) => str_arg(value, name),
    }
}

/// A duration in seconds (int or float) as whole milliseconds, or a clear error.
pub(crate) fn seconds_to_millis(value: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    let is_number = (value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>())
        && !value.is_instance_of::<PyBool>();
    if !is_number {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number of seconds (int or float), got {}",
            value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )));
    }
    let seconds: f64 = value.extract().map_err(|_| out_of_range(name, value))?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(out_of_range(name, value));
    }
    let millis = (seconds * 1000.0).round();
    if millis < 1.0 || millis > MAX_TIMEOUT_MS as f64 {
        return Err(out_of_range(name, value));
    }
    Ok(millis as i64)
}

/// Like [`seconds_to_millis`], with `None` meaning "not given".
pub(crate) fn optional_seconds(
    value: Option<&Bound<'_, PyAny>>,
    name: &str,
) -> PyResult<Option<i64>> {
    match value {
        Some(v) if !v.is_none() => seconds_to_millis(v, name).map(Some),
        _ => Ok(None),
    }
}

fn out_of_range(name: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
    PyValueError::new_err(format!(
        "{name} must be between 0.001 seconds and 100 years, got {shown}"
    ))
}

/// An `int` argument (not a `bool`) that fits in 64 bits.
pub(crate) fn int_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
        return Err(wrong_type(name, "an int", value));
    }
    value
        .extract::<i64>()
        .map_err(|_| PyValueError::new_err(format!("{name} must fit in a signed 64-bit integer")))
}

/// An `int` argument of at least 1.
pub(crate) fn positive_int(value: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    let n = int_arg(value, name)?;
    u64::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be a positive integer, got {n}")))
}

/// [`positive_int`] that must also fit in 32 bits (a count of sessions or requests).
pub(crate) fn positive_u32(value: &Bound<'_, PyAny>, name: &str) -> PyResult<u32> {
    u32::try_from(positive_int(value, name)?)
        .map_err(|_| PyValueError::new_err(format!("{name} must be at most {}", u32::MAX)))
}

/// An optional flag: `None` (or absent) is `None`, else it must be a `bool`.
pub(crate) fn optional_bool(
    value: Option<&Bound<'_, PyAny>>,
    name: &str,
) -> PyResult<Option<bool>> {
    match value.filter(|v| !v.is_none()) {
        Some(v) => v
            .cast::<PyBool>()
            .map(|b| Some(b.is_true()))
            .map_err(|_| wrong_type(name, "a bool", v)),
        None => Ok(None),
    }
}

/// The items of `keys`, an iterable of key names (a lone `str` is refused:
/// it would iterate as its characters). Each is checked as a `str` where it is read.
pub(crate) fn key_items<'py>(keys: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let not_keys = || wrong_type("keys", "an iterable of str", keys);
    if keys.is_instance_of::<PyString>() {
        return Err(not_keys());
    }
    keys.try_iter().map_err(|_| not_keys())?.collect()
}

/// `value` as a `dict`, or a `TypeError` naming the argument.
pub(crate) fn dict_arg<'py>(value: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyDict>> {
    value
        .cast::<PyDict>()
        .cloned()
        .map_err(|_| wrong_type(name, "a dict", value))
}

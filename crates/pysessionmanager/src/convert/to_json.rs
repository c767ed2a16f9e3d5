//! Python data to compact JSON text, validating as it goes: one pass, and the
//! first offending value is reported with its path (`data['cart'][2]`).

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use sessionmanager_core::{
    DataErrorKind, DataLimits, DataPath, Error, SessionData, too_deep, write_json_string,
};

/// Converts `data` (a dict, or `None` for empty) to [`SessionData`] within `limits`.
pub(crate) fn data_from_py(
    data: Option<&Bound<'_, PyAny>>,
    limits: &DataLimits,
) -> Result<SessionData, Error> {
    let Some(data) = data.filter(|d| !d.is_none()) else {
        return Ok(SessionData::empty());
    };
    let Ok(dict) = data.cast::<PyDict>() else {
        return Err(type_error(
            &DataPath::root(),
            format!("must be a dict, got {}", type_name(data)),
        ));
    };
    let mut writer = JsonWriter {
        out: String::with_capacity(64),
        path: DataPath::root(),
        limits,
    };
    writer.object(dict)?;
    SessionData::from_validated_json(writer.out, limits)
}

struct JsonWriter<'a> {
    out: String,
    path: DataPath,
    limits: &'a DataLimits,
}

impl JsonWriter<'_> {
    fn value(&mut self, value: &Bound<'_, PyAny>) -> Result<(), Error> {
        if let Ok(text) = value.cast::<PyString>() {
            let text = text.to_str().map_err(|_| {
                value_error(
                    &self.path,
                    "is a str that cannot be encoded as UTF-8 (a lone surrogate?)",
                )
            })?;
            write_json_string(&mut self.out, text);
        } else if let Ok(flag) = value.cast::<PyBool>() {
            self.out
                .push_str(if flag.is_true() { "true" } else { "false" });
        } else if value.is_instance_of::<PyInt>() {
            self.integer(value)?;
        } else if let Ok(number) = value.cast::<PyFloat>() {
            let number = number.value();
            if !number.is_finite() {
                return Err(value_error(
                    &self.path,
                    format!("is {number}, which JSON cannot hold"),
                ));
            }
            // Debug keeps a '.' or an exponent, so the value reads back as a float.
            let _ = write!(self.out, "{number:?}");
        } else if value.is_none() {
            self.out.push_str("null");
        } else if let Ok(dict) = value.cast::<PyDict>() {
            self.enter()?;
            self.object(dict)?;
        } else if let Ok(list) = value.cast::<PyList>() {
            self.enter()?;
            self.list(list)?;
        } else {
            return Err(type_error(
                &self.path,
                format!(
                    "is of type {}, which session data cannot hold (use str, int, float, bool, None, list or dict)",
                    type_name(value)
                ),
            ));
        }
        self.check_size()
    }

    /// Refuses to open a container deeper than the limit. The path already
    /// names the container's position.
    fn enter(&self) -> Result<(), Error> {
        if self.path.depth() > self.limits.max_depth {
            return Err(too_deep(&self.path, self.limits));
        }
        Ok(())
    }

    fn object(&mut self, dict: &Bound<'_, PyDict>) -> Result<(), Error> {
        self.out.push('{');
        for (index, (key, item)) in dict.iter().enumerate() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(type_error(
                    &self.path,
                    format!(
                        "has key {} of type {}; keys must be str",
                        safe_repr(&key),
                        type_name(&key)
                    ),
                ));
            };
            let key = key.to_str().map_err(|_| {
                value_error(
                    &self.path,
                    "has a str key that cannot be encoded as UTF-8 (a lone surrogate?)",
                )
            })?;
            if index > 0 {
                self.out.push(',');
            }
            write_json_string(&mut self.out, key);
            self.out.push(':');
            self.path.push_key(key);
            self.value(&item)?;
            self.path.pop();
        }
        self.out.push('}');
        Ok(())
    }

    fn list(&mut self, list: &Bound<'_, PyList>) -> Result<(), Error> {
        self.out.push('[');
        for (index, item) in list.iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            self.path.push_index(index);
            self.value(&item)?;
            self.path.pop();
        }
        self.out.push(']');
        Ok(())
    }

    fn integer(&mut self, value: &Bound<'_, PyAny>) -> Result<(), Error> {
        if let Ok(n) = value.extract::<i64>() {
            let _ = write!(self.out, "{n}");
        } else if let Ok(n) = value.extract::<u64>() {
            let _ = write!(self.out, "{n}");
        } else {
            return Err(value_error(
                &self.path,
                format!(
                    "is the integer {}, which does not fit in 64 bits",
                    safe_repr(value)
                ),
            ));
        }
        Ok(())
    }

    /// Stops early once the text is over the limit, so a huge payload is not
    /// serialized in full before being refused.
    fn check_size(&self) -> Result<(), Error> {
        if self.out.len() > self.limits.max_bytes {
            return Err(value_error(
                &DataPath::root(),
                format!("is over max_data_bytes ({}) as JSON", self.limits.max_bytes),
            ));
        }
        Ok(())
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "<unknown>".to_owned())
}

/// A repr for error messages, cut short so a huge value cannot flood a log.
fn safe_repr(value: &Bound<'_, PyAny>) -> String {
    let text = value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("<{}>", type_name(value)));
    if text.chars().count() > 60 {
        let head: String = text.chars().take(57).collect();
        format!("{head}...")
    } else {
        text
    }
}

fn type_error(path: &DataPath, message: impl Into<String>) -> Error {
    data_error(path, DataErrorKind::Type, message)
}

fn value_error(path: &DataPath, message: impl Into<String>) -> Error {
    data_error(path, DataErrorKind::Value, message)
}

fn data_error(path: &DataPath, kind: DataErrorKind, message: impl Into<String>) -> Error {
    Error::InvalidData {
        path: path.as_str().to_owned(),
        message: message.into(),
        kind,
    }
}

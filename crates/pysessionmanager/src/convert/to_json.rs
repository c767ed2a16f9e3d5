//! Python data to compact JSON text, validating as it goes: one pass, and the
//! first offending value is reported with its path (`data['cart'][2]`).
//!
//! The path is built only for an error, step by step as it travels back out
//! of the containers, so data that is fine costs no path bookkeeping.

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use sessionmanager_core::{
    DataErrorKind, DataLimits, DataPath, Error, SessionData, too_deep_message, write_json_string,
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
        return Err(Refused::here(
            DataErrorKind::Type,
            format!("must be a dict, got {}", type_name(data)),
        )
        .into_error());
    };
    let mut writer = JsonWriter {
        out: String::with_capacity(64),
        depth: 1,
        limits,
    };
    writer.object(dict).map_err(Refused::into_error)?;
    SessionData::from_validated_json(writer.out, limits)
}

/// Why data was refused, and where: the steps from the offending value out
/// to the top of the data, innermost first (each container adds its own as
/// the refusal passes through it).
struct Refused {
    kind: DataErrorKind,
    message: String,
    steps: Vec<Step>,
    /// Whether the refusal is of the data as a whole (its size), so no path is kept.
    whole: bool,
}

enum Step {
    Key(String),
    Index(usize),
}

impl Refused {
    /// A refusal of the value being written.
    fn here(kind: DataErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            steps: Vec::new(),
            whole: false,
        }
    }

    /// A refusal of the data as a whole.
    fn whole(message: String) -> Self {
        Self {
            whole: true,
            ..Self::here(DataErrorKind::Value, message)
        }
    }

    /// The same refusal, seen from the container holding the value at `step`.
    fn within(mut self, step: impl FnOnce() -> Step) -> Self {
        if !self.whole {
            self.steps.push(step());
        }
        self
    }

    fn into_error(self) -> Error {
        let mut path = DataPath::root();
        for step in self.steps.iter().rev() {
            match step {
                Step::Key(key) => path.push_key(key),
                Step::Index(index) => path.push_index(*index),
            }
        }
        Error::InvalidData {
            path: path.as_str().to_owned(),
            message: self.message,
            kind: self.kind,
        }
    }
}

struct JsonWriter<'a> {
    out: String,
    /// How many containers hold the value being written (the data itself
    /// counts as 1, for its top-level values).
    depth: usize,
    limits: &'a DataLimits,
}

impl JsonWriter<'_> {
    fn value(&mut self, value: &Bound<'_, PyAny>) -> Result<(), Refused> {
        if let Ok(text) = value.cast::<PyString>() {
            let text = text.to_str().map_err(|_| {
                Refused::here(
                    DataErrorKind::Value,
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
                return Err(Refused::here(
                    DataErrorKind::Value,
                    format!("is {number}, which JSON cannot hold"),
                ));
            }
            // Debug keeps a '.' or an exponent, so the value reads back as a float.
            let _ = write!(self.out, "{number:?}");
        } else if value.is_none() {
            self.out.push_str("null");
        } else if let Ok(dict) = value.cast::<PyDict>() {
            self.nested(|writer| writer.object(dict))?;
        } else if let Ok(list) = value.cast::<PyList>() {
            self.nested(|writer| writer.list(list))?;
        } else {
            return Err(Refused::here(
                DataErrorKind::Type,
                format!(
                    "is of type {}, which session data cannot hold \
                     (use str, int, float, bool, None, list or dict)",
                    type_name(value)
                ),
            ));
        }
        self.check_size()
    }

    /// Writes a container one level deeper, refusing it past the depth limit.
    fn nested(
        &mut self,
        write: impl FnOnce(&mut Self) -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        if self.depth >= self.limits.max_depth {
            return Err(Refused::here(
                DataErrorKind::Value,
                too_deep_message(self.limits),
            ));
        }
        self.depth += 1;
        let written = write(self);
        self.depth -= 1;
        written
    }

    fn object(&mut self, dict: &Bound<'_, PyDict>) -> Result<(), Refused> {
        self.out.push('{');
        let mut subclassed_keys = false;
        for (index, (key, item)) in dict.iter().enumerate() {
            subclassed_keys |= !key.is_exact_instance_of::<PyString>();
            let Ok(key) = key.cast::<PyString>() else {
                return Err(Refused::here(
                    DataErrorKind::Type,
                    format!(
                        "has key {} of type {}; keys must be str",
                        safe_repr(&key),
                        type_name(&key)
                    ),
                ));
            };
            let key = key.to_str().map_err(|_| {
                Refused::here(
                    DataErrorKind::Value,
                    "has a str key that cannot be encoded as UTF-8 (a lone surrogate?)",
                )
            })?;
            if index > 0 {
                self.out.push(',');
            }
            write_json_string(&mut self.out, key);
            self.out.push(':');
            self.value(&item)
                .map_err(|refused| refused.within(|| Step::Key(key.to_owned())))?;
        }
        if subclassed_keys {
            distinct_keys(dict)?;
        }
        self.out.push('}');
        Ok(())
    }

    fn list(&mut self, list: &Bound<'_, PyList>) -> Result<(), Refused> {
        self.out.push('[');
        for (index, item) in list.iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            self.value(&item)
                .map_err(|refused| refused.within(|| Step::Index(index)))?;
        }
        self.out.push(']');
        Ok(())
    }

    fn integer(&mut self, value: &Bound<'_, PyAny>) -> Result<(), Refused> {
        if let Ok(n) = value.extract::<i64>() {
            let _ = write!(self.out, "{n}");
        } else if let Ok(n) = value.extract::<u64>() {
            let _ = write!(self.out, "{n}");
        } else {
            return Err(Refused::here(
                DataErrorKind::Value,
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
    fn check_size(&self) -> Result<(), Refused> {
        if self.out.len() > self.limits.max_bytes {
            return Err(Refused::whole(format!(
                "is over max_data_bytes ({}) as JSON",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }
}

/// Refuses a dict holding one key text twice. Keys of type `str` itself
/// cannot repeat; a `str` subclass with its own `__eq__` or `__hash__` can,
/// and JSON readers disagree on which of two equal keys wins.
fn distinct_keys(dict: &Bound<'_, PyDict>) -> Result<(), Refused> {
    let mut seen = std::collections::HashSet::with_capacity(dict.len());
    for key in dict.keys() {
        // Every key was written as text already, so these casts succeed.
        let Ok(key) = key.cast_into::<PyString>() else {
            continue;
        };
        let text = key.to_str().map(str::to_owned).unwrap_or_default();
        if !seen.insert(text.clone()) {
            return Err(Refused::here(
                DataErrorKind::Value,
                format!(
                    "has the key {text:?} twice (a str subclass with its own __eq__ or __hash__?)"
                ),
            ));
        }
    }
    Ok(())
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

/// Data that must be given: `None` is refused (it means "empty" only at
/// creation; anywhere else it is almost surely a bug).
pub(crate) fn required_data(
    data: &Bound<'_, PyAny>,
    limits: &DataLimits,
) -> Result<sessionmanager_core::SessionData, sessionmanager_core::Error> {
    if data.is_none() {
        return Err(sessionmanager_core::Error::InvalidData {
            path: "data".into(),
            message: "must be a dict, got NoneType".into(),
            kind: sessionmanager_core::DataErrorKind::Type,
        });
    }
    data_from_py(Some(data), limits)
}

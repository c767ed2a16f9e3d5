//! Stored JSON text straight to Python objects, without an intermediate tree.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use foldhash::fast::RandomState;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Inserts the members of the JSON object `json` into `dict`.
pub(crate) fn fill_dict(dict: &Bound<'_, PyDict>, json: &str) -> PyResult<()> {
    // One thread-local access per call, not one per string: reaching a
    // thread-local from a shared library goes through `__tls_get_addr`.
    SHORT_STRS.with(|cache| {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        deserializer
            .deserialize_map(IntoDict(dict, cache))
            .map_err(|e| {
                let corrupt = format!("stored session data is corrupt: {e}");
                crate::errors::to_py(dict.py(), sessionmanager_core::Error::Store(corrupt.into()))
            })
    })
}

fn py_err<E: de::Error>(err: PyErr) -> E {
    E::custom(err)
}

/// Strings at most this long are shared through [`SHORT_STRS`].
const SHORT_STR_BYTES: usize = 32;

/// Entries kept per thread before the cache starts over.
const SHORT_STR_ENTRIES: usize = 4096;

thread_local! {
    /// Python strings already made for short texts: session data repeats its
    /// keys and many of its values ("role", "theme", "dark") on every read.
    /// Python strings are immutable, so handing out the same one is safe, and
    /// a reused key also keeps the hash Python computed for it. Hashed with
    /// foldhash (seeded per process): SipHash was a tenth of a get's time.
    static SHORT_STRS: StrCache = RefCell::new(HashMap::default());
}

type StrCache = RefCell<HashMap<Box<str>, Py<PyString>, RandomState>>;

/// `text` as a Python string, from `cache` when short.
fn short_str<'py>(py: Python<'py>, cache: &StrCache, text: &str) -> Bound<'py, PyString> {
    if text.len() > SHORT_STR_BYTES {
        return PyString::new(py, text);
    }
    let mut cache = cache.borrow_mut();
    if let Some(found) = cache.get(text) {
        return found.bind(py).clone();
    }
    if cache.len() >= SHORT_STR_ENTRIES {
        cache.clear(); // a crude bound: hot strings come back at once
    }
    let made = PyString::new(py, text);
    cache.insert(text.into(), made.clone().unbind());
    made
}

/// Deserializes one JSON value as a Python object.
#[derive(Clone, Copy)]
struct PyValue<'a, 'py>(Python<'py>, &'a StrCache);

impl<'de, 'py> DeserializeSeed<'de> for PyValue<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for PyValue<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.None().into_bound(self.0))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        v.into_bound_py_any(self.0).map_err(py_err)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        v.into_bound_py_any(self.0).map_err(py_err)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        v.into_bound_py_any(self.0).map_err(py_err)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        v.into_bound_py_any(self.0).map_err(py_err)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(short_str(self.0, self.1, v).into_any())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.0);
        while let Some(item) = seq.next_element_seed(self)? {
            list.append(item).map_err(py_err)?;
        }
        Ok(list.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        IntoDict(&dict, self.1).visit_map(map)?;
        Ok(dict.into_any())
    }
}

/// Deserializes a JSON object into an existing dict.
struct IntoDict<'a, 'py>(&'a Bound<'py, PyDict>, &'a StrCache);

impl<'de> Visitor<'de> for IntoDict<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let py = self.0.py();
        let seed = PyValue(py, self.1);
        while let Some(key) = map.next_key_seed(seed)? {
            let value = map.next_value_seed(seed)?;
            self.0.set_item(key, value).map_err(py_err)?;
        }
        Ok(())
    }
}

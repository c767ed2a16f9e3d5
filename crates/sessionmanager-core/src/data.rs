//! Session data: a JSON object, validated once when it enters the engine and kept
//! as compact JSON text, which is what every store persists.

use std::fmt;
use std::sync::Arc;

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json::Members;

use crate::error::{Error, Result};

/// Whether bad data had a type JSON cannot hold (maps to Python's `TypeError`)
/// or a value out of range (maps to `ValueError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// A type JSON cannot represent: bytes, sets, dates, objects, non-string keys.
    Type,
    /// A representable type with a forbidden value: NaN, too big, too deep, too long.
    Value,
}

/// Bounds on what one session may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataLimits {
    /// Largest accepted data, in bytes of compact JSON.
    pub max_bytes: usize,
    /// Deepest accepted nesting of objects and lists; the top-level object is depth 1.
    pub max_depth: usize,
}

impl DataLimits {
    /// Default `max_bytes`: 64 KiB, far above what a session should need and
    /// small enough that one client cannot balloon a store.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
    /// Default `max_depth`.
    pub const DEFAULT_MAX_DEPTH: usize = 32;
}

impl Default for DataLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}

/// A session's data: a JSON object in compact text form, within [`DataLimits`].
///
/// Cloning is cheap (shared text).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionData(Arc<str>);

impl SessionData {
    /// The empty object `{}`.
    pub fn empty() -> Self {
        Self(Arc::from("{}"))
    }

    /// Wraps JSON text that the caller has already produced compactly and
    /// validated against `limits` (the Python binding's serializer does both in
    /// one pass). Only the size is re-checked here.
    pub fn from_validated_json(json: String, limits: &DataLimits) -> Result<Self> {
        check_size(json.len(), limits)?;
        Ok(Self(Arc::from(json)))
    }

    /// Wraps JSON text read back from a store, checking only that it is one
    /// well-formed JSON object (not the limits it was written under), so a
    /// damaged or foreign row is an error instead of a panic later.
    pub fn from_stored_json(json: String) -> Result<Self> {
        let well_formed = json.trim_start().starts_with('{')
            && serde_json::from_str::<serde::de::IgnoredAny>(&json).is_ok();
        if !well_formed {
            return Err(Error::Store(
                "stored session data is not a JSON object".into(),
            ));
        }
        Ok(Self(Arc::from(json)))
    }

    /// Parses and validates JSON text. It must be an object within `limits`.
    pub fn from_json_str(json: &str, limits: &DataLimits) -> Result<Self> {
        let value: Value = serde_json::from_str(json).map_err(|e| {
            Error::invalid_data("data", DataErrorKind::Value, format!("not valid JSON: {e}"))
        })?;
        match value {
            Value::Object(map) => Self::from_map(&map, limits),
            other => Err(Error::invalid_data(
                "data",
                DataErrorKind::Type,
                format!("must be a JSON object, got {}", json_type_name(&other)),
            )),
        }
    }

    /// Validates a parsed JSON object against `limits` and stores it compactly.
    pub fn from_map(map: &Map<String, Value>, limits: &DataLimits) -> Result<Self> {
        let mut path = DataPath::root();
        for (key, value) in map {
            path.push_key(key);
            check_depth(value, 2, &mut path, limits)?;
            path.pop();
        }
        let json = serde_json::to_string(map).expect("a JSON map always serializes");
        Self::from_validated_json(json, limits)
    }

    /// Text known to be a compact JSON object within the limits (a store's
    /// inline copy of a `SessionData`, or JSON the engine wrote itself).
    pub(crate) fn from_checked_text(json: &str) -> Self {
        Self(Arc::from(json))
    }

    /// The compact JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// Size of the compact JSON text in bytes.
    pub fn len_bytes(&self) -> usize {
        self.0.len()
    }

    /// The data as a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.0) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("SessionData always holds a JSON object"),
        }
    }

    /// This data with the top-level keys of `patch` set to `patch`'s values
    /// (a shallow merge, like Python's `dict.update`). Member values are
    /// copied as text, never parsed.
    pub fn merged(&self, patch: &SessionData, limits: &DataLimits) -> Result<Self> {
        let mut members = self.members();
        members.set_all(patch.members());
        Self::from_validated_json(members.to_json(), limits)
    }

    /// This data with each top-level key of `keys` made as in `source`: set
    /// to `source`'s value (in place when the key exists here, appended
    /// otherwise), or removed when `source` lacks it. Values are copied as
    /// text, never parsed. This is how a write re-applies its changes on top
    /// of another writer's.
    pub fn with_keys_from(
        &self,
        source: &SessionData,
        keys: &[&str],
        limits: &DataLimits,
    ) -> Result<Self> {
        let mut members = self.members();
        let changes = source.members();
        for &key in keys {
            match changes.get(key) {
                Some(value) => members.set(Cow::Borrowed(key), Cow::Borrowed(value)),
                None => members.remove(key),
            }
        }
        Self::from_validated_json(members.to_json(), limits)
    }

    /// The value of top-level `key`, parsed; `None` when the key is absent.
    pub(crate) fn value_of(&self, key: &str) -> Option<Value> {
        self.members()
            .get(key)
            .map(|raw| serde_json::from_str(raw.get()).expect("SessionData holds valid JSON"))
    }

    /// This data with the integer at top-level `key` increased by `by` (a missing
    /// key counts as 0), and the new value.
    pub fn incremented(&self, key: &str, by: i64, limits: &DataLimits) -> Result<(Self, i64)> {
        let mut members = self.members();
        let mut path = DataPath::root();
        path.push_key(key);
        let current = match members
            .get(key)
            .map(|raw| serde_json::from_str::<Value>(raw.get()))
        {
            None => 0,
            Some(Ok(Value::Number(n))) if n.is_i64() => n.as_i64().unwrap_or_default(),
            Some(Ok(Value::Number(n))) if n.is_u64() => {
                return Err(Error::invalid_data(
                    path.as_str(),
                    DataErrorKind::Value,
                    format!("{n} does not fit in a signed 64-bit counter"),
                ));
            }
            Some(Ok(other)) => {
                return Err(Error::invalid_data(
                    path.as_str(),
                    DataErrorKind::Type,
                    format!("cannot increment {}", json_type_name(&other)),
                ));
            }
            Some(Err(e)) => unreachable!("SessionData holds valid JSON: {e}"),
        };
        let next = current.checked_add(by).ok_or_else(|| {
            Error::invalid_data(
                path.as_str(),
                DataErrorKind::Value,
                format!("{current} + {by} overflows a signed 64-bit counter"),
            )
        })?;
        let number = RawValue::from_string(next.to_string()).expect("an integer is valid JSON");
        members.set(Cow::Borrowed(key), Cow::Owned(number));
        Ok((Self::from_validated_json(members.to_json(), limits)?, next))
    }

    /// This data with `item` appended to the list at top-level `key` (a
    /// missing key starts a list), and the list's new length. Checked against
    /// `limits` as a whole, as any write is.
    pub fn appended(&self, key: &str, item: &Value, limits: &DataLimits) -> Result<(Self, usize)> {
        let mut members = self.members();
        let mut list = match members
            .get(key)
            .map(|raw| serde_json::from_str::<Value>(raw.get()))
        {
            None => Vec::new(),
            Some(Ok(Value::Array(list))) => list,
            Some(Ok(other)) => {
                let mut path = DataPath::root();
                path.push_key(key);
                return Err(Error::invalid_data(
                    path.as_str(),
                    DataErrorKind::Type,
                    format!("cannot append to {}", json_type_name(&other)),
                ));
            }
            Some(Err(e)) => unreachable!("SessionData holds valid JSON: {e}"),
        };
        list.push(item.clone());
        let len = list.len();
        let text = serde_json::to_string(&list).expect("a JSON list always serializes");
        let raw = RawValue::from_string(text).expect("serde_json writes valid JSON");
        members.set(Cow::Borrowed(key), Cow::Owned(raw));
        // Parsed and checked whole: the item may be too deep or too big there.
        Ok((Self::from_json_str(&members.to_json(), limits)?, len))
    }

    /// The top-level members, in order: each key and its value as JSON
    /// text (what a store needs to apply this data as a patch itself).
    pub fn member_texts(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        self.members()
            .0
            .into_iter()
            .map(|(key, value)| {
                let text = match value {
                    Cow::Borrowed(raw) => Cow::Borrowed(raw.get()),
                    Cow::Owned(raw) => Cow::Owned(raw.get().to_owned()),
                };
                (key, text)
            })
            .collect()
    }

    fn members(&self) -> Members<'_> {
        Members::of(&self.0).expect("SessionData always holds a JSON object")
    }
}

impl Default for SessionData {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionData({} bytes)", self.0.len())
    }
}

/// A location inside session data, printed the way Python code would index it:
/// `data['cart'][2]['sku']`.
#[derive(Clone, Debug)]
pub struct DataPath {
    text: String,
    marks: Vec<usize>,
}

impl DataPath {
    /// The top of the data: `data`.
    pub fn root() -> Self {
        Self {
            text: String::from("data"),
            marks: Vec::new(),
        }
    }

    /// Steps into the object member `key`.
    pub fn push_key(&mut self, key: &str) {
        self.marks.push(self.text.len());
        self.text.push_str("['");
        for c in key.chars() {
            match c {
                '\\' => self.text.push_str("\\\\"),
                '\'' => self.text.push_str("\\'"),
                c if c.is_control() => self.text.push_str(&c.escape_default().to_string()),
                c => self.text.push(c),
            }
        }
        self.text.push_str("']");
    }

    /// Steps into list element `index`.
    pub fn push_index(&mut self, index: usize) {
        use fmt::Write as _;
        self.marks.push(self.text.len());
        let _ = write!(self.text, "[{index}]");
    }

    /// Steps back out of the last member or element.
    pub fn pop(&mut self) {
        if let Some(mark) = self.marks.pop() {
            self.text.truncate(mark);
        }
    }

    /// How many containers deep the path is; `data` itself is depth 1.
    pub fn depth(&self) -> usize {
        self.marks.len() + 1
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The error for data nested deeper than `limits.max_depth` at `path`.
pub fn too_deep(path: &DataPath, limits: &DataLimits) -> Error {
    Error::invalid_data(
        path.as_str(),
        DataErrorKind::Value,
        too_deep_message(limits),
    )
}

/// What [`too_deep`] says, for callers that name the place themselves.
pub fn too_deep_message(limits: &DataLimits) -> String {
    format!(
        "nested deeper than the limit of {} levels",
        limits.max_depth
    )
}

/// How error messages name top-level `key`: `data['key']`.
pub(crate) fn key_path(key: &str) -> String {
    let mut path = DataPath::root();
    path.push_key(key);
    path.as_str().to_owned()
}

pub(crate) fn check_size(len: usize, limits: &DataLimits) -> Result<()> {
    if len > limits.max_bytes {
        return Err(Error::invalid_data(
            "data",
            DataErrorKind::Value,
            format!(
                "is {len} bytes as JSON, over max_data_bytes ({})",
                limits.max_bytes
            ),
        ));
    }
    Ok(())
}

fn check_depth(
    value: &Value,
    depth: usize,
    path: &mut DataPath,
    limits: &DataLimits,
) -> Result<()> {
    let is_container = matches!(value, Value::Array(_) | Value::Object(_));
    if is_container && depth > limits.max_depth {
        return Err(too_deep(path, limits));
    }
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push_index(index);
                check_depth(item, depth + 1, path, limits)?;
                path.pop();
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                path.push_key(key);
                check_depth(item, depth + 1, path, limits)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null (None)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object (dict)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The JSON decoder on generated text (arbitrary, and JSON-like):
        /// data that reads back as the same JSON, or a clear refusal.
        #[test]
        fn any_text_is_data_or_a_clear_error(
            text in "\\PC{0,120}|[{}\\[\\]\":,0-9a-z\\\\ .eE+-]{0,80}|\
                     \\{\"[a-z]{0,3}\":[0-9.eE+-]{1,30}\\}"
        ) {
            match SessionData::from_json_str(&text, &DataLimits::default()) {
                Ok(data) => {
                    let given: Value = serde_json::from_str(&text).unwrap();
                    let stored: Value = serde_json::from_str(data.as_json()).unwrap();
                    prop_assert_eq!(stored, given);
                }
                Err(Error::InvalidData { message, .. }) => prop_assert!(!message.is_empty()),
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }
    }

    fn data(json: &str) -> SessionData {
        SessionData::from_json_str(json, &DataLimits::default()).unwrap()
    }

    #[test]
    fn appended_adds_to_a_list_or_starts_one_and_refuses_the_rest() {
        let limits = DataLimits::default();
        let d = data(r#"{"cart":[1],"n":"x"}"#);
        let (d, len) = d
            .appended("cart", &serde_json::json!({"a": 2}), &limits)
            .unwrap();
        assert_eq!((d.as_json(), len), (r#"{"cart":[1,{"a":2}],"n":"x"}"#, 2));
        let (d, len) = d.appended("new", &Value::Null, &limits).unwrap();
        assert_eq!(
            (d.as_json(), len),
            (r#"{"cart":[1,{"a":2}],"n":"x","new":[null]}"#, 1)
        );
        let err = d.appended("n", &Value::Null, &limits).unwrap_err();
        assert_eq!(err.to_string(), "data['n']: cannot append to a string");
        let tiny = DataLimits {
            max_bytes: 40,
            ..limits
        };
        let err = d
            .appended("cart", &Value::from("x".repeat(50)), &tiny)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidData { .. }), "{err}");
    }

    #[test]
    fn keeps_key_order_and_compacts() {
        assert_eq!(
            data(r#"{ "b": 1, "a": [1, 2.5] }"#).as_json(),
            r#"{"b":1,"a":[1,2.5]}"#
        );
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        for bad in ["[]", "1", "null", "{", "{\"a\": NaN}"] {
            let err = SessionData::from_json_str(bad, &DataLimits::default()).unwrap_err();
            assert!(err.is_invalid_input(), "{bad}: {err}");
        }
    }

    #[test]
    fn depth_limit_names_the_path() {
        let limits = DataLimits {
            max_bytes: 1 << 20,
            max_depth: 3,
        };
        assert!(SessionData::from_json_str(r#"{"a":{"b":{}}}"#, &limits).is_ok());
        let err = SessionData::from_json_str(r#"{"a":[{"b":{}}]}"#, &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data['a'][0]['b']: nested deeper than the limit of 3 levels"
        );
    }

    #[test]
    fn size_limit_is_checked() {
        let limits = DataLimits {
            max_bytes: 10,
            max_depth: 32,
        };
        let err = SessionData::from_json_str(r#"{"key":"value"}"#, &limits).unwrap_err();
        assert!(
            err.to_string().contains("over max_data_bytes (10)"),
            "{err}"
        );
    }

    #[test]
    fn merge_replaces_top_level_keys_in_place() {
        let merged = data(r#"{"a":1,"b":{"x":1}}"#)
            .merged(&data(r#"{"b":{"y":2},"c":3}"#), &DataLimits::default())
            .unwrap();
        assert_eq!(merged.as_json(), r#"{"a":1,"b":{"y":2},"c":3}"#);
    }

    #[test]
    fn keys_from_another_object_are_set_or_removed() {
        let limits = DataLimits::default();
        let theirs = data(r#"{"a":1,"gone":true,"b\n":2,"theirs":3}"#);
        let mine = data(r#"{"new":[1],"b\n":{"x":null},"a":1}"#);
        let merged = theirs
            .with_keys_from(&mine, &["b\n", "gone", "new", "never"], &limits)
            .unwrap();
        assert_eq!(
            merged.as_json(),
            r#"{"a":1,"b\n":{"x":null},"theirs":3,"new":[1]}"#,
            "set in place or appended, removed when the source lacks it, others kept"
        );
        let small = DataLimits {
            max_bytes: 10,
            ..limits
        };
        let err = theirs.with_keys_from(&mine, &["new"], &small).unwrap_err();
        assert!(err.to_string().contains("max_data_bytes"), "{err}");
    }

    #[test]
    fn increment_counts_from_zero_and_refuses_non_integers() {
        let limits = DataLimits::default();
        let (once, value) = SessionData::empty()
            .incremented("hits", 5, &limits)
            .unwrap();
        assert_eq!((once.as_json(), value), (r#"{"hits":5}"#, 5));
        let err = data(r#"{"name":"x"}"#)
            .incremented("name", 1, &limits)
            .unwrap_err();
        assert_eq!(err.to_string(), "data['name']: cannot increment a string");
        let err = data(r#"{"n":9223372036854775807}"#)
            .incremented("n", 1, &limits)
            .unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
    }

    #[test]
    fn floats_round_trip_exactly() {
        // Needs serde_json's float_roundtrip: the default parser is off by one ulp here.
        let stored = data(r#"{"a":1.1579208923731604e77,"b":-0.0,"c":5e-324}"#);
        assert_eq!(
            stored.as_json(),
            r#"{"a":1.1579208923731604e+77,"b":-0.0,"c":5e-324}"#
        );
    }

    #[test]
    fn path_quotes_like_python() {
        let mut path = DataPath::root();
        path.push_key("it's");
        path.push_index(2);
        assert_eq!(path.as_str(), r"data['it\'s'][2]");
        assert_eq!(path.depth(), 3);
        path.pop();
        path.pop();
        assert_eq!(path.as_str(), "data");
    }
}

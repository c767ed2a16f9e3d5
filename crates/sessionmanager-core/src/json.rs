//! Small JSON helpers shared by the engine and the bindings: writing string
//! literals, and working on an object's top-level members without parsing
//! their values (merges and counters touch one level only).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::Deserializer as _;
use serde::de::{self, Deserialize, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Appends `text` as a JSON string literal.
pub fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut clean_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[clean_from..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        clean_from = at + 1;
    }
    out.push_str(&text[clean_from..]);
    out.push('"');
}

/// The top-level members of a JSON object, in order, borrowed from its text:
/// each value stays unparsed.
pub(crate) struct Members<'a>(pub(crate) Vec<(Cow<'a, str>, Cow<'a, RawValue>)>);

impl<'a> Members<'a> {
    /// Splits `json`, which must be an object.
    pub(crate) fn of(json: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::Deserializer::from_str(json).deserialize_map(MembersVisitor)
    }

    /// Sets each member of `patch`: in place when the key exists, appended otherwise.
    pub(crate) fn set_all(&mut self, patch: Members<'a>) {
        if self.0.len() * patch.0.len() <= 64 {
            for (key, value) in patch.0 {
                self.set(key, value);
            }
            return;
        }
        let mut positions: HashMap<String, usize> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.to_string(), i))
            .collect();
        for (key, value) in patch.0 {
            match positions.get(key.as_ref()) {
                Some(&i) => self.0[i].1 = value,
                None => {
                    positions.insert(key.to_string(), self.0.len());
                    self.0.push((key, value));
                }
            }
        }
    }

    /// Sets one member: in place when the key exists, appended otherwise.
    pub(crate) fn set(&mut self, key: Cow<'a, str>, value: Cow<'a, RawValue>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(member) => member.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes the member `key`, if there.
    pub(crate) fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    /// The value of `key`, unparsed.
    pub(crate) fn get(&self, key: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The object as compact JSON text.
    pub(crate) fn to_json(&self) -> String {
        let size = self
            .0
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum::<usize>();
        let mut out = String::with_capacity(size + 2);
        out.push('{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_string(&mut out, key);
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
        out
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, Cow::Borrowed(value)));
        }
        Ok(Members(members))
    }
}

/// An object key, borrowed unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_like_json() {
        let mut out = String::new();
        write_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn members_round_trip_and_merge_in_place() {
        let mut base = Members::of(r#"{"a":1,"b\n":{"x":[1,2]},"c":"s"}"#).unwrap();
        assert_eq!(base.to_json(), r#"{"a":1,"b\n":{"x":[1,2]},"c":"s"}"#);
        base.set_all(Members::of(r#"{"b\n":null,"d":2.5}"#).unwrap());
        assert_eq!(base.to_json(), r#"{"a":1,"b\n":null,"c":"s","d":2.5}"#);
        assert_eq!(base.get("d").map(RawValue::get), Some("2.5"));
    }

    #[test]
    fn large_merges_take_the_indexed_path() {
        let many = |prefix: &str| {
            let body: Vec<String> = (0..20).map(|i| format!(r#""{prefix}{i}":{i}"#)).collect();
            format!("{{{}}}", body.join(","))
        };
        let (left, right) = (many("k"), many("k"));
        let mut base = Members::of(&left).unwrap();
        base.set_all(Members::of(&right).unwrap());
        assert_eq!(base.to_json(), left);
        let other = many("z");
        base.set_all(Members::of(&other).unwrap());
        assert_eq!(base.0.len(), 40);
    }
}

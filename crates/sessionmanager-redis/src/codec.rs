//! A session record as the fields of a Redis hash, and back.
//!
//! Fields: `u` user id, `d` data (JSON text), `v` version, `c` created_at,
//! `a` last_active, `e` expires_at, `i` idle timeout, `s` sliding (1/0), `x`
//! absolute deadline (empty if none). Times are milliseconds, as decimal text
//! so the Lua scripts can compare them.

use std::sync::Arc;

use sessionmanager_core::{SessionData, SessionRecord, Timestamp};

/// The fields `load` reads, in the order [`decode`] expects.
pub(crate) const FIELDS: [&str; 9] = ["u", "d", "v", "c", "a", "e", "i", "s", "x"];

/// A record's fields as values of a hash, in [`FIELDS`] order.
pub(crate) fn encode(record: &SessionRecord) -> [String; 9] {
    [
        record.user_id.to_string(),
        record.data.as_json().to_owned(),
        record.version.to_string(),
        record.created_at.millis().to_string(),
        record.last_active.millis().to_string(),
        record.expires_at.millis().to_string(),
        record.idle_timeout_ms.to_string(),
        if record.sliding { "1" } else { "0" }.to_owned(),
        record
            .absolute_expires_at
            .map_or_else(String::new, |t| t.millis().to_string()),
    ]
}

/// Rebuilds a record from its fields in [`FIELDS`] order; `Ok(None)` when the
/// hash does not exist, `Err` naming the broken field otherwise.
pub(crate) fn decode(mut fields: Vec<Option<Vec<u8>>>) -> Result<Option<SessionRecord>, String> {
    if fields.len() != FIELDS.len() {
        return Err(format!(
            "a session with {} fields instead of {}",
            fields.len(),
            FIELDS.len()
        ));
    }
    if fields[0].is_none() {
        return Ok(None);
    }
    let mut take = |i: usize| -> Result<Vec<u8>, String> {
        fields[i]
            .take()
            .ok_or_else(|| format!("a session without its {:?} field", FIELDS[i]))
    };
    let text = |i: usize, bytes: Vec<u8>| {
        String::from_utf8(bytes)
            .map_err(|_| format!("a session whose {:?} field is not UTF-8", FIELDS[i]))
    };
    let number = |i: usize, bytes: &[u8]| -> Result<i64, String> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| format!("a session whose {:?} field is not a number", FIELDS[i]))
    };
    let user_id: Arc<str> = text(0, take(0)?)?.into();
    let data = SessionData::from_stored_json(text(1, take(1)?)?)
        .map_err(|e| format!("a session whose data is not valid JSON ({e})"))?;
    let version = number(2, &take(2)?)?;
    let created_at = number(3, &take(3)?)?;
    let last_active = number(4, &take(4)?)?;
    let expires_at = number(5, &take(5)?)?;
    let idle_timeout_ms = number(6, &take(6)?)?;
    let sliding = take(7)? == b"1";
    let absolute = take(8)?;
    let absolute_expires_at = match absolute.is_empty() {
        true => None,
        false => Some(Timestamp(number(8, &absolute)?)),
    };
    Ok(Some(SessionRecord {
        user_id,
        data,
        version: u64::try_from(version)
            .map_err(|_| "a session with a negative version".to_owned())?,
        created_at: Timestamp(created_at),
        last_active: Timestamp(last_active),
        expires_at: Timestamp(expires_at),
        idle_timeout_ms,
        sliding,
        absolute_expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sessionmanager_core::{DataLimits, ExpiryPolicy};

    proptest! {
        /// A hash changed by hand (any bytes in any field, fields missing):
        /// a record, "no record", or a message naming what is wrong.
        #[test]
        fn any_fields_decode_or_say_what_is_wrong(
            fields in proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
                8..=10,
            )
        ) {
            match decode(fields) {
                Ok(_) => {}
                Err(why) => prop_assert!(why.starts_with("a session"), "{why}"),
            }
        }
    }

    #[test]
    fn records_round_trip() {
        let data =
            SessionData::from_json_str(r#"{"b":1,"a":"é"}"#, &DataLimits::default()).unwrap();
        let policy = ExpiryPolicy {
            idle_timeout_ms: 1000,
            sliding: true,
            absolute_timeout_ms: Some(5000),
        };
        let record = SessionRecord::new("alice".into(), data, &policy, Timestamp(1_000));
        let fields = encode(&record).map(|f| Some(f.into_bytes())).to_vec();
        assert_eq!(decode(fields), Ok(Some(record)));
        assert_eq!(decode(vec![None; 9]), Ok(None));
        let mut broken = encode(&SessionRecord::new(
            "u".into(),
            SessionData::empty(),
            &policy,
            Timestamp(0),
        ))
        .map(|f| Some(f.into_bytes()))
        .to_vec();
        broken[5] = Some(b"soon".to_vec());
        assert!(
            decode(broken)
                .unwrap_err()
                .contains("\"e\" field is not a number")
        );
    }
}

//! A session as the memory store keeps it. Same content as [`SessionRecord`],
//! laid out for a table of millions: a short user id and small data live
//! inside the table's slot instead of behind pointers, which saves an
//! allocation per session and, on every read, a cache miss on a random address.

use crate::clock::Timestamp;
use crate::data::SessionData;
use crate::record::SessionRecord;

/// Room for user id and data together when both are kept inline.
const INLINE_TEXT: usize = 44;
/// Longest user id kept inline next to data that is held apart.
const INLINE_USER_ID: usize = 22;

/// A session's user id and data, and its sliding flag (kept here, in bytes the
/// variants leave free, so that a slot stays within two cache lines).
#[derive(Clone, Debug)]
enum Text {
    /// Both inline, user id first: a small session (a numeric id or a short
    /// name, and a few flags) needs no allocation of its own, and a read finds
    /// everything in the slot.
    Inline {
        sliding: bool,
        user_len: u8,
        data_len: u8,
        bytes: [u8; INLINE_TEXT],
    },
    /// Data too big to sit inline, shared with the records handed out; the
    /// user id inline (most are short: numbers, UUIDs in base64, many emails).
    ShortUser {
        sliding: bool,
        user_len: u8,
        user: [u8; INLINE_USER_ID],
        data: SessionData,
    },
    /// Both too big to sit inline.
    LongUser {
        sliding: bool,
        user: Box<str>,
        data: SessionData,
    },
}

/// `bytes` as text. They were copied from a `&str` whole, so they always are;
/// the check costs a few nanoseconds and keeps this free of `unsafe`.
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

impl Text {
    fn new(user_id: &str, data: &SessionData, sliding: bool) -> Self {
        let json = data.as_json();
        if user_id.len() + json.len() <= INLINE_TEXT {
            let mut bytes = [0u8; INLINE_TEXT];
            bytes[..user_id.len()].copy_from_slice(user_id.as_bytes());
            bytes[user_id.len()..user_id.len() + json.len()].copy_from_slice(json.as_bytes());
            Self::Inline {
                sliding,
                user_len: user_id.len() as u8,
                data_len: json.len() as u8,
                bytes,
            }
        } else if user_id.len() <= INLINE_USER_ID {
            let mut user = [0u8; INLINE_USER_ID];
            user[..user_id.len()].copy_from_slice(user_id.as_bytes());
            Self::ShortUser {
                sliding,
                user_len: user_id.len() as u8,
                user,
                data: data.clone(),
            }
        } else {
            Self::LongUser {
                sliding,
                user: user_id.into(),
                data: data.clone(),
            }
        }
    }

    fn user_id(&self) -> &str {
        match self {
            Self::Inline {
                user_len, bytes, ..
            } => text(&bytes[..usize::from(*user_len)]),
            Self::ShortUser { user_len, user, .. } => text(&user[..usize::from(*user_len)]),
            Self::LongUser { user, .. } => user,
        }
    }

    /// The data, as a record hands it out: a copy of inline text (an
    /// allocation, far cheaper than the miss a shared one's count would cost
    /// at this table size), or the shared text.
    fn data(&self) -> SessionData {
        match self {
            Self::Inline {
                user_len,
                data_len,
                bytes,
                ..
            } => {
                let start = usize::from(*user_len);
                SessionData::from_checked_text(text(&bytes[start..start + usize::from(*data_len)]))
            }
            Self::ShortUser { data, .. } | Self::LongUser { data, .. } => data.clone(),
        }
    }

    fn sliding(&self) -> bool {
        match self {
            Self::Inline { sliding, .. }
            | Self::ShortUser { sliding, .. }
            | Self::LongUser { sliding, .. } => *sliding,
        }
    }
}

/// One stored session.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    text: Text,
    pub(crate) version: u64,
    pub(crate) created_at: Timestamp,
    pub(crate) last_active: Timestamp,
    pub(crate) expires_at: Timestamp,
    idle_timeout_ms: i64,
    /// `Timestamp(i64::MAX)` when the session has no absolute deadline.
    absolute_expires_at: Timestamp,
}

impl Stored {
    pub(crate) fn from_record(record: &SessionRecord) -> Self {
        Self {
            text: Text::new(&record.user_id, &record.data, record.sliding),
            version: record.version,
            created_at: record.created_at,
            last_active: record.last_active,
            expires_at: record.expires_at,
            idle_timeout_ms: record.idle_timeout_ms,
            absolute_expires_at: record.absolute_expires_at.unwrap_or(Timestamp(i64::MAX)),
        }
    }

    pub(crate) fn to_record(&self) -> SessionRecord {
        SessionRecord {
            user_id: self.user_id().into(),
            data: self.text.data(),
            version: self.version,
            created_at: self.created_at,
            last_active: self.last_active,
            expires_at: self.expires_at,
            idle_timeout_ms: self.idle_timeout_ms,
            sliding: self.text.sliding(),
            absolute_expires_at: (self.absolute_expires_at.0 != i64::MAX)
                .then_some(self.absolute_expires_at),
        }
    }

    pub(crate) fn user_id(&self) -> &str {
        self.text.user_id()
    }

    pub(crate) fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{DataLimits, ExpiryPolicy};

    fn data(json: &str) -> SessionData {
        SessionData::from_json_str(json, &DataLimits::default()).unwrap()
    }

    #[test]
    fn round_trips_every_layout() {
        let small = data(r#"{"role":"admin","theme":"dark"}"#);
        let big = data(r#"{"role":"admin","theme":"dark","cart":[1,2,3,4,5,6]}"#);
        let cases = [
            ("u", SessionData::empty(), "Inline"),
            ("user123456", small.clone(), "Inline"),
            ("é🦀", small.clone(), "Inline"),
            // User id and data fill the inline room exactly.
            ("exactly-13-by", small.clone(), "Inline"),
            ("exactly-14-byt", small.clone(), "ShortUser"),
            ("exactly-22-bytes-long!", big.clone(), "ShortUser"),
            ("u", big.clone(), "ShortUser"),
            (
                "a user id that is longer than twenty-two bytes",
                small,
                "LongUser",
            ),
            (
                "a user id that is longer than twenty-two bytes",
                big,
                "LongUser",
            ),
        ];
        for (user, data, layout) in cases {
            for sliding in [false, true] {
                let policy = ExpiryPolicy {
                    absolute_timeout_ms: Some(5),
                    sliding,
                    ..ExpiryPolicy::DEFAULT
                };
                let bounded =
                    SessionRecord::new(Arc::from(user), data.clone(), &policy, Timestamp(7));
                let stored = Stored::from_record(&bounded);
                assert!(format!("{:?}", stored.text).starts_with(layout), "{user}");
                assert_eq!(stored.to_record(), bounded);
                let unbounded = SessionRecord::new(
                    Arc::from(user),
                    data.clone(),
                    &ExpiryPolicy {
                        sliding,
                        ..ExpiryPolicy::DEFAULT
                    },
                    Timestamp(7),
                );
                assert_eq!(Stored::from_record(&unbounded).to_record(), unbounded);
            }
        }
    }

    #[test]
    fn an_entry_is_no_bigger_than_a_record() {
        assert!(
            size_of::<Stored>() <= size_of::<SessionRecord>(),
            "{}",
            size_of::<Stored>()
        );
    }
}

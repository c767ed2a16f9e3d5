//! A session as the memory store keeps it. Same content as [`SessionRecord`],
//! laid out for a table of millions: a short user id lives inside the entry
//! instead of behind a pointer, which saves an allocation per session and a
//! cache miss per read.

use crate::clock::Timestamp;
use crate::data::SessionData;
use crate::record::SessionRecord;

/// Longest user id kept inline; longer ones get an allocation of their own.
const INLINE_USER_ID: usize = 22;

/// A user id, inline when short (most are: numbers, UUIDs up to 22 bytes, emails often).
#[derive(Clone, Debug)]
enum UserId {
    Inline {
        len: u8,
        bytes: [u8; INLINE_USER_ID],
    },
    Heap(Box<str>),
}

impl UserId {
    fn new(user_id: &str) -> Self {
        if user_id.len() <= INLINE_USER_ID {
            let mut bytes = [0u8; INLINE_USER_ID];
            bytes[..user_id.len()].copy_from_slice(user_id.as_bytes());
            Self::Inline {
                len: user_id.len() as u8,
                bytes,
            }
        } else {
            Self::Heap(user_id.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a &str at a char boundary, so always valid UTF-8.
            Self::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Heap(text) => text,
        }
    }
}

/// One stored session.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    user_id: UserId,
    pub(crate) data: SessionData,
    pub(crate) version: u64,
    pub(crate) created_at: Timestamp,
    pub(crate) last_active: Timestamp,
    pub(crate) expires_at: Timestamp,
    idle_timeout_ms: i64,
    /// `Timestamp(i64::MAX)` when the session has no absolute deadline.
    absolute_expires_at: Timestamp,
    sliding: bool,
}

impl Stored {
    pub(crate) fn from_record(record: &SessionRecord) -> Self {
        Self {
            user_id: UserId::new(&record.user_id),
            data: record.data.clone(),
            version: record.version,
            created_at: record.created_at,
            last_active: record.last_active,
            expires_at: record.expires_at,
            idle_timeout_ms: record.idle_timeout_ms,
            absolute_expires_at: record.absolute_expires_at.unwrap_or(Timestamp(i64::MAX)),
            sliding: record.sliding,
        }
    }

    pub(crate) fn to_record(&self) -> SessionRecord {
        SessionRecord {
            user_id: self.user_id().into(),
            data: self.data.clone(),
            version: self.version,
            created_at: self.created_at,
            last_active: self.last_active,
            expires_at: self.expires_at,
            idle_timeout_ms: self.idle_timeout_ms,
            sliding: self.sliding,
            absolute_expires_at: (self.absolute_expires_at.0 != i64::MAX)
                .then_some(self.absolute_expires_at),
        }
    }

    pub(crate) fn user_id(&self) -> &str {
        self.user_id.as_str()
    }

    pub(crate) fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ExpiryPolicy;

    #[test]
    fn round_trips_short_and_long_user_ids() {
        for user in [
            "u",
            "exactly-22-bytes-long!",
            "a user id that is longer than twenty-two bytes",
            "é🦀",
        ] {
            let policy = ExpiryPolicy {
                absolute_timeout_ms: Some(5),
                ..ExpiryPolicy::DEFAULT
            };
            let record =
                SessionRecord::new(Arc::from(user), SessionData::empty(), &policy, Timestamp(7));
            assert_eq!(Stored::from_record(&record).to_record(), record);
            let unbounded = SessionRecord::new(
                Arc::from(user),
                SessionData::empty(),
                &ExpiryPolicy::DEFAULT,
                Timestamp(7),
            );
            assert_eq!(Stored::from_record(&unbounded).to_record(), unbounded);
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

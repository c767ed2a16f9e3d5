//! Exporting the memory store: shard by shard, each in key order, so a page
//! costs one pass over one shard whatever the store holds.
//!
//! The cursor is `<shard>:<last key's hex>` (`<shard>:` at a shard's start).

use super::Inner;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::export::{ExportCursor, ExportPage};
use crate::token::SessionKey;

impl Inner {
    pub(super) fn export_page(
        &self,
        cursor: &ExportCursor,
        limit: u32,
        now: Timestamp,
    ) -> Result<ExportPage> {
        let limit = limit.max(1);
        let (mut shard, mut after) = parse(cursor, self.shards.len())?;
        let mut sessions = Vec::new();
        while shard < self.shards.len() {
            let want = limit as usize - sessions.len();
            let table = self.shards.read_at(shard);
            let mut found: Vec<_> = table
                .entries()
                .filter(|(key, stored)| after.is_none_or(|a| *key > a) && stored.is_live(now))
                .collect();
            let full = found.len() >= want;
            if found.len() > want {
                found.select_nth_unstable_by_key(want, |(key, _)| *key);
                found.truncate(want);
            }
            found.sort_unstable_by_key(|(key, _)| *key);
            sessions.extend(found.into_iter().map(|(k, s)| (*k, s.to_record())));
            drop(table);
            if full {
                let last = sessions.last().map(|(key, _)| key.to_hex());
                let next = format!("{shard}:{}", last.unwrap_or_default());
                return Ok(ExportPage {
                    sessions,
                    next: Some(ExportCursor::new(next)),
                });
            }
            shard += 1;
            after = None;
        }
        Ok(ExportPage {
            sessions,
            next: None,
        })
    }
}

/// The shard and the last key exported from it.
fn parse(cursor: &ExportCursor, shards: usize) -> Result<(usize, Option<SessionKey>)> {
    if cursor.is_start() {
        return Ok((0, None));
    }
    let invalid = || cursor.invalid("memory");
    let (shard, key) = cursor.as_str().split_once(':').ok_or_else(invalid)?;
    let shard: usize = shard.parse().map_err(|_| invalid())?;
    if shard >= shards {
        return Err(invalid());
    }
    let key = match key {
        "" => None,
        hex => Some(SessionKey::from_hex(hex).ok_or_else(invalid)?),
    };
    Ok((shard, key))
}

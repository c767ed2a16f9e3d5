//! Importing sessions many at a time (for migrations between stores): the
//! links of sessions filed away from their key's bucket first, then one
//! script for the lot.

use std::sync::Arc;

use crate::connection::Connection;
use futures_util::future::try_join_all;
use sessionmanager_core::{SessionKey, SessionRecord, Timestamp};

use crate::buckets::Claim;
use crate::codec;
use crate::error::Failure;
use crate::keys::{self, Keys, UserKeys, bucket_of_key};
use crate::store::Shared;

/// What `lua/import.lua` answers for a session another user holds.
const ANOTHER_USERS: i64 = 4;
/// What it answers for a key routed to the bucket, linked from there to another.
const LINKED_ELSEWHERE: i64 = 5;
/// Tries at writing sessions whose keys a stale link held.
const TRIES: usize = 3;

/// One session to import, with the names the script needs.
pub(crate) struct Importing {
    key: SessionKey,
    home: u16,
    member: String,
    user: UserKeys,
    fields: [String; 9],
}

impl Importing {
    pub(crate) fn new(keys: &Keys, key: &SessionKey, record: &SessionRecord) -> Self {
        Self {
            key: *key,
            home: keys::home_bucket(&record.user_id),
            member: keys::member(key),
            user: keys.user(&record.user_id),
            fields: codec::encode(record),
        }
    }
}

/// Runs `lua/import.lua` for the items of `group`, answering for each.
async fn import_group(
    shared: &Shared,
    conn: &mut Connection,
    items: &[Importing],
    group: &[usize],
    now: Timestamp,
) -> Result<Vec<i64>, Failure> {
    let mut call = shared.invoke(&shared.scripts.import, items[group[0]].home, now);
    for &n in group {
        let item = &items[n];
        call.arg(&item.member)
            .arg(keys::tag(item.home))
            .arg(&item.user.by_expiry)
            .arg(&item.user.by_creation)
            .arg(&item.fields[..]);
    }
    let answers: Vec<i64> = call.invoke_async(conn).await?;
    if answers.len() != group.len() {
        return Err(Failure::Corrupt(
            "an import answer for another number of sessions".into(),
        ));
    }
    Ok(answers)
}

/// Imports `items`, answering per item what `lua/import.lua` does (1
/// created, 2 updated, 3 unchanged, 4 another user's).
pub(crate) async fn import_batch(
    shared: &Arc<Shared>,
    conn: &Connection,
    items: &[Importing],
    now: Timestamp,
) -> Result<Vec<i64>, Failure> {
    let mut outcomes: Vec<Option<i64>> = vec![None; items.len()];
    let linked: Vec<usize> = (0..items.len())
        .filter(|&n| bucket_of_key(&items[n].key) != items[n].home)
        .collect();
    let keys: Vec<_> = linked
        .iter()
        .map(|&n| (items[n].key, items[n].home))
        .collect();
    let claims = shared.claim_links(conn, &keys, now).await?;
    for (n, claim) in linked.into_iter().zip(claims) {
        if matches!(claim, Claim::Taken) {
            outcomes[n] = Some(ANOTHER_USERS);
        }
    }
    let mut conn = conn.clone();
    for _ in 0..TRIES {
        let pending: Vec<usize> = (0..items.len())
            .filter(|&n| outcomes[n].is_none())
            .collect();
        if pending.is_empty() {
            break;
        }
        // A standalone server takes the lot in one script run; a cluster
        // one per bucket, each on its node, all at once.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        match shared.connector.cluster() {
            None => groups.push(pending),
            Some(_) => {
                let mut by_bucket: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
                for n in pending {
                    by_bucket.entry(items[n].home).or_default().push(n);
                }
                groups.extend(by_bucket.into_values());
            }
        }
        let runs = groups.iter().map(|group| {
            let mut conn = conn.clone();
            async move {
                let answers = import_group(shared, &mut conn, items, group, now).await?;
                Ok::<_, Failure>(group.iter().copied().zip(answers).collect::<Vec<_>>())
            }
        });
        for (n, answer) in try_join_all(runs).await?.into_iter().flatten() {
            outcomes[n] = match answer {
                LINKED_ELSEWHERE => {
                    let key = &items[n].key;
                    let other: Option<u16> = redis::cmd("GET")
                        .arg(shared.keys.link(key))
                        .query_async(&mut conn)
                        .await?;
                    match other {
                        Some(other)
                            if shared.clear_stale_link(&mut conn, key, other, now).await? =>
                        {
                            None
                        }
                        Some(_) => Some(ANOTHER_USERS),
                        // Gone meanwhile: the next try writes it.
                        None => None,
                    }
                }
                answer => Some(answer),
            };
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(ANOTHER_USERS))
        .collect())
}

//! Reaching a session in its bucket, and keeping the links that lead to
//! sessions filed away from their key's own bucket (see `keys`): the steps
//! the store's operations share.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use crate::connection::Connection;
use futures_util::future::try_join_all;
use redis::{Script, Value};
use sessionmanager_core::{ExpiredSession, SessionKey, Timestamp};

use crate::error::Failure;
use crate::keys::{self, BUCKETS, bucket_of_key};
use crate::scripts::Scripts;
use crate::store::Shared;

/// What a link script answered for one key.
enum LinkAnswer {
    /// Linked, or found taken.
    Settled(Claim),
    /// A link to this other bucket holds the key.
    Elsewhere(u16),
}

/// What [`Shared::claim_link`] found.
#[derive(Clone, Copy)]
pub(crate) enum Claim {
    /// The key leads to the bucket asked for; `made` if this call linked it
    /// (to remove again should the write there not happen).
    Linked { made: bool },
    /// A live session holds the key in another bucket.
    Taken,
}

/// Runs `op` in the bucket `key` routes to and, if a link there names the
/// bucket where its session lives, in that one. Answers with the bucket it
/// ran in last.
async fn at_key<T, F, Fut>(
    shared: &Arc<Shared>,
    conn: &Connection,
    key: &SessionKey,
    op: F,
) -> Result<(T, u16), Failure>
where
    F: Fn(Arc<Shared>, Connection, u16) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let own = bucket_of_key(key);
    match op(Arc::clone(shared), conn.clone(), own).await {
        Err(Failure::Linked {
            bucket,
            new_key: false,
        }) if bucket != own => Ok((op(Arc::clone(shared), conn.clone(), bucket).await?, bucket)),
        other => Ok((other?, own)),
    }
}

/// `fields` of `key`'s session hash where it lives (in the key's bucket,
/// or the one a link there names): `None` if there is none.
pub(crate) async fn session_fields(
    shared: &Arc<Shared>,
    conn: &Connection,
    key: &SessionKey,
    fields: &'static [&'static str],
) -> Result<Option<Vec<Option<Vec<u8>>>>, Failure> {
    let (found, _) = at_key(shared, conn, key, |shared, mut conn, bucket| async move {
        shared.read_fields(&mut conn, key, bucket, fields).await
    })
    .await?;
    Ok(found)
}

/// Runs the script `pick` names on `key`'s session where it lives (in the
/// key's bucket, or the one a link there names; KEYS: the bucket's expiry
/// index and the session; ARGV: prefix, now, the key's member, then
/// `args`), and waits for the replicas `wait_replicas` asks for. Answers
/// the script's answer and the bucket it ran in.
pub(crate) async fn on_session(
    shared: &Arc<Shared>,
    conn: &Connection,
    key: &SessionKey,
    pick: fn(&Scripts) -> &Script,
    args: Arc<Vec<String>>,
    now: Timestamp,
) -> Result<(Value, u16), Failure> {
    let (answer, bucket) = at_key(shared, conn, key, |shared, mut conn, bucket| {
        let args = Arc::clone(&args);
        async move {
            let answer: Value = shared
                .invoke(pick(&shared.scripts), bucket, now)
                .key(shared.keys.session(key, bucket))
                .arg(keys::member(key))
                .arg(&args[..])
                .invoke_async(&mut conn)
                .await?;
            Ok(answer)
        }
    })
    .await?;
    shared.replicated(conn, bucket).await?;
    Ok((answer, bucket))
}

impl Shared {
    /// Whether a live session holds `key` in `bucket`.
    pub(crate) async fn live_in(
        &self,
        conn: &mut Connection,
        key: &SessionKey,
        bucket: u16,
        now: Timestamp,
    ) -> Result<bool, Failure> {
        let expires_at: Option<i64> = redis::cmd("HGET")
            .arg(self.keys.session(key, bucket))
            .arg("e")
            .query_async(conn)
            .await?;
        Ok(expires_at.is_some_and(|e| now.millis() < e))
    }

    /// The session hash of `key` in `bucket`, its `fields`: `None` if it is
    /// not there. On a miss in the key's own bucket, a link there answers
    /// [`Failure::Linked`]: read only then, since most keys have none and a
    /// hit needs no second look (an id that leads nowhere, or a linked one,
    /// costs a round trip more).
    pub(crate) async fn read_fields(
        &self,
        conn: &mut Connection,
        key: &SessionKey,
        bucket: u16,
        fields: &[&str],
    ) -> Result<Option<Vec<Option<Vec<u8>>>>, Failure> {
        let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(self.keys.session(key, bucket))
            .arg(fields)
            .query_async(conn)
            .await?;
        if values.iter().any(Option::is_some) {
            return Ok(Some(values));
        }
        if bucket != bucket_of_key(key) {
            return Ok(None);
        }
        let link: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.keys.link(key))
            .query_async(conn)
            .await?;
        match link {
            Some(home) => Err(Failure::Linked {
                bucket: parse_bucket(&home)?,
                new_key: false,
            }),
            None => Ok(None),
        }
    }

    /// Makes `key`, which routes to another bucket than `home`, lead to
    /// `home`, where its session is about to be written. A link to a third
    /// bucket whose session is gone is replaced.
    pub(crate) async fn claim_link(
        &self,
        conn: &mut Connection,
        key: &SessionKey,
        home: u16,
        now: Timestamp,
    ) -> Result<Claim, Failure> {
        let mut replace = false;
        loop {
            match self.link_run(conn, &[(*key, home)], replace, now).await?[0] {
                LinkAnswer::Settled(claim) => return Ok(claim),
                LinkAnswer::Elsewhere(other) if !replace => {
                    if self.live_in(conn, key, other, now).await? {
                        return Ok(Claim::Taken);
                    }
                    replace = true;
                }
                LinkAnswer::Elsewhere(_) => {
                    return Err(corrupt("a link replaced that was still there"));
                }
            }
        }
    }

    /// [`Self::claim_link`] for many keys (an import's), in one script run
    /// per bucket the keys route to (one in all on a standalone server).
    pub(crate) async fn claim_links(
        &self,
        conn: &Connection,
        keys: &[(SessionKey, u16)],
        now: Timestamp,
    ) -> Result<Vec<Claim>, Failure> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        match self.connector.cluster() {
            None => groups.push((0..keys.len()).collect()),
            Some(_) => {
                let mut by_bucket: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
                for (n, (key, _)) in keys.iter().enumerate() {
                    by_bucket.entry(bucket_of_key(key)).or_default().push(n);
                }
                groups.extend(by_bucket.into_values());
            }
        }
        let runs = groups.into_iter().filter(|g| !g.is_empty()).map(|group| {
            let mut conn = conn.clone();
            async move {
                let batch: Vec<_> = group.iter().map(|&n| keys[n]).collect();
                let answers = self.link_run(&mut conn, &batch, false, now).await?;
                let mut claims = Vec::with_capacity(group.len());
                for ((key, home), answer) in batch.iter().zip(answers) {
                    claims.push(match answer {
                        LinkAnswer::Settled(claim) => claim,
                        // Rare: a link left by a session gone or going.
                        LinkAnswer::Elsewhere(_) => {
                            self.claim_link(&mut conn, key, *home, now).await?
                        }
                    });
                }
                Ok::<_, Failure>(group.into_iter().zip(claims).collect::<Vec<_>>())
            }
        });
        let mut claims = vec![Claim::Taken; keys.len()];
        for (n, claim) in try_join_all(runs).await?.into_iter().flatten() {
            claims[n] = claim;
        }
        Ok(claims)
    }

    /// One run of `lua/link.lua` for `keys` (with their users' buckets),
    /// which route to one bucket unless the server is standalone.
    async fn link_run(
        &self,
        conn: &mut Connection,
        keys: &[(SessionKey, u16)],
        replace: bool,
        now: Timestamp,
    ) -> Result<Vec<LinkAnswer>, Failure> {
        let mut call = self.invoke(&self.scripts.link, bucket_of_key(&keys[0].0), now);
        for (key, home) in keys {
            call.arg(keys::member(key)).arg(home).arg(u8::from(replace));
        }
        let answers: Vec<Value> = call.invoke_async(conn).await?;
        if answers.len() != keys.len() {
            return Err(corrupt("link answers for another number of keys"));
        }
        answers
            .into_iter()
            .map(|answer| match answer {
                Value::Int(0) => Ok(LinkAnswer::Settled(Claim::Linked { made: true })),
                Value::Int(1) => Ok(LinkAnswer::Settled(Claim::Linked { made: false })),
                Value::Int(-1) => Ok(LinkAnswer::Settled(Claim::Taken)),
                Value::BulkString(other) => Ok(LinkAnswer::Elsewhere(parse_bucket(&other)?)),
                other => Err(corrupt(format!(
                    "an unexpected answer to a link: {other:?}"
                ))),
            })
            .collect()
    }

    /// Removes the link in `key`'s own bucket if the session it names in
    /// `other` is gone. Answers whether the key is free now.
    pub(crate) async fn clear_stale_link(
        &self,
        conn: &mut Connection,
        key: &SessionKey,
        other: u16,
        now: Timestamp,
    ) -> Result<bool, Failure> {
        if self.live_in(conn, key, other, now).await? {
            return Ok(false);
        }
        self.unlink(conn, [*key]).await?;
        Ok(true)
    }

    /// Does what a script left to do: removes the links it named and
    /// reports the expired sessions it removed.
    pub(crate) async fn settle(
        &self,
        conn: &mut Connection,
        tail: &[Value],
    ) -> Result<(), Failure> {
        let Aftermath { links, expired } = Aftermath::parse(tail)?;
        self.expiry.report(expired.len(), || expired);
        self.unlink(conn, links).await
    }

    /// Removes the links of `gone` sessions, each in its key's own bucket.
    pub(crate) async fn unlink(
        &self,
        conn: &mut Connection,
        gone: impl IntoIterator<Item = SessionKey>,
    ) -> Result<(), Failure> {
        let deletes = gone.into_iter().map(|key| {
            let mut conn = conn.clone();
            let link = self.keys.link(&key);
            async move {
                redis::cmd("DEL")
                    .arg(link)
                    .query_async::<()>(&mut conn)
                    .await
            }
        });
        try_join_all(deletes).await?;
        Ok(())
    }
}

/// What is left to do after a script that removed sessions (the tail of
/// its answer, see `unlink` in `lua/prelude.lua`).
#[derive(Default)]
pub(crate) struct Aftermath {
    /// Sessions whose links, in their keys' own buckets, must go.
    links: Vec<SessionKey>,
    /// Expired sessions it removed, to report.
    expired: Vec<ExpiredSession>,
}

impl Aftermath {
    /// Reads a script's tail: members (links to remove) and
    /// `{member, user, created_at, expires_at}` lists (expired sessions).
    pub(crate) fn parse(tail: &[Value]) -> Result<Self, Failure> {
        let mut out = Self::default();
        for item in tail {
            match item {
                Value::BulkString(text) => out.links.push(
                    keys::parse_member(text)
                        .ok_or_else(|| corrupt("a link to remove that names no session"))?,
                ),
                Value::Array(fields) => out.expired.push(expired_session(fields)?),
                other => return Err(corrupt(format!("{other:?} after a script's answer"))),
            }
        }
        Ok(out)
    }
}

/// An expired session as a script reported it.
fn expired_session(fields: &[Value]) -> Result<ExpiredSession, Failure> {
    fn text(value: &Value) -> Option<&str> {
        match value {
            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
    let millis = |value: &Value| text(value)?.parse::<i64>().ok().map(Timestamp);
    let garbled = || corrupt(format!("an expired session reported as {fields:?}"));
    let [member, user, created_at, expires_at] = fields else {
        return Err(garbled());
    };
    Ok(ExpiredSession {
        key: text(member)
            .and_then(|m| keys::parse_member(m.as_bytes()))
            .ok_or_else(garbled)?,
        user_id: text(user).ok_or_else(garbled)?.into(),
        created_at: millis(created_at).ok_or_else(garbled)?,
        expires_at: millis(expires_at).ok_or_else(garbled)?,
    })
}

/// A bucket's number as a link holds it.
fn parse_bucket(text: &[u8]) -> Result<u16, Failure> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<u16>().ok())
        .filter(|&b| b < BUCKETS)
        .ok_or_else(|| corrupt("a link to no bucket"))
}

fn corrupt(what: impl Into<String>) -> Failure {
    Failure::Corrupt(what.into())
}

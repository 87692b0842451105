//! The ordered key index: its layout, the expiry purge, and `reindex`.
//!
//! Redis has no ordered key listing, so the store keeps a sorted set of its
//! keys (all scores 0, so ZRANGE BYLEX orders members by bytes), updated in
//! the same MULTI/EXEC or script as the data. Keys written with a TTL are
//! also scheduled in a second sorted set scored by expiry time, so expired
//! keys leave the index within one purge interval and the index does not
//! grow with dead entries. Both sets are named with a NUL byte, which no kv
//! key may contain, so they can never collide with a stored key.
//!
//! The index also holds one member that is not a key,
//! [`ENCODING_MEMBER`](crate::ENCODING_MEMBER), which keeps it a skiplist:
//! as a listpack (Redis's form for up to 128 short members) a ZADD of 100
//! keys cost about 50% on top of an MSET of 100 1 KiB values. Every ZADD to
//! the index starts with it ([`Layout::index_zadd`]); listing starts past it
//! ([`FIRST_KEY`]).

use std::time::Duration;

use std::io::Write;

use kv_core::backend::PeriodicTask;
use kv_core::{Key, Operation, Result};
use redis::{Cmd, RedisWrite, ToRedisArgs};

use crate::buckets::Buckets;
use crate::conn::RedisConnection;
use crate::error::map_redis_error;
use crate::scripts::Scripts;

/// The one member of a store's key index that is not a key. It is longer
/// than Redis's `zset-max-listpack-value` (64 bytes by default), so the
/// index is a skiplist from its first batch on, where ZADD costs O(log n)
/// per key instead of a scan of the whole listpack per key; and it is never
/// removed, so the index never shrinks back. It starts with NUL (no kv key
/// can), so it sorts first and listing never returns it. Programs that read
/// the index themselves should skip it.
pub const ENCODING_MEMBER: &str =
    "\0kv:index-encoding\0longer than zset-max-listpack-value: keeps this set a skiplist";

/// The ZRANGE BYLEX bound of the first key: every kv key starts with a
/// byte of at least 0x01 (no NUL), [`ENCODING_MEMBER`] with 0x00.
pub(crate) const FIRST_KEY: &[u8] = b"[\x01";

/// How many schedule entries one purge script call looks at.
const PURGE_CHUNK: usize = 1000;

/// The Redis key names one store uses.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Prepended to every kv key.
    pub(crate) prefix: String,
    /// The sorted set of all keys (members without the prefix).
    pub(crate) index: Vec<u8>,
    /// The sorted set of keys with a TTL, scored by expiry (ms since epoch).
    pub(crate) expiries: Vec<u8>,
    /// The hash of each key's version (members without the prefix).
    pub(crate) versions: Vec<u8>,
    /// Set by a store without the listing index (`list_index = false`)
    /// when it opens: the index no longer holds every key, so lists and
    /// versioned writes of stores with the index refuse until `reindex`.
    pub(crate) unindexed: Vec<u8>,
}

impl Layout {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            index: format!("\0kv:index\0{prefix}").into_bytes(),
            expiries: format!("\0kv:expiries\0{prefix}").into_bytes(),
            versions: format!("\0kv:versions\0{prefix}").into_bytes(),
            unindexed: format!("\0kv:unindexed\0{prefix}").into_bytes(),
        }
    }

    /// `ZADD index 0 ENCODING_MEMBER 0 member ...`: every index write
    /// carries the encoding member.
    pub(crate) fn index_zadd<'m>(
        &self,
        members: impl ExactSizeIterator<Item = &'m str> + Clone,
    ) -> Cmd {
        let bytes: usize = members.clone().map(|m| 1 + m.len()).sum();
        let fixed = self.index.len() + 1 + ENCODING_MEMBER.len();
        let mut zadd = sized_cmd("ZADD", 3 + 2 * members.len(), fixed + bytes);
        zadd.arg(&self.index[..]).arg(0).arg(ENCODING_MEMBER);
        for member in members {
            zadd.arg(0).arg(member);
        }
        zadd
    }

    /// `ZADD expiries at member ...` for `(at, member)` pairs (`at` in ms
    /// since the epoch), or `None` when there are none.
    pub(crate) fn schedule_zadd<'m>(
        &self,
        expiries: impl IntoIterator<Item = (u64, &'m str)>,
    ) -> Option<Cmd> {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&self.expiries[..]);
        let mut any = false;
        for (at, member) in expiries {
            zadd.arg(at).arg(member);
            any = true;
        }
        any.then_some(zadd)
    }

    /// `HSET versions member version ...`.
    pub(crate) fn versions_hset<'m>(
        &self,
        versions: impl ExactSizeIterator<Item = (&'m str, [u8; 16])> + Clone,
    ) -> Cmd {
        let bytes: usize = versions.clone().map(|(m, _)| m.len() + 16).sum();
        let mut hset = sized_cmd("HSET", 1 + 2 * versions.len(), self.versions.len() + bytes);
        hset.arg(&self.versions[..]);
        for (member, version) in versions {
            hset.arg(member).arg(&version[..]);
        }
        hset
    }

    /// `HDEL versions member ...`.
    pub(crate) fn versions_hdel<'m>(
        &self,
        members: impl ExactSizeIterator<Item = &'m str> + Clone,
    ) -> Cmd {
        let bytes: usize = members.clone().map(str::len).sum();
        let mut hdel = sized_cmd("HDEL", 1 + members.len(), self.versions.len() + bytes);
        hdel.arg(&self.versions[..]);
        for member in members {
            hdel.arg(member);
        }
        hdel
    }

    /// `ZREM index member ...`.
    pub(crate) fn index_zrem<'m>(
        &self,
        members: impl ExactSizeIterator<Item = &'m str> + Clone,
    ) -> Cmd {
        let bytes: usize = members.clone().map(str::len).sum();
        let mut zrem = sized_cmd("ZREM", 1 + members.len(), self.index.len() + bytes);
        zrem.arg(&self.index[..]);
        for member in members {
            zrem.arg(member);
        }
        zrem
    }

    /// The Redis key of a kv key, as a command argument.
    pub(crate) fn data_key<'a>(&'a self, key: &'a Key) -> DataKey<'a> {
        DataKey {
            prefix: &self.prefix,
            key: key.as_str(),
        }
    }
}

/// An empty `name` command whose buffers hold `args` more arguments of
/// `arg_bytes` bytes in all without growing: a batch's command is built
/// with one allocation instead of a dozen doublings that copy its values.
pub(crate) fn sized_cmd(name: &str, args: usize, arg_bytes: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(1 + args, name.len() + arg_bytes);
    cmd.arg(name);
    cmd
}

/// `prefix + key` written straight into a command's buffer, with no
/// intermediate allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataKey<'a> {
    prefix: &'a str,
    key: &'a str,
}

impl ToRedisArgs for DataKey<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        if self.prefix.is_empty() {
            out.write_arg(self.key.as_bytes());
        } else {
            let mut arg = out.writer_for_next_arg();
            // Writes into the command's in-memory buffer cannot fail.
            let _ = arg.write_all(self.prefix.as_bytes());
            let _ = arg.write_all(self.key.as_bytes());
        }
    }
}

// Milliseconds since the Unix epoch, on this machine's clock. Used only as
// the schedule's score: the purge checks the real TTL before dropping.
pub(crate) use kv_core::backend::stamp::now_millis;

/// What a purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Schedule entries whose time had come.
    pub examined: u64,
    /// Index entries of expired keys that were dropped.
    pub dropped: u64,
}

/// What a reindex did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReindexReport {
    /// Keys found by SCAN and (re)added to the index (SCAN may report a key
    /// twice while the keyspace changes, so this may overcount).
    pub indexed: u64,
    /// Keys skipped because they are not valid kv keys (not UTF-8, empty,
    /// over 1024 bytes or with NUL).
    pub skipped: u64,
    /// Index entries dropped because their key no longer exists.
    pub dropped: u64,
}

/// The error a script raises when the prefix was written without the index.
pub(crate) const UNINDEXED_CODE: &str = "KVUNINDEXED";

/// Opens a store without the listing index: per bucket, one MULTI/EXEC
/// that marks the prefix unindexed and drops its index, expiry schedule and
/// versions (derived data: they would go stale with the first write, and a
/// stale version could let a check pass that should fail; `reindex`
/// rebuilds the index).
pub(crate) async fn mark_unindexed(conn: &RedisConnection, buckets: &Buckets) -> Result<()> {
    // All buckets at once, not one round trip after another on a cluster.
    futures::future::try_join_all(buckets.all().iter().map(|layout| async move {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&layout.unindexed[..])
            .arg(1)
            .ignore()
            .cmd("UNLINK")
            .arg(&layout.index[..])
            .arg(&layout.expiries[..])
            .arg(&layout.versions[..])
            .ignore();
        pipe.query_async::<()>(&mut conn.clone())
            .await
            .map_err(|e| map_redis_error(Operation::Connect, e))
    }))
    .await
    .map(drop)
}

/// Runs the purge script on every bucket, each until a call finds fewer
/// due entries than it may look at.
pub(crate) async fn purge(
    conn: &RedisConnection,
    buckets: &Buckets,
    scripts: &Scripts,
) -> Result<PurgeReport> {
    let mut report = PurgeReport::default();
    for layout in buckets.all() {
        let bucket = purge_bucket(conn, layout, scripts).await?;
        report.examined += bucket.examined;
        report.dropped += bucket.dropped;
    }
    Ok(report)
}

async fn purge_bucket(
    conn: &RedisConnection,
    layout: &Layout,
    scripts: &Scripts,
) -> Result<PurgeReport> {
    let mut report = PurgeReport::default();
    loop {
        let (examined, dropped): (u64, u64) = scripts
            .purge
            .key(&layout.index[..])
            .key(&layout.expiries[..])
            .key(&layout.versions[..])
            .arg(now_millis())
            .arg(PURGE_CHUNK)
            .arg(&layout.prefix)
            .invoke_async(&mut conn.clone())
            .await
            .map_err(|e| map_redis_error(Operation::Maintenance, e))?;
        report.examined += examined;
        report.dropped += dropped;
        if examined < PURGE_CHUNK as u64 {
            return Ok(report);
        }
    }
}

/// Spawns the periodic purge; it ends when the returned task is dropped.
pub(crate) fn spawn_purge(
    conn: RedisConnection,
    buckets: Buckets,
    scripts: Scripts,
    every: Duration,
) -> PeriodicTask {
    PeriodicTask::spawn("redis index purge", every, move || {
        let (conn, buckets, scripts) = (conn.clone(), buckets.clone(), scripts.clone());
        // A failed purge changes nothing visible (reads check expiry
        // themselves): it is counted in RedisStore::purge_status, logged,
        // and tried again at the next tick.
        async move { purge(&conn, &buckets, &scripts).await.map(drop) }
    })
}

/// `pattern` with Redis glob metacharacters escaped, so SCAN MATCH treats
/// the prefix literally.
pub(crate) fn glob_escape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 1);
    for c in pattern.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Adds every key under the prefix to the index (SCAN), schedules those with
/// a TTL, then drops index entries whose key is gone.
pub(crate) async fn reindex(conn: &RedisConnection, layout: &Layout) -> Result<ReindexReport> {
    let op = Operation::Maintenance;
    let map = |e| map_redis_error(op, e);
    let mut conn = conn.clone();
    let mut report = ReindexReport::default();
    let unindexed: bool = redis::cmd("EXISTS")
        .arg(&layout.unindexed[..])
        .query_async(&mut conn)
        .await
        .map_err(map)?;
    let pattern = format!("{}*", glob_escape(&layout.prefix));
    let mut cursor: u64 = 0;
    loop {
        let (next, names): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(map)?;
        // Our own index and schedule (named with NUL) are not data.
        let names: Vec<Vec<u8>> = names
            .into_iter()
            .filter(|n| !n[layout.prefix.len()..].starts_with(b"\0kv:"))
            .collect();
        let scanned = names.len() as u64;
        let members: Vec<(Vec<u8>, String)> = names
            .into_iter()
            .filter_map(|name| {
                let member = String::from_utf8(name.get(layout.prefix.len()..)?.to_vec()).ok()?;
                Key::new(member.as_str()).ok().map(|_| (name, member))
            })
            .collect();
        report.skipped += scanned - members.len() as u64;
        if !members.is_empty() {
            let mut ttls = redis::pipe();
            for (name, _) in &members {
                ttls.cmd("PTTL").arg(&name[..]);
            }
            let ttls: Vec<i64> = ttls.query_async(&mut conn).await.map_err(map)?;
            let now = now_millis();
            let mut add = redis::pipe();
            add.atomic();
            let index = layout.index_zadd(members.iter().map(|(_, m)| m.as_str()));
            add.add_command(index).ignore();
            let expiring = members.iter().zip(&ttls).filter(|(_, ttl)| **ttl > 0);
            let schedule = layout.schedule_zadd(
                expiring.map(|((_, m), ttl)| (now.saturating_add(ttl.unsigned_abs()), m.as_str())),
            );
            if let Some(schedule) = schedule {
                add.add_command(schedule).ignore();
            }
            add.query_async::<()>(&mut conn).await.map_err(map)?;
            report.indexed += members.len() as u64;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    report.dropped = drop_missing(&mut conn, layout).await?;
    if unindexed {
        // The index is whole again. Versions kept while a store without the
        // index also wrote may be stale: dropped, so every check against
        // one of them fails rather than passes wrongly.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(&layout.unindexed[..])
            .ignore()
            .cmd("UNLINK")
            .arg(&layout.versions[..])
            .ignore();
        pipe.query_async::<()>(&mut conn).await.map_err(map)?;
    }
    Ok(report)
}

/// Removes index members whose key does not exist, walking the index with
/// ZSCAN.
async fn drop_missing(conn: &mut RedisConnection, layout: &Layout) -> Result<u64> {
    let map = |e| map_redis_error(Operation::Maintenance, e);
    let mut dropped = 0;
    let mut cursor: u64 = 0;
    loop {
        let (next, flat): (u64, Vec<String>) = redis::cmd("ZSCAN")
            .arg(&layout.index[..])
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .map_err(map)?;
        // ZSCAN answers member, score, member, score, ...; the encoding
        // member (the only one starting with NUL) stays.
        let members: Vec<&String> = flat
            .iter()
            .step_by(2)
            .filter(|m| !m.starts_with('\0'))
            .collect();
        if !members.is_empty() {
            let mut exists = redis::pipe();
            for member in &members {
                exists
                    .cmd("EXISTS")
                    .arg(format!("{}{member}", layout.prefix));
            }
            let found: Vec<i64> = exists.query_async(conn).await.map_err(map)?;
            let gone: Vec<&&String> = members
                .iter()
                .zip(&found)
                .filter(|(_, f)| **f == 0)
                .map(|(m, _)| m)
                .collect();
            if !gone.is_empty() {
                let removed: u64 = layout
                    .index_zrem(gone.iter().map(|m| m.as_str()))
                    .query_async(conn)
                    .await
                    .map_err(map)?;
                dropped += removed;
            }
        }
        if next == 0 {
            return Ok(dropped);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_escape_makes_metacharacters_literal() {
        assert_eq!(glob_escape("a*b?[c]\\d^"), "a\\*b\\?\\[c\\]\\\\d\\^");
        assert_eq!(glob_escape("plain:"), "plain:");
    }

    #[test]
    fn the_encoding_member_is_long_and_sorts_before_every_key() {
        assert!(ENCODING_MEMBER.len() > 64);
        assert!(Key::new(ENCODING_MEMBER).is_err());
        assert!(ENCODING_MEMBER.as_bytes() < &FIRST_KEY[1..]);
        assert!(Key::new("\u{1}").unwrap().as_bytes() >= &FIRST_KEY[1..]);
    }

    #[test]
    fn index_names_cannot_be_kv_keys() {
        let layout = Layout::new("app:");
        assert!(layout.index.contains(&0) && layout.expiries.contains(&0));
    }
}

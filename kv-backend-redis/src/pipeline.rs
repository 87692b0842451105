//! The commands a store sends: data keys, the MULTI/EXEC of a batch (one per
//! bucket it touches), reads retried once after a broken connection.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use kv_core::backend::{CheckedEntry, CheckedOp};
use kv_core::{Entry, Key, Operation, Result, WriteOp};
use redis::{Arg, Cmd, FromRedisValue, ParsingError, Pipeline, RedisError, RedisResult};

use crate::conn::RedisConnection;
use crate::error::{aborted_by_topology, map_redis_error};
use crate::index::{DataKey, Layout, now_millis, sized_cmd};
use crate::store::RedisStore;
use crate::versions::VersionSource;

/// How many times a MULTI/EXEC that a cluster aborted because its slot
/// moved (see [`aborted_by_topology`]) is sent again, with pauses growing
/// from 20 ms to 640 ms: about 2.5 s in all, what a failover takes.
const TOPOLOGY_RETRIES: u32 = 8;

impl RedisStore {
    /// The Redis key of `key`, in its bucket.
    pub(crate) fn key<'a>(&'a self, key: &'a Key) -> DataKey<'a> {
        self.buckets.of(key).data_key(key)
    }

    /// `name` followed by the Redis keys of `keys` (all of `layout`'s
    /// bucket), built in one allocation.
    pub(crate) fn data_keys_cmd<'k>(
        layout: &Layout,
        name: &str,
        keys: impl ExactSizeIterator<Item = &'k Key> + Clone,
    ) -> Cmd {
        let prefix = layout.prefix.len();
        let bytes = keys.clone().map(|k| prefix + k.as_str().len()).sum();
        let mut cmd = sized_cmd(name, keys.len(), bytes);
        for key in keys {
            cmd.arg(layout.data_key(key));
        }
        cmd
    }

    /// Runs a read; on a dropped or refused connection retries once (the
    /// connection reconnects in between). Writes are never retried:
    /// whether they applied is unknown.
    pub(crate) async fn read<T, F, Fut>(&self, op: Operation, run: F) -> Result<T>
    where
        F: Fn(RedisConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        kv_core::backend::read_retrying_once(|| run(self.conn.clone()), is_reconnectable)
            .await
            .map_err(|e| map_redis_error(op, e))
    }

    /// Sends a pipeline (a MULTI/EXEC). On a cluster whose slot moved while
    /// it was queued, Redis aborts it whole (nothing applied): then the
    /// slot map is refreshed and it is sent again.
    pub(crate) async fn exec<T: FromRedisValue>(
        &self,
        op: Operation,
        pipe: &Pipeline,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match pipe.query_async(&mut self.conn.clone()).await {
                Err(e) if attempt < TOPOLOGY_RETRIES && aborted_by_topology(&e) => {
                    attempt += 1;
                    self.refresh_route(pipe).await;
                    tokio::time::sleep(Duration::from_millis(10 << attempt.min(6))).await;
                }
                other => return other.map_err(|e| map_redis_error(op, e)),
            }
        }
    }

    /// Sends a plain read of `pipe`'s first key: the driver follows its
    /// MOVED (which it does not inside a transaction) and updates its slot
    /// map. Its answer does not matter, so an error is not reported; the
    /// resent transaction reports its own.
    async fn refresh_route(&self, pipe: &Pipeline) {
        let key = pipe
            .cmd_iter()
            .find_map(|cmd| match cmd.args_iter().nth(1) {
                Some(Arg::Simple(key)) => Some(key.to_vec()),
                _ => None,
            });
        if let Some(key) = key {
            let _: RedisResult<i64> = redis::cmd("EXISTS")
                .arg(key)
                .query_async(&mut self.conn.clone())
                .await;
        }
    }

    /// Runs every pipeline (one per bucket) at once; their answers in
    /// order. One pipeline is simply sent.
    pub(crate) async fn exec_all<T: FromRedisValue>(
        &self,
        op: Operation,
        pipes: &[Pipeline],
    ) -> Result<Vec<T>> {
        match pipes {
            [pipe] => Ok(vec![self.exec(op, pipe).await?]),
            _ => futures::future::try_join_all(pipes.iter().map(|p| self.exec(op, p))).await,
        }
    }

    /// Runs `pipes` like [`Self::exec_all`] and frees `batch` (the caller's
    /// entries, already copied into the commands) while the server works
    /// rather than after the reply: freeing 100 entries took 2-5% of a
    /// MULTI/EXEC round trip here (see the README's benchmark).
    pub(crate) async fn exec_freeing<T: FromRedisValue, B>(
        &self,
        op: Operation,
        pipes: &[Pipeline],
        batch: B,
    ) -> Result<Vec<T>> {
        freeing(self.exec_all(op, pipes), batch).await
    }

    /// Runs the write pipelines of a `batch_set` or `write_batch` like
    /// [`Self::exec_freeing`]; a single pipeline of one command (a store
    /// without the index writing only plain entries: one `MSET`) is sent as
    /// that bare command, atomic by itself.
    pub(crate) async fn exec_writes<B>(
        &self,
        op: Operation,
        pipes: &[Pipeline],
        batch: B,
    ) -> Result<()> {
        if let [pipe] = pipes
            && !pipe.is_transaction()
            && let (Some(cmd), 1) = (pipe.cmd_iter().next(), pipe.len())
        {
            let mut conn = self.conn.clone();
            return freeing(cmd.query_async::<()>(&mut conn), batch)
                .await
                .map_err(|e| map_redis_error(op, e));
        }
        let _: Vec<()> = self.exec_freeing(op, pipes, batch).await?;
        Ok(())
    }

    /// The MULTI/EXECs of a validated `batch_set`, one per bucket; none for
    /// an empty batch.
    pub(crate) fn sets_pipelines(&self, entries: &[Entry]) -> Result<Vec<Pipeline>> {
        if let Some(mset) = self.plain_mset(entries)? {
            let mut pipe = redis::pipe();
            pipe.add_command(mset).ignore();
            return Ok(vec![pipe]);
        }
        let entries = self.validator.entries_borrowed(entries)?;
        let groups = self.buckets.group(entries, |e| e.key);
        Ok(groups
            .into_iter()
            .map(|(b, entries)| {
                let mut pipe = redis::pipe();
                self.push_sets(self.buckets.get(b), &mut pipe, &entries);
                pipe
            })
            .collect())
    }

    /// A store without the index, of one bucket, writing entries without
    /// TTL: one `MSET` of them in input order, validated (value sizes)
    /// before anything is built. `MSET` sets its keys in argument order, so
    /// a repeated key ends with its last value, as the contract says,
    /// without the sort that reduces duplicates elsewhere. `None` for any
    /// other batch, an empty one included.
    fn plain_mset(&self, entries: &[Entry]) -> Result<Option<Cmd>> {
        if self.config.list_index
            || self.buckets.len() != 1
            || entries.len() < 2
            || entries.iter().any(|e| e.ttl.is_some())
        {
            return Ok(None);
        }
        for entry in entries {
            self.validator
                .value(Operation::BatchSet, &entry.key, &entry.value)?;
        }
        let pairs = entries.iter().map(|e| (&e.key, &e.value[..]));
        Ok(set_cmd(self.buckets.get(0), pairs))
    }

    /// The MULTI/EXECs of a validated `write_batch`, one per bucket: the
    /// puts, then the deletes (each key appears once, so the order between
    /// them does not matter); none for an empty batch.
    pub(crate) fn writes_pipelines(&self, ops: &[WriteOp]) -> Result<Vec<Pipeline>> {
        let ops = self.validator.write_ops_borrowed(ops)?;
        let groups = self.buckets.group(ops, |op| match op {
            CheckedOp::Put(entry) => entry.key,
            CheckedOp::Delete(key) => *key,
        });
        Ok(groups
            .into_iter()
            .map(|(b, ops)| {
                let layout = self.buckets.get(b);
                let mut pipe = redis::pipe();
                let puts: Vec<CheckedEntry<'_>> = ops
                    .iter()
                    .filter_map(|op| match op {
                        CheckedOp::Put(entry) => Some(*entry),
                        CheckedOp::Delete(_) => None,
                    })
                    .collect();
                if !puts.is_empty() {
                    self.push_sets(layout, &mut pipe, &puts);
                }
                let deletes: Vec<&Key> = ops
                    .iter()
                    .filter_map(|op| match op {
                        CheckedOp::Delete(key) => Some(*key),
                        CheckedOp::Put(_) => None,
                    })
                    .collect();
                if !deletes.is_empty() {
                    self.push_deletes(layout, &mut pipe, &deletes, false);
                }
                pipe
            })
            .collect())
    }
}

impl RedisStore {
    /// Adds the writes of `entries` (all of `layout`'s bucket) to `pipe`:
    /// see [`push_sets`]; the index's commands only when the store keeps
    /// it. `pipe` becomes a MULTI/EXEC when it holds more than one command.
    pub(crate) fn push_sets(
        &self,
        layout: &Layout,
        pipe: &mut Pipeline,
        entries: &[CheckedEntry<'_>],
    ) {
        let versions = self.config.list_index.then_some(&*self.versions);
        push_sets(layout, pipe, entries, versions);
        seal(pipe);
    }

    /// Adds the deletes of `keys` to `pipe`: see [`push_deletes`]; the
    /// index's commands only when the store keeps it. `pipe` becomes a
    /// MULTI/EXEC when it holds more than one command.
    pub(crate) fn push_deletes(
        &self,
        layout: &Layout,
        pipe: &mut Pipeline,
        keys: &[&Key],
        counted: bool,
    ) {
        push_deletes(layout, pipe, keys, counted, self.config.list_index);
        seal(pipe);
    }
}

/// Runs `request` and frees `batch` (the caller's entries, already copied
/// into the commands) while the server works rather than after the reply:
/// freeing 100 entries took 2-5% of a MULTI/EXEC round trip here (see the
/// README's benchmark).
async fn freeing<T, B>(request: impl Future<Output = T>, batch: B) -> T {
    let free = async move {
        // Lets the connection task write the request first.
        tokio::task::yield_now().await;
        drop(batch);
    };
    let (result, ()) = tokio::join!(request, free);
    result
}

/// `SET` (one pair) or `MSET` (several) of `pairs`, all of `layout`'s
/// bucket, built in one allocation, in input order; `None` for no pairs.
fn set_cmd<'e>(
    layout: &Layout,
    pairs: impl Iterator<Item = (&'e Key, &'e [u8])> + Clone,
) -> Option<Cmd> {
    let (count, bytes) = pairs.clone().fold((0, 0), |(n, b), (key, value)| {
        (
            n + 1,
            b + layout.prefix.len() + key.as_str().len() + value.len(),
        )
    });
    let name = match count {
        0 => return None,
        1 => "SET",
        _ => "MSET",
    };
    let mut set = sized_cmd(name, 2 * count, bytes);
    for (key, value) in pairs {
        set.arg(layout.data_key(key)).arg(value);
    }
    Some(set)
}

/// One command is atomic by itself (an MSET, an UNLINK of many keys): it
/// is sent bare. Several are wrapped in MULTI/EXEC.
fn seal(pipe: &mut Pipeline) {
    if pipe.len() > 1 {
        pipe.atomic();
    }
}

/// Adds the writes of `entries` (all of `layout`'s bucket): one MSET for
/// those without TTL (SET for a single one), SET PX for each with a TTL,
/// and, with `versions` (a store with the index), one ZADD of all keys to
/// the index, one HSET of their new versions and, when some have a TTL,
/// one ZADD to the expiry schedule.
fn push_sets(
    layout: &Layout,
    pipe: &mut Pipeline,
    entries: &[CheckedEntry<'_>],
    versions: Option<&VersionSource>,
) {
    let plain = entries
        .iter()
        .filter(|e| e.ttl.is_none())
        .map(|e| (e.key, &e.value[..]));
    if let Some(set) = set_cmd(layout, plain) {
        pipe.add_command(set).ignore();
    }
    for entry in entries {
        if let Some(ttl) = entry.ttl {
            pipe.cmd("SET")
                .arg(layout.data_key(entry.key))
                .arg(&entry.value[..])
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
        }
    }
    let Some(versions) = versions else {
        return;
    };
    let members = entries.iter().map(|e| e.key.as_str());
    pipe.add_command(layout.index_zadd(members)).ignore();
    let first = versions.take(entries.len());
    let stamped = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.as_str(), VersionSource::token(first, i)));
    pipe.add_command(layout.versions_hset(stamped)).ignore();
    if entries.iter().any(|e| e.ttl.is_some()) {
        let now = now_millis();
        let expiring = entries.iter().filter_map(|e| {
            let at = now.saturating_add(millis(e.ttl?));
            Some((at, e.key.as_str()))
        });
        if let Some(schedule) = layout.schedule_zadd(expiring) {
            pipe.add_command(schedule).ignore();
        }
    }
}

/// Adds UNLINK of `keys` (all of `layout`'s bucket; its count a result of
/// the pipeline when `counted`) and, when `indexed`, ZREM from the index
/// and HDEL of their versions.
fn push_deletes(layout: &Layout, pipe: &mut Pipeline, keys: &[&Key], counted: bool, indexed: bool) {
    pipe.add_command(RedisStore::data_keys_cmd(
        layout,
        "UNLINK",
        keys.iter().copied(),
    ));
    if !counted {
        pipe.ignore();
    }
    if !indexed {
        return;
    }
    let members = keys.iter().map(|k| k.as_str());
    pipe.add_command(layout.index_zrem(members.clone()))
        .ignore();
    pipe.add_command(layout.versions_hdel(members)).ignore();
}

// A validated TTL in milliseconds (at most ten years, so it fits).
pub(crate) use kv_core::backend::millis;

/// The replies of `MULTI MGET k... PTTL k ... EXEC` as entries aligned
/// with `keys`. PTTL is -1 for a key without TTL and -2 for a missing one.
pub(crate) fn entries_with_ttl<'k>(
    keys: impl ExactSizeIterator<Item = &'k Key>,
    replies: Vec<redis::Value>,
) -> RedisResult<Vec<Option<Entry>>> {
    let count = keys.len();
    let mut replies = replies.into_iter();
    let values: Vec<Option<Bytes>> = match replies.next() {
        Some(mget) => redis::from_redis_value(mget)?,
        None => Vec::new(),
    };
    let ttls = i64::from_redis_values(replies.collect())?;
    if values.len() != count || ttls.len() != count {
        return Err(ParsingError::from("MULTI MGET PTTL: a reply per key was expected").into());
    }
    Ok(keys
        .zip(values)
        .zip(ttls)
        .map(|((key, value), pttl)| {
            let ttl = match pttl {
                -1 => None,
                // Gone between the two reads of one transaction: absent.
                ms if ms < 0 => return None,
                ms => Some(Duration::from_millis(ms.unsigned_abs().max(1))),
            };
            Some(Entry {
                key: key.clone(),
                value: value?,
                ttl,
            })
        })
        .collect())
}

/// A broken connection, worth one more try on a fresh one; a timeout is
/// not (the caller's deadline has passed).
fn is_reconnectable(err: &RedisError) -> bool {
    !err.is_timeout()
        && (err.is_connection_dropped() || err.is_connection_refusal() || err.is_io_error())
}

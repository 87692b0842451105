//! [`RedisStore`]: the `KvStore` implementation.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::{CheckedEntry, PeriodicTask, Validator};
use kv_core::{
    Capabilities, Condition, Entry, ErrorKind, Key, KvStore, ListOptions, MAX_KEY_BYTES, Operation,
    Page, Result, SetOptions, Transaction, TxnOutcome, Versioned, WriteOp, redact_url,
};
use redis::Pipeline;

use crate::buckets::Buckets;
use crate::config::RedisConfig;
use crate::conn::RedisConnection;
use crate::error::{BACKEND, map_redis_error};
use crate::index::{self, FIRST_KEY, Layout, PurgeReport, ReindexReport, now_millis};
use crate::pipeline::{entries_with_ttl, millis};
use crate::scripts::Scripts;
use crate::versions::VersionSource;

/// Redis's largest string value (`proto-max-bulk-len`): 512 MiB.
pub const MAX_VALUE_BYTES: usize = 512 * 1024 * 1024;

/// The Redis backend, on one server or a Redis Cluster: native batches
/// (MGET, MULTI/EXEC), an ordered key index, scripts for listing and CAS.
///
/// On one server (or on a cluster with a hash tag in the key prefix) every
/// batch is one MULTI/EXEC; on a cluster otherwise the keys are spread over
/// buckets and a batch is one MULTI/EXEC per bucket it touches.
///
/// Cheap to clone; clones share the connection and the purge task, which
/// stops when the last clone is dropped.
///
/// ```no_run
/// use kv_backend_redis::RedisStore;
/// use kv_core::Kv;
///
/// # async fn demo() -> kv_core::Result<()> {
/// let store = RedisStore::builder()
///     .url("redis://127.0.0.1:6379/0")
///     .key_prefix("myapp:")
///     .connect()
///     .await?;
/// let kv = Kv::new(store.into_dyn());
/// kv.batch_set([("a", 1), ("b", 2)]).await?; // one MULTI/EXEC
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) conn: RedisConnection,
    pub(crate) buckets: Buckets,
    pub(crate) scripts: Scripts,
    pub(crate) validator: Validator,
    pub(crate) versions: Arc<VersionSource>,
    pub(crate) config: Arc<RedisConfig>,
    pub(crate) _purge: Option<Arc<PeriodicTask>>,
}

impl RedisStore {
    /// This store as `Arc<dyn KvStore>`.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// The connection, for commands of your own.
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.buckets.prefix
    }

    /// Whether this store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, RedisConnection::Cluster(_))
    }

    /// How many buckets the keys are spread over: 1 on one server or under a
    /// hash-tagged prefix, `cluster_buckets` on a cluster otherwise.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Drops index entries of expired keys now (the background task does
    /// this every purge interval).
    ///
    /// # Errors
    ///
    /// `Unsupported` on a store without the index (`list_index = false`:
    /// Redis drops expired keys itself); the server's errors.
    pub async fn purge_expired(&self) -> Result<PurgeReport> {
        self.needs_index("purge_expired")?;
        index::purge(&self.conn, &self.buckets, &self.scripts).await
    }

    /// What the background purge has done: runs, failures and the last
    /// error (`None` when the purge is off). A purge that keeps failing (a
    /// user whose ACL forbids scripts) leaves expired keys in the listing
    /// index; lists skip them, but the index grows.
    pub fn purge_status(&self) -> Option<kv_core::backend::TaskStatus> {
        self._purge.as_ref().map(|task| task.status())
    }

    /// Rebuilds the listing index from a SCAN of the keys under the prefix:
    /// keys written by other programs become listable, index entries of keys
    /// deleted by other programs are dropped. Keys that are not valid kv keys
    /// are skipped and counted. Not atomic; safe to run while the store is
    /// in use. On one server only.
    ///
    /// Also the way back from `list_index = false`: stop the stores without
    /// the index, then run this on a store with it; until it ends, lists
    /// and versioned writes fail with `Config` (the index may miss keys),
    /// and when it ends every version kept so far is dropped (a check
    /// against one fails; the next write gives a new one).
    ///
    /// # Errors
    ///
    /// `Unsupported` on a cluster (SCAN walks one node) or on a store
    /// without the index; the server's errors.
    pub async fn reindex(&self) -> Result<ReindexReport> {
        self.needs_index("reindex")?;
        if self.is_cluster() {
            return Err(kv_core::Error::new(
                ErrorKind::Unsupported,
                BACKEND,
                Operation::Maintenance,
            )
            .with_message("reindex scans one server; it is not available on a cluster"));
        }
        index::reindex(&self.conn, self.buckets.get(0)).await
    }

    /// `Unsupported` for `what` on a store without the index.
    fn needs_index(&self, what: &str) -> Result<()> {
        if self.config.list_index {
            return Ok(());
        }
        Err(
            kv_core::Error::new(ErrorKind::Unsupported, BACKEND, Operation::Maintenance)
                .with_message(format!(
                    "{what} works on the listing index, which this store does not keep \
                     (list_index = false)"
                )),
        )
    }

    /// Whether this store keeps the listing index (`list_index`).
    pub fn has_list_index(&self) -> bool {
        self.config.list_index
    }

    /// One bucket's page: the list script from `min` to `max`, at most
    /// `want` live members.
    async fn list_bucket(
        &self,
        layout: &Layout,
        min: &[u8],
        max: &[u8],
        want: usize,
    ) -> Result<Vec<String>> {
        self.read(Operation::List, |mut c| {
            let scripts = self.scripts.clone();
            async move {
                scripts
                    .list
                    .key(&layout.index[..])
                    .key(&layout.versions[..])
                    .key(&layout.unindexed[..])
                    .arg(min)
                    .arg(max)
                    .arg(want)
                    .arg(&layout.prefix)
                    .invoke_async(&mut c)
                    .await
            }
        })
        .await
    }
}

/// What Redis promises through this store: batches are atomic and reads
/// one snapshot when the store is one bucket; listing, versions and
/// transactions need the index.
pub(crate) fn capabilities(one_bucket: bool, indexed: bool) -> Capabilities {
    Capabilities {
        atomic_batch: one_bucket,
        // MULTI/EXEC makes a batch of any size atomic; its only bound is the
        // server's client query buffer (1 GiB by default). A huge batch
        // holds Redis's single thread while it runs: split bulk loads.
        max_batch_ops: None,
        max_key_bytes: MAX_KEY_BYTES,
        max_value_bytes: MAX_VALUE_BYTES,
        ttl: true,
        cas: true,
        versions: indexed,
        // A script touches one hash slot: keys spread over buckets cannot
        // share one.
        transactions: one_bucket && indexed,
        counters: true,
        listing: indexed,
        ordered_list: indexed,
        snapshot_batch_get: one_bucket,
        persistent: true,
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &redact_url(&self.config.url))
            .field("key_prefix", &self.buckets.prefix)
            .field("buckets", &self.buckets.len())
            .field("list_index", &self.config.list_index)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.validator.capabilities()
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let mut get = redis::cmd("GET");
        get.arg(self.key(key));
        self.read(Operation::Get, |mut c| {
            let get = &get;
            async move { get.query_async(&mut c).await }
        })
        .await
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        let ttl = self.validator.set(key, &value, options)?;
        let entry = CheckedEntry {
            key,
            value: &value,
            ttl,
        };
        let mut pipe = redis::pipe();
        self.push_sets(self.buckets.of(key), &mut pipe, &[entry]);
        self.exec_writes(Operation::Set, &[pipe], ()).await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let mut pipe = redis::pipe();
        self.push_deletes(self.buckets.of(key), &mut pipe, &[key], true);
        let (removed,): (u64,) = self.exec(Operation::Delete, &pipe).await?;
        Ok(removed > 0)
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        let mut exists = redis::cmd("EXISTS");
        exists.arg(self.key(key));
        let found: u64 = self
            .read(Operation::Exists, |mut c| {
                let exists = &exists;
                async move { exists.query_async(&mut c).await }
            })
            .await?;
        Ok(found > 0)
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        let range = self.validator.list(prefix, &options)?;
        if range.exhausted {
            return Ok(Page::default());
        }
        let (lower, inclusive) = range.lower();
        let min = if lower.is_empty() {
            FIRST_KEY.to_vec()
        } else {
            let mut min = Vec::with_capacity(lower.len() + 1);
            min.push(if inclusive { b'[' } else { b'(' });
            min.extend_from_slice(lower);
            min
        };
        let max = match &range.end {
            Some(end) => [&b"("[..], end].concat(),
            None => b"+".to_vec(),
        };
        let want = range.limit.saturating_add(1);
        // Each bucket answers its first `want` live keys of the range; the
        // first `want` of all of them, merged, are the page.
        let mut members = match self.buckets.all() {
            [layout] => self.list_bucket(layout, &min, &max, want).await?,
            layouts => {
                let pages = futures::future::try_join_all(
                    layouts
                        .iter()
                        .map(|layout| self.list_bucket(layout, &min, &max, want)),
                )
                .await?;
                let mut all: Vec<String> = pages.into_iter().flatten().collect();
                all.sort_unstable();
                all.truncate(want);
                all
            }
        };
        members.truncate(want);
        let keys = members
            .into_iter()
            .map(|member| {
                Key::new(member).map_err(|e| {
                    e.in_context(BACKEND, Operation::List)
                        .with_message("the key index holds an invalid key; run reindex()")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_fetched(keys, range.limit))
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.validator.check_batch_keys(Operation::BatchGet, keys)?;
        if self.buckets.len() == 1 {
            let mget = Self::data_keys_cmd(self.buckets.get(0), "MGET", keys.iter());
            // Each value is parsed into its own buffer, which `Bytes` takes over.
            return self
                .read(Operation::BatchGet, |mut c| {
                    let mget = &mget;
                    async move { mget.query_async(&mut c).await }
                })
                .await;
        }
        // One MGET per bucket, all at once; answers put back in place.
        let groups = self.buckets.group(0..keys.len(), |i| &keys[*i]);
        let answers = futures::future::try_join_all(groups.iter().map(|(b, positions)| {
            let mget = Self::data_keys_cmd(
                self.buckets.get(*b),
                "MGET",
                positions.iter().map(|i| &keys[*i]),
            );
            async move {
                self.read(Operation::BatchGet, |mut c| {
                    let mget = &mget;
                    async move { mget.query_async::<Vec<Option<Bytes>>>(&mut c).await }
                })
                .await
            }
        }))
        .await?;
        let mut out = vec![None; keys.len()];
        for ((_, positions), values) in groups.iter().zip(answers) {
            for (i, value) in positions.iter().zip(values) {
                out[*i] = value;
            }
        }
        Ok(out)
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.validator
            .check_batch_keys(Operation::BatchGetWithTtl, keys)?;
        // Per bucket, MULTI MGET PTTL... EXEC: values and TTLs of one moment.
        let groups = self.buckets.group(0..keys.len(), |i| &keys[*i]);
        let answers = futures::future::try_join_all(groups.iter().map(|(b, positions)| {
            let layout = self.buckets.get(*b);
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.add_command(Self::data_keys_cmd(
                layout,
                "MGET",
                positions.iter().map(|i| &keys[*i]),
            ));
            for i in positions {
                pipe.cmd("PTTL").arg(layout.data_key(&keys[*i]));
            }
            async move {
                self.read(Operation::BatchGetWithTtl, |mut c| {
                    let pipe = &pipe;
                    async move {
                        entries_with_ttl(
                            positions.iter().map(|i| &keys[*i]),
                            pipe.query_async(&mut c).await?,
                        )
                    }
                })
                .await
            }
        }))
        .await?;
        let mut out = vec![None; keys.len()];
        for ((_, positions), entries) in groups.iter().zip(answers) {
            for (i, entry) in positions.iter().zip(entries) {
                out[*i] = entry;
            }
        }
        Ok(out)
    }

    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        let pipes = self.sets_pipelines(&entries)?;
        if pipes.is_empty() {
            return Ok(());
        }
        self.exec_writes(Operation::BatchSet, &pipes, entries).await
    }

    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        let pipes = self.sets_pipelines(entries)?;
        if pipes.is_empty() {
            return Ok(());
        }
        self.exec_writes(Operation::BatchSet, &pipes, ()).await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.validator
            .check_batch_keys(Operation::BatchDelete, keys)?;
        if !self.config.list_index && self.buckets.len() == 1 {
            // One UNLINK, atomic by itself: sent bare.
            let unlink = Self::data_keys_cmd(self.buckets.get(0), "UNLINK", keys.iter());
            return unlink
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| map_redis_error(Operation::BatchDelete, e));
        }
        let groups = self.buckets.group(keys.iter(), |k| *k);
        let pipes: Vec<Pipeline> = groups
            .iter()
            .map(|(b, keys)| {
                let mut pipe = redis::pipe();
                // UNLINK counts a repeated key once: the second lookup finds nothing.
                self.push_deletes(self.buckets.get(*b), &mut pipe, keys, true);
                pipe
            })
            .collect();
        let removed: Vec<(u64,)> = self.exec_all(Operation::BatchDelete, &pipes).await?;
        Ok(removed.into_iter().map(|(n,)| n).sum())
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        let pipes = self.writes_pipelines(&ops)?;
        if pipes.is_empty() {
            return Ok(());
        }
        self.exec_writes(Operation::WriteBatch, &pipes, ops).await
    }

    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        let pipes = self.writes_pipelines(ops)?;
        if pipes.is_empty() {
            return Ok(());
        }
        self.exec_writes(Operation::WriteBatch, &pipes, ()).await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let ttl = self
            .validator
            .cas(key, expected.as_deref(), new.as_deref(), options)?;
        let px = ttl.map_or(String::new(), |t| millis(t).to_string());
        let at = ttl.map_or(0, |t| now_millis().saturating_add(millis(t)));
        let flag = |present: bool| if present { "1" } else { "0" };
        let layout = self.buckets.of(key);
        let version = VersionSource::token(self.versions.take(1), 0);
        let mut cas = self.scripts.cas.key(layout.data_key(key));
        self.index_keys(&mut cas, layout);
        let swapped: u64 = cas
            .arg(key.as_str())
            .arg(flag(expected.is_some()))
            .arg(expected.as_deref().unwrap_or_default())
            .arg(flag(new.is_some()))
            .arg(new.as_deref().unwrap_or_default())
            .arg(px)
            .arg(at)
            .arg(&version[..])
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_redis_error(Operation::CompareAndSwap, e))?;
        Ok(swapped == 1)
    }

    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        self.read_versioned(keys).await
    }

    async fn get_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        let mut found = self
            .read_versioned(std::slice::from_ref(key))
            .await
            .map_err(|e| e.in_context(BACKEND, Operation::GetVersioned))?;
        Ok(found.pop().flatten())
    }

    async fn write_if(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        self.write_if_one(key, condition, new, options).await
    }

    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        self.transact_script(txn).await
    }

    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        self.increment_script(key, delta, options).await
    }

    async fn health(&self) -> Result<kv_core::Health> {
        let started = Instant::now();
        let _: String = self
            .read(Operation::Health, |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await?;
        Ok(kv_core::Health {
            backend: BACKEND,
            latency: started.elapsed(),
        })
    }
}

//! [`RedisStore`]: the `KvStore` implementation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::{
    Capabilities, CheckedEntry, CheckedOp, Entry, Key, KvStore, ListOptions, MAX_KEY_BYTES,
    Operation, Page, PeriodicTask, Result, SetOptions, Validator, WriteOp, connect_within,
    redact_url,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, ParsingError, Pipeline, RedisError, RedisResult};

use crate::config::RedisConfig;
use crate::error::{BACKEND, config_error, map_redis_error};
use crate::index::{
    self, DataKey, FIRST_KEY, Layout, PurgeReport, ReindexReport, now_millis, sized_cmd,
};
use crate::scripts::Scripts;

/// Redis's largest string value (`proto-max-bulk-len`): 512 MiB.
pub const MAX_VALUE_BYTES: usize = 512 * 1024 * 1024;

/// The Redis backend: one multiplexed, auto-reconnecting connection
/// (`ConnectionManager`), native batches, an ordered key index.
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
    conn: ConnectionManager,
    layout: Layout,
    scripts: Scripts,
    validator: Validator,
    config: Arc<RedisConfig>,
    _purge: Option<Arc<PeriodicTask>>,
}

/// Builds a [`RedisStore`].
#[derive(Debug, Clone, Default)]
pub struct RedisStoreBuilder {
    config: RedisConfig,
}

impl RedisStoreBuilder {
    /// The server URL: `redis://[user[:password]@]host[:port][/db]`, or
    /// `rediss://` for TLS.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = url.into();
        self
    }

    /// A prefix for every key in Redis (default none).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// For `rediss://` with a private CA: trust the CA in this PEM file
    /// (instead of the public roots) to sign the server's certificate.
    pub fn tls_ca_file(mut self, file: impl Into<String>) -> Self {
        self.config.tls_ca_file = Some(file.into());
        self
    }

    /// How long one connection attempt may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.set_durations(Some(timeout), None);
        self
    }

    /// How long a command or MULTI/EXEC may take (default 60 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.config.set_durations(None, Some(timeout));
        self
    }

    /// How often expired keys leave the index (default 60 s); `None` turns
    /// the background purge off.
    pub fn purge_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.set_purge_interval(interval);
        self
    }

    /// Connects (one round trip) and starts the purge task.
    ///
    /// # Errors
    ///
    /// `Config` for a bad URL or key prefix; `Unavailable`, `Timeout`,
    /// `PermissionDenied` when the server cannot be reached or refuses.
    pub async fn connect(self) -> Result<RedisStore> {
        RedisStore::from_config(self.config).await
    }
}

impl RedisStore {
    /// A builder with the defaults.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to `url` with the defaults.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().url(url).connect().await
    }

    /// Connects with a deserialized [`RedisConfig`].
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    pub async fn from_config(config: RedisConfig) -> Result<Self> {
        if config.key_prefix.contains('\0') || config.key_prefix.len() >= MAX_KEY_BYTES {
            return Err(config_error(
                "the key prefix must have no NUL and be shorter than 1024 bytes",
            ));
        }
        // The driver's parse errors never contain the URL; ours neither.
        let invalid = |e: redis::RedisError| {
            config_error(format!(
                "invalid Redis URL ({:?}): expected redis://[user[:password]@]host[:port][/db] \
                 or rediss://",
                e.kind()
            ))
        };
        let client = match &config.tls_ca_file {
            None => redis::Client::open(config.url.as_str()).map_err(invalid)?,
            Some(file) => {
                let root_cert = std::fs::read(file).map_err(|e| {
                    config_error(format!("cannot read the TLS CA file {file:?}: {e}"))
                })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(config.url.as_str(), certs).map_err(invalid)?
            }
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout()))
            .set_response_timeout(Some(config.response_timeout()))
            .set_number_of_retries(3);
        // The driver's connection timeout covers the TCP connect; its
        // handshake waits for the response timeout. The connect timeout
        // bounds both.
        let connecting = async {
            ConnectionManager::new_with_config(client, manager_config)
                .await
                .map_err(|e| map_redis_error(Operation::Connect, e))
        };
        let conn = connect_within(BACKEND, config.connect_timeout(), connecting).await?;
        let layout = Layout::new(&config.key_prefix);
        let scripts = Scripts::new();
        let purge = config.purge_interval().map(|every| {
            Arc::new(index::spawn_purge(
                conn.clone(),
                layout.clone(),
                scripts.clone(),
                every,
            ))
        });
        Ok(Self {
            conn,
            layout,
            scripts,
            validator: Validator::new(BACKEND, capabilities()),
            config: Arc::new(config),
            _purge: purge,
        })
    }

    /// This store as `Arc<dyn KvStore>`.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// The connection, for commands of your own.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.layout.prefix
    }

    /// Drops index entries of expired keys now (the background task does
    /// this every purge interval).
    ///
    /// # Errors
    ///
    /// The server's errors.
    pub async fn purge_expired(&self) -> Result<PurgeReport> {
        index::purge(&self.conn, &self.layout, &self.scripts).await
    }

    /// Rebuilds the listing index from a SCAN of the keys under the prefix:
    /// keys written by other programs become listable, index entries of keys
    /// deleted by other programs are dropped. Keys that are not valid kv keys
    /// are skipped and counted. Not atomic; safe to run while the store is
    /// in use.
    ///
    /// # Errors
    ///
    /// The server's errors.
    pub async fn reindex(&self) -> Result<ReindexReport> {
        index::reindex(&self.conn, &self.layout).await
    }

    fn key<'a>(&'a self, key: &'a Key) -> DataKey<'a> {
        self.layout.data_key(key)
    }

    /// `name` followed by the Redis keys of `keys`, built in one allocation.
    fn data_keys_cmd<'k>(
        &self,
        name: &str,
        keys: impl ExactSizeIterator<Item = &'k Key> + Clone,
    ) -> Cmd {
        let prefix = self.layout.prefix.len();
        let bytes = keys.clone().map(|k| prefix + k.as_str().len()).sum();
        let mut cmd = sized_cmd(name, keys.len(), bytes);
        for key in keys {
            cmd.arg(self.key(key));
        }
        cmd
    }

    /// Runs a read; on a dropped or refused connection retries once (the
    /// connection manager reconnects in between). Writes are never retried:
    /// whether they applied is unknown.
    async fn read<T, F, Fut>(&self, op: Operation, run: F) -> Result<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match run(self.conn.clone()).await {
            Err(e) if is_reconnectable(&e) => run(self.conn.clone()).await,
            other => other,
        }
        .map_err(|e| map_redis_error(op, e))
    }

    async fn exec<T: redis::FromRedisValue>(&self, op: Operation, pipe: &Pipeline) -> Result<T> {
        pipe.query_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_redis_error(op, e))
    }

    /// Runs `pipe` like [`Self::exec`] and frees `batch` (the caller's
    /// entries, already copied into the commands) while the server works
    /// rather than after the reply: freeing 100 entries took 2-5% of a
    /// MULTI/EXEC round trip here (see the README's benchmark).
    async fn exec_freeing<T: redis::FromRedisValue, B>(
        &self,
        op: Operation,
        pipe: &Pipeline,
        batch: B,
    ) -> Result<T> {
        let free = async move {
            // Lets the connection task write the request first.
            tokio::task::yield_now().await;
            drop(batch);
        };
        let (result, ()) = tokio::join!(self.exec(op, pipe), free);
        result
    }

    /// The MULTI/EXEC of a validated `batch_set`; `None` for an empty one.
    fn sets_pipeline(&self, entries: &[Entry]) -> Result<Option<Pipeline>> {
        let entries = self.validator.entries_borrowed(entries)?;
        if entries.is_empty() {
            return Ok(None);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.push_sets(&mut pipe, &entries);
        Ok(Some(pipe))
    }

    /// The MULTI/EXEC of a validated `write_batch`: the puts, then the
    /// deletes (each key appears once, so the order between them does not
    /// matter); `None` for an empty batch.
    fn writes_pipeline(&self, ops: &[WriteOp]) -> Result<Option<Pipeline>> {
        let ops = self.validator.write_ops_borrowed(ops)?;
        if ops.is_empty() {
            return Ok(None);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let puts: Vec<CheckedEntry<'_>> = ops
            .iter()
            .filter_map(|op| match op {
                CheckedOp::Put(entry) => Some(*entry),
                CheckedOp::Delete(_) => None,
            })
            .collect();
        if !puts.is_empty() {
            self.push_sets(&mut pipe, &puts);
        }
        let deletes: Vec<&Key> = ops
            .iter()
            .filter_map(|op| match op {
                CheckedOp::Delete(key) => Some(*key),
                CheckedOp::Put(_) => None,
            })
            .collect();
        if !deletes.is_empty() {
            self.push_deletes(&mut pipe, &deletes, false);
        }
        Ok(Some(pipe))
    }

    /// Adds the writes of `entries`: one MSET for those without TTL (SET for
    /// a single one), SET PX for each with a TTL, one ZADD of all keys to the
    /// index and, when some have a TTL, one ZADD to the expiry schedule.
    fn push_sets(&self, pipe: &mut Pipeline, entries: &[CheckedEntry<'_>]) {
        let prefix = self.layout.prefix.len();
        let (mut plain, mut plain_bytes) = (0, 0);
        for entry in entries.iter().filter(|e| e.ttl.is_none()) {
            plain += 1;
            plain_bytes += prefix + entry.key.as_str().len() + entry.value.len();
        }
        if plain > 0 {
            let name = if plain == 1 { "SET" } else { "MSET" };
            let mut set = sized_cmd(name, 2 * plain, plain_bytes);
            for entry in entries.iter().filter(|e| e.ttl.is_none()) {
                set.arg(self.key(entry.key)).arg(&entry.value[..]);
            }
            pipe.add_command(set).ignore();
        }
        for entry in entries {
            if let Some(ttl) = entry.ttl {
                pipe.cmd("SET")
                    .arg(self.key(entry.key))
                    .arg(&entry.value[..])
                    .arg("PX")
                    .arg(millis(ttl))
                    .ignore();
            }
        }
        let members = entries.iter().map(|e| e.key.as_str());
        pipe.add_command(self.layout.index_zadd(members)).ignore();
        if plain < entries.len() {
            let now = now_millis();
            let expiring = entries.iter().filter_map(|e| {
                let at = now.saturating_add(millis(e.ttl?));
                Some((at, e.key.as_str()))
            });
            if let Some(schedule) = self.layout.schedule_zadd(expiring) {
                pipe.add_command(schedule).ignore();
            }
        }
    }

    /// Adds UNLINK of `keys` (its count a result of the pipeline when
    /// `counted`) and ZREM from the index.
    fn push_deletes(&self, pipe: &mut Pipeline, keys: &[&Key], counted: bool) {
        pipe.add_command(self.data_keys_cmd("UNLINK", keys.iter().copied()));
        if !counted {
            pipe.ignore();
        }
        let members = keys.iter().map(|k| k.as_str());
        pipe.add_command(self.layout.index_zrem(members)).ignore();
    }
}

/// A validated TTL in milliseconds (at most ten years, so it fits).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// The replies of `MULTI MGET k... PTTL k ... EXEC` as entries aligned
/// with `keys`. PTTL is -1 for a key without TTL and -2 for a missing one.
fn entries_with_ttl(keys: &[Key], replies: Vec<redis::Value>) -> RedisResult<Vec<Option<Entry>>> {
    let mut replies = replies.into_iter();
    let values: Vec<Option<Bytes>> = match replies.next() {
        Some(mget) => redis::from_redis_value(mget)?,
        None => Vec::new(),
    };
    let ttls = i64::from_redis_values(replies.collect())?;
    if values.len() != keys.len() || ttls.len() != keys.len() {
        return Err(ParsingError::from("MULTI MGET PTTL: a reply per key was expected").into());
    }
    Ok(keys
        .iter()
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

/// What Redis promises through this store.
fn capabilities() -> Capabilities {
    Capabilities {
        atomic_batch: true,
        // MULTI/EXEC makes a batch of any size atomic; its only bound is the
        // server's client query buffer (1 GiB by default). A huge batch
        // holds Redis's single thread while it runs: split bulk loads.
        max_batch_ops: None,
        max_key_bytes: MAX_KEY_BYTES,
        max_value_bytes: MAX_VALUE_BYTES,
        ttl: true,
        cas: true,
        ordered_list: true,
        snapshot_batch_get: true,
        persistent: true,
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &redact_url(&self.config.url))
            .field("key_prefix", &self.layout.prefix)
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
        pipe.atomic();
        self.push_sets(&mut pipe, &[entry]);
        self.exec(Operation::Set, &pipe).await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.push_deletes(&mut pipe, &[key], true);
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
        let members: Vec<String> = self
            .read(Operation::List, |mut c| {
                let (min, max) = (min.clone(), max.clone());
                let scripts = self.scripts.clone();
                let (index, prefix) = (self.layout.index.clone(), self.layout.prefix.clone());
                async move {
                    scripts
                        .list
                        .key(index)
                        .arg(min)
                        .arg(max)
                        .arg(want)
                        .arg(prefix)
                        .invoke_async(&mut c)
                        .await
                }
            })
            .await?;
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
        let mget = self.data_keys_cmd("MGET", keys.iter());
        // Each value is parsed into its own buffer, which `Bytes` takes over.
        self.read(Operation::BatchGet, |mut c| {
            let mget = &mget;
            async move { mget.query_async(&mut c).await }
        })
        .await
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.validator
            .check_batch_keys(Operation::BatchGetWithTtl, keys)?;
        // MULTI MGET PTTL... EXEC: the values and their TTLs of one moment.
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.add_command(self.data_keys_cmd("MGET", keys.iter()));
        for key in keys {
            pipe.cmd("PTTL").arg(self.key(key));
        }
        self.read(Operation::BatchGetWithTtl, |mut c| {
            let pipe = &pipe;
            async move { entries_with_ttl(keys, pipe.query_async(&mut c).await?) }
        })
        .await
    }

    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        let Some(pipe) = self.sets_pipeline(&entries)? else {
            return Ok(());
        };
        self.exec_freeing(Operation::BatchSet, &pipe, entries).await
    }

    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        let Some(pipe) = self.sets_pipeline(entries)? else {
            return Ok(());
        };
        self.exec(Operation::BatchSet, &pipe).await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.validator
            .check_batch_keys(Operation::BatchDelete, keys)?;
        let refs: Vec<&Key> = keys.iter().collect();
        let mut pipe = redis::pipe();
        pipe.atomic();
        // UNLINK counts a repeated key once: the second lookup finds nothing.
        self.push_deletes(&mut pipe, &refs, true);
        let (removed,): (u64,) = self.exec(Operation::BatchDelete, &pipe).await?;
        Ok(removed)
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        let Some(pipe) = self.writes_pipeline(&ops)? else {
            return Ok(());
        };
        self.exec_freeing(Operation::WriteBatch, &pipe, ops).await
    }

    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        let Some(pipe) = self.writes_pipeline(ops)? else {
            return Ok(());
        };
        self.exec(Operation::WriteBatch, &pipe).await
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
        let swapped: u64 = self
            .scripts
            .cas
            .key(self.key(key))
            .key(&self.layout.index[..])
            .key(&self.layout.expiries[..])
            .arg(key.as_str())
            .arg(flag(expected.is_some()))
            .arg(expected.as_deref().unwrap_or_default())
            .arg(flag(new.is_some()))
            .arg(new.as_deref().unwrap_or_default())
            .arg(px)
            .arg(at)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_redis_error(Operation::CompareAndSwap, e))?;
        Ok(swapped == 1)
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

//! [`RocksDbStore`]: the `KvStore` implementation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::stamp::{self as value, now_millis};
use kv_core::backend::{CheckedOp, counter};
use kv_core::{
    Capabilities, Condition, Entry, Health, Key, KvStore, ListOptions, MAX_KEY_BYTES, Operation,
    Page, Result, SetOptions, Transaction, TxnOutcome, Version, Versioned, WriteOp,
    prefix_successor,
};
use rocksdb::{DB, Direction, IteratorMode, ReadOptions, WriteBatch};

use crate::config::RocksDbConfig;
use crate::error::BACKEND;
use crate::inner::{Inner, KeyList, decoded, decoded_with_ttl, join_error, malformed};
use crate::open::RocksDbStoreBuilder;

/// The largest value: 256 MiB (values travel whole through a WriteBatch).
pub const MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// The embedded RocksDB backend: a database directory, atomic WriteBatches,
/// snapshot batched `multi_get`, expiry by compaction filter.
///
/// Every call runs on Tokio's blocking pool (`spawn_blocking`), so the
/// runtime's workers never wait on disk. Cheap to clone; the database
/// closes when the last clone is dropped.
///
/// ```no_run
/// use kv_backend_rocksdb::RocksDbStore;
/// use kv_core::Kv;
///
/// # async fn demo() -> kv_core::Result<()> {
/// let store = RocksDbStore::builder("/var/lib/myapp/kv").sync_writes(true).open().await?;
/// let kv = Kv::new(store.into_dyn());
/// kv.batch_set([("a", 1), ("b", 2)]).await?; // one WriteBatch
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RocksDbStore {
    pub(crate) inner: Arc<Inner>,
}

/// What RocksDB promises through this store.
pub(crate) fn capabilities() -> Capabilities {
    Capabilities {
        atomic_batch: true,
        // A WriteBatch of any size is atomic.
        max_batch_ops: None,
        max_key_bytes: MAX_KEY_BYTES,
        max_value_bytes: MAX_VALUE_BYTES,
        ttl: true,
        cas: true,
        versions: true,
        transactions: true,
        counters: true,
        listing: true,
        ordered_list: true,
        snapshot_batch_get: true,
        persistent: true,
    }
}

impl RocksDbStore {
    /// A builder for the database at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> RocksDbStoreBuilder {
        RocksDbStoreBuilder {
            config: RocksDbConfig {
                path: path.into(),
                ..RocksDbConfig::default()
            },
            temporary: false,
        }
    }

    /// Opens with a deserialized [`RocksDbConfig`].
    ///
    /// # Errors
    ///
    /// As [`RocksDbStoreBuilder::open`].
    pub async fn from_config(config: RocksDbConfig) -> Result<Self> {
        RocksDbStoreBuilder {
            config,
            temporary: false,
        }
        .open()
        .await
    }

    /// Opens the database a `rocksdb://` URL names (see
    /// [`RocksDbConfig::from_url`]).
    ///
    /// # Errors
    ///
    /// `Config` for a bad URL; as [`RocksDbStoreBuilder::open`].
    pub async fn open_url(url: &str) -> Result<Self> {
        Self::from_config(RocksDbConfig::from_url(url)?).await
    }

    /// A fresh database in a new directory under the system temp dir, with
    /// sync writes off, removed when the last clone is dropped. For tests
    /// and caches.
    ///
    /// # Errors
    ///
    /// As [`RocksDbStoreBuilder::open`].
    pub async fn temporary() -> Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "kv-rocksdb-{}-{}-{}",
            std::process::id(),
            now_millis(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut builder = Self::builder(path).sync_writes(false);
        builder.temporary = true;
        builder.open().await
    }

    /// This store as `Arc<dyn KvStore>`.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The RocksDB handle, for reads of your own (values carry kv's expiry
    /// header; write through the store).
    pub fn db(&self) -> &DB {
        &self.inner.db
    }

    /// Compacts the whole key range now, which drops expired values from
    /// disk (RocksDB also does this on its own as files are compacted).
    ///
    /// # Errors
    ///
    /// When the blocking call fails.
    pub async fn compact(&self) -> Result<()> {
        self.run(Operation::Maintenance, |inner| {
            inner.db.compact_range::<&[u8], &[u8]>(None, None);
            Ok(())
        })
        .await
    }

    /// Runs `f` on the blocking pool.
    async fn run<T, F>(&self, op: Operation, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| join_error(op, e))?
    }
}

impl fmt::Debug for RocksDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for RocksDbStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.validator.capabilities()
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let key = key.clone();
        self.run(Operation::Get, move |inner| {
            inner.live(Operation::Get, &key, now_millis())
        })
        .await
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        let ttl = self.inner.validator.set(key, &value, options)?;
        let entry = Entry {
            key: key.clone(),
            value,
            ttl,
        };
        self.run(Operation::Set, move |inner| {
            let _locks = inner.lock(std::iter::once(entry.key.as_bytes()));
            let op = Operation::Set;
            let batch = inner.batch_of(
                op,
                std::iter::once((&entry.key, Some(&entry))),
                now_millis(),
            )?;
            inner.write(op, batch)
        })
        .await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let key = key.clone();
        self.run(Operation::Delete, move |inner| {
            let op = Operation::Delete;
            let _locks = inner.lock(std::iter::once(key.as_bytes()));
            let was_live = inner.present(op, &key, now_millis())?;
            let mut batch = WriteBatch::default();
            batch.delete(key.as_bytes());
            inner.write(op, batch)?;
            Ok(was_live)
        })
        .await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        let key = key.clone();
        self.run(Operation::Exists, move |inner| {
            inner.present(Operation::Exists, &key, now_millis())
        })
        .await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        let range = self.inner.validator.list(prefix, &options)?;
        if range.exhausted {
            return Ok(Page::default());
        }
        self.run(Operation::List, move |inner| {
            let op = Operation::List;
            let mut read = ReadOptions::default();
            if let Some(end) = prefix_successor(range.prefix.as_bytes()) {
                read.set_iterate_upper_bound(end);
            }
            let (lower, inclusive) = range.lower();
            let now = now_millis();
            let want = range.limit.saturating_add(1);
            let mut keys = Vec::new();
            for item in inner
                .db
                .iterator_opt(IteratorMode::From(lower, Direction::Forward), read)
            {
                let (raw_key, stored) = item.map_err(|e| inner.error(op, e))?;
                if !inclusive && &raw_key[..] == lower {
                    continue;
                }
                // A key that is not a valid kv key (written through db():
                // not UTF-8, NUL, too long) has no name in kv: not listed.
                let Some(key) = std::str::from_utf8(&raw_key)
                    .ok()
                    .and_then(|k| Key::new(k).ok())
                else {
                    continue;
                };
                // A value in another format is a present key: listed.
                if !value::expired(&stored, now) {
                    keys.push(key);
                    if keys.len() == want {
                        break;
                    }
                }
            }
            Ok(Page::from_fetched(keys, range.limit))
        })
        .await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.inner
            .validator
            .check_batch_keys(Operation::BatchGet, keys)?;
        let keys = KeyList::new(keys);
        self.run(Operation::BatchGet, move |inner| {
            let op = Operation::BatchGet;
            let now = now_millis();
            let snapshot = inner.db.snapshot();
            let mut read = ReadOptions::default();
            read.set_snapshot(&snapshot);
            keys.iter()
                .zip(inner.multi_get(op, &keys, &read)?)
                .map(|(key, stored)| match stored {
                    Some(stored) => Ok(decoded(op, key, &stored, now)?.map(Bytes::copy_from_slice)),
                    None => Ok(None),
                })
                .collect()
        })
        .await
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let op = Operation::BatchGetWithTtl;
        self.inner.validator.check_batch_keys(op, keys)?;
        let list = KeyList::new(keys);
        let found: Vec<Option<(Bytes, Option<Duration>)>> = self
            .run(op, move |inner| {
                let now = now_millis();
                let snapshot = inner.db.snapshot();
                let mut read = ReadOptions::default();
                read.set_snapshot(&snapshot);
                list.iter()
                    .zip(inner.multi_get(op, &list, &read)?)
                    .map(|(key, stored)| match stored {
                        Some(stored) => Ok(decoded_with_ttl(op, key, &stored, now)?
                            .map(|(value, ttl)| (Bytes::copy_from_slice(value), ttl))),
                        None => Ok(None),
                    })
                    .collect()
            })
            .await?;
        Ok(keys
            .iter()
            .zip(found)
            .map(|(key, found)| {
                found.map(|(value, ttl)| Entry {
                    key: key.clone(),
                    value,
                    ttl,
                })
            })
            .collect())
    }

    /// Copies the entries into [`batch_set`](Self::batch_set): the WriteBatch is built on a blocking thread, which needs owned entries.
    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        self.batch_set(entries.to_vec()).await
    }

    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        let entries = self.inner.validator.entries(entries)?;
        if entries.is_empty() {
            return Ok(());
        }
        self.run(Operation::BatchSet, move |inner| {
            let _locks = inner.lock(entries.iter().map(|e| e.key.as_bytes()));
            let op = Operation::BatchSet;
            let batch =
                inner.batch_of(op, entries.iter().map(|e| (&e.key, Some(e))), now_millis())?;
            inner.write(op, batch)
        })
        .await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        let keys = self
            .inner
            .validator
            .distinct_keys(Operation::BatchDelete, keys)?;
        if keys.is_empty() {
            return Ok(0);
        }
        let keys = KeyList::new(keys);
        self.run(Operation::BatchDelete, move |inner| {
            let op = Operation::BatchDelete;
            // Under the keys' locks no other writer can change them between
            // the count and the delete: the count is exact.
            let _locks = inner.lock(keys.iter().map(str::as_bytes));
            let now = now_millis();
            let mut live = 0;
            let found = inner.multi_get(op, &keys, &ReadOptions::default())?;
            // A value in another format is a present key: counted.
            for stored in found.into_iter().flatten() {
                live += u64::from(!value::expired(&stored, now));
            }
            let mut batch = WriteBatch::default();
            for key in keys.iter() {
                batch.delete(key.as_bytes());
            }
            inner.write(op, batch)?;
            Ok(live)
        })
        .await
    }

    /// Copies the operations into [`write_batch`](Self::write_batch): the WriteBatch is built on a blocking thread, which needs owned entries.
    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        self.write_batch(ops.to_vec()).await
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        let ops = self.inner.validator.write_ops(ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.run(Operation::WriteBatch, move |inner| {
            let _locks = inner.lock(ops.iter().map(|op| op.key().as_bytes()));
            let changes = ops.iter().map(|op| match op {
                WriteOp::Put(entry) => (&entry.key, Some(entry)),
                WriteOp::Delete(key) => (key, None),
            });
            let op = Operation::WriteBatch;
            inner.write(op, inner.batch_of(op, changes, now_millis())?)
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let ttl = self
            .inner
            .validator
            .cas(key, expected.as_deref(), new.as_deref(), options)?;
        let key = key.clone();
        self.run(Operation::CompareAndSwap, move |inner| {
            let op = Operation::CompareAndSwap;
            let _locks = inner.lock(std::iter::once(key.as_bytes()));
            let now = now_millis();
            if inner.live(op, &key, now)? != expected {
                return Ok(false);
            }
            let entry = new.map(|value| Entry {
                key: key.clone(),
                value,
                ttl,
            });
            inner.write(
                op,
                inner.batch_of(op, std::iter::once((&key, entry.as_ref())), now)?,
            )?;
            Ok(true)
        })
        .await
    }

    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        let op = Operation::BatchGetVersioned;
        self.inner.validator.versioned_keys(op, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = KeyList::new(keys);
        self.run(op, move |inner| {
            let now = now_millis();
            let snapshot = inner.db.snapshot();
            let mut read = ReadOptions::default();
            read.set_snapshot(&snapshot);
            keys.iter()
                .zip(inner.multi_get(op, &keys, &read)?)
                .map(|(key, stored)| match stored {
                    Some(stored) => Ok(value::decode_versioned(&stored, now)
                        .map_err(|_| malformed(op, key))?
                        .map(|(value, _, version)| Versioned {
                            value: Bytes::copy_from_slice(value),
                            version: Version::from_u64(version),
                        })),
                    None => Ok(None),
                })
                .collect()
        })
        .await
    }

    async fn get_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        let mut found = self
            .batch_get_versioned(std::slice::from_ref(key))
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
        let ttl = self
            .inner
            .validator
            .write_if(key, new.as_deref(), options)?;
        let txn = Transaction::write_if(key, condition, new, ttl);
        Ok(self.transact(&txn).await?.is_committed())
    }

    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let op = Operation::Transact;
        let (checks, writes) = self.inner.validator.transaction(txn)?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        let checks = checks.to_vec();
        let writes: Vec<(Key, Option<Entry>)> = writes
            .iter()
            .map(|w| match w {
                CheckedOp::Put(e) => (e.key.clone(), Some(e.to_entry())),
                CheckedOp::Delete(key) => ((*key).clone(), None),
            })
            .collect();
        self.run(op, move |inner| {
            // Under the locks of every key checked or written, no other
            // writer comes between the checks and the writes.
            let _locks = inner.lock(
                checks
                    .iter()
                    .map(|c| c.key.as_bytes())
                    .chain(writes.iter().map(|(k, _)| k.as_bytes())),
            );
            let checked = KeyList::new(checks.iter().map(|c| &c.key));
            let now = now_millis();
            let current: Vec<Option<Version>> = inner
                .multi_get(op, &checked, &ReadOptions::default())?
                .iter()
                .map(|stored| stored.as_deref().and_then(|s| version_of(s, now)))
                .collect();
            let outcome = TxnOutcome::evaluate(&checks, current.iter().map(Option::as_ref));
            if outcome.is_committed() {
                let changes = writes.iter().map(|(k, e)| (k, e.as_ref()));
                inner.write(op, inner.batch_of(op, changes, now)?)?;
            }
            Ok(outcome)
        })
        .await
    }

    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        let op = Operation::Increment;
        let ttl = self.inner.validator.increment(key, options)?;
        let key = key.clone();
        self.run(op, move |inner| {
            let _locks = inner.lock(std::iter::once(key.as_bytes()));
            let now = now_millis();
            let stored = inner
                .db
                .get_pinned(key.as_bytes())
                .map_err(|e| inner.error(op, e))?;
            let (current, ttl) = match stored.as_deref().map(|s| value::decode_with_ttl(s, now)) {
                Some(Ok(Some((value, left)))) => (Some(value), left),
                Some(Ok(None)) | None => (None, ttl),
                Some(Err(_)) => return Err(inner.validator.not_a_counter(&key)),
            };
            let next = inner.validator.add_to_counter(&key, current, delta)?;
            let entry = Entry {
                key: key.clone(),
                value: counter::encode(next),
                ttl,
            };
            drop(stored);
            inner.write(
                op,
                inner.batch_of(op, std::iter::once((&key, Some(&entry))), now)?,
            )?;
            Ok(next)
        })
        .await
    }

    async fn health(&self) -> Result<Health> {
        let started = Instant::now();
        self.run(Operation::Health, |inner| {
            inner
                .db
                .property_int_value("rocksdb.estimate-num-keys")
                .map(drop)
                .map_err(|e| inner.error(Operation::Health, e))
        })
        .await?;
        Ok(Health {
            backend: BACKEND,
            latency: started.elapsed(),
        })
    }
}

/// The version of a stored value as a check sees it (`None`: expired). A
/// value kv cannot read is present, at a version no read returns.
fn version_of(stored: &[u8], now: u64) -> Option<Version> {
    match value::decode_versioned(stored, now) {
        Ok(found) => found.map(|(_, _, version)| Version::from_u64(version)),
        Err(_) => Some(Version::from_bytes(Bytes::new())),
    }
}

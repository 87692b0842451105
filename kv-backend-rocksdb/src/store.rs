//! [`RocksDbStore`]: the `KvStore` implementation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::Validator;
use kv_core::{
    Capabilities, Entry, Error, ErrorKind, Health, Key, KvStore, ListOptions, MAX_KEY_BYTES,
    Operation, Page, Result, SetOptions, WriteOp, prefix_successor,
};
use rocksdb::compaction_filter::Decision;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    DBPinnableSlice, DEFAULT_COLUMN_FAMILY_NAME, Direction, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions,
};

use crate::config::{Compression, RocksDbConfig};
use crate::error::{BACKEND, map_rocksdb_error};
use kv_core::backend::stamp::{self as value, Malformed, now_millis};

/// The largest value: 256 MiB (values travel whole through a WriteBatch).
pub const MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// How many locks the key space is striped over.
const STRIPES: usize = 64;

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
    inner: Arc<Inner>,
}

struct Inner {
    // Dropped first: the database closes before a temporary directory is
    // removed.
    db: DB,
    path: PathBuf,
    write: WriteOptions,
    stripes: Vec<Mutex<()>>,
    validator: Validator,
    _temporary: Option<TemporaryDir>,
}

/// Removes a temporary database's directory when dropped.
struct TemporaryDir(PathBuf);

impl Drop for TemporaryDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds a [`RocksDbStore`].
#[derive(Debug, Clone)]
pub struct RocksDbStoreBuilder {
    config: RocksDbConfig,
    temporary: bool,
}

impl RocksDbStoreBuilder {
    /// Whether to create the database when missing (default `true`).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.config.create_if_missing = create;
        self
    }

    /// SST block compression (default LZ4).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// Sync the write-ahead log on every write (default `true`, durable).
    pub fn sync_writes(mut self, sync: bool) -> Self {
        self.config.sync_writes = sync;
        self
    }

    /// The block cache size in bytes (default 64 MiB).
    pub fn block_cache_bytes(mut self, bytes: usize) -> Self {
        self.config.block_cache_bytes = bytes;
        self
    }

    /// Opens (or creates) the database on the blocking pool.
    ///
    /// # Errors
    ///
    /// `Unavailable` naming the path when another process (or this one)
    /// has it open; `Config` when it is missing and `create_if_missing` is
    /// off; `Backend` for other RocksDB errors.
    pub async fn open(self) -> Result<RocksDbStore> {
        tokio::task::spawn_blocking(move || self.open_blocking())
            .await
            .map_err(|e| join_error(Operation::Connect, e))?
    }

    /// [`RocksDbStoreBuilder::open`] for synchronous code.
    ///
    /// # Errors
    ///
    /// As [`RocksDbStoreBuilder::open`].
    pub fn open_blocking(self) -> Result<RocksDbStore> {
        let config = &self.config;
        // The default column family is opened by name, with the same
        // options, so batched `multi_get` (which takes a handle) can use it.
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let default =
            ColumnFamilyDescriptor::new(DEFAULT_COLUMN_FAMILY_NAME, options(config, &cache));
        let db = DB::open_cf_descriptors(&options(config, &cache), &config.path, [default])
            .map_err(|e| map_rocksdb_error(Operation::Connect, &config.path, e))?;
        let mut write = WriteOptions::default();
        write.set_sync(config.sync_writes);
        Ok(RocksDbStore {
            inner: Arc::new(Inner {
                db,
                path: config.path.clone(),
                write,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                validator: Validator::new(BACKEND, capabilities()),
                _temporary: self.temporary.then(|| TemporaryDir(config.path.clone())),
            }),
        })
    }
}

/// The database and column family options `config` asks for.
fn options(config: &RocksDbConfig, cache: &Cache) -> Options {
    let mut options = Options::default();
    options.create_if_missing(config.create_if_missing);
    options.set_compression_type(match config.compression {
        Compression::None => DBCompressionType::None,
        Compression::Lz4 => DBCompressionType::Lz4,
        Compression::Zstd => DBCompressionType::Zstd,
    });
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    options.set_block_based_table_factory(&table);
    options.set_compaction_filter("kv-expiry", |_level: u32, _key: &[u8], stored: &[u8]| {
        if value::expired(stored, now_millis()) {
            Decision::Remove
        } else {
            Decision::Keep
        }
    });
    if config.periodic_compaction_secs > 0 {
        options.set_periodic_compaction_seconds(config.periodic_compaction_secs);
    }
    options
}

fn join_error(op: Operation, err: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, op)
        .with_message("the blocking RocksDB call did not complete")
        .with_source(err)
}

/// What RocksDB promises through this store.
fn capabilities() -> Capabilities {
    Capabilities {
        atomic_batch: true,
        // A WriteBatch of any size is atomic.
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

impl Inner {
    fn error(&self, op: Operation, err: rocksdb::Error) -> Error {
        map_rocksdb_error(op, &self.path, err)
    }

    /// Locks the stripes of `keys` in ascending order (no deadlocks).
    /// Every write holds the locks of its keys, so a read-then-write
    /// (CAS, counting deletes) sees no other writer in between.
    fn lock<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys.map(stripe).collect();
        stripes.sort_unstable();
        stripes.dedup();
        // A panic while holding a stripe cannot corrupt anything the lock guards.
        stripes
            .into_iter()
            .map(|i| {
                self.stripes[i]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            })
            .collect()
    }

    /// The stored values of `keys`, in order, pinned (not copied), in one
    /// batched `multi_get`; a snapshot in `read` gives them one view.
    fn multi_get(
        &self,
        op: Operation,
        keys: &KeyList,
        read: &ReadOptions,
    ) -> Result<Vec<Option<DBPinnableSlice<'_>>>> {
        let cf = self.default_cf(op)?;
        self.db
            .batched_multi_get_cf_opt(cf, keys.iter().map(str::as_bytes), false, read)
            .into_iter()
            .map(|found| found.map_err(|e| self.error(op, e)))
            .collect()
    }

    fn default_cf(&self, op: Operation) -> Result<&ColumnFamily> {
        // Opened by name in `open_blocking`, so always present.
        self.db
            .cf_handle(DEFAULT_COLUMN_FAMILY_NAME)
            .ok_or_else(|| {
                Error::new(ErrorKind::Backend, BACKEND, op)
                    .with_message("the default column family is not open")
            })
    }

    /// The live value of `key` now.
    fn live(&self, op: Operation, key: &Key, now: u64) -> Result<Option<Bytes>> {
        match self
            .db
            .get_pinned(key.as_bytes())
            .map_err(|e| self.error(op, e))?
        {
            Some(stored) => {
                decoded(op, key.as_str(), &stored, now).map(|v| v.map(Bytes::copy_from_slice))
            }
            None => Ok(None),
        }
    }

    /// Whether `key` is present and not expired at `now`, without reading
    /// its value as kv's: a value in another format (written through
    /// [`RocksDbStore::db`]) is a present key, as on every backend.
    fn present(&self, op: Operation, key: &Key, now: u64) -> Result<bool> {
        Ok(self
            .db
            .get_pinned(key.as_bytes())
            .map_err(|e| self.error(op, e))?
            .is_some_and(|stored| !value::expired(&stored, now)))
    }

    fn write(&self, op: Operation, batch: WriteBatch) -> Result<()> {
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.error(op, e))
    }
}

/// Keys copied for the blocking pool into one string: two allocations
/// however many keys there are, where cloning each `Key` costs one each.
struct KeyList {
    text: String,
    ends: Vec<usize>,
}

impl KeyList {
    fn new<'a>(keys: impl IntoIterator<Item = &'a Key, IntoIter: Clone>) -> Self {
        let keys = keys.into_iter();
        let mut list = KeyList {
            text: String::with_capacity(keys.clone().map(|k| k.as_str().len()).sum()),
            ends: Vec::with_capacity(keys.size_hint().0),
        };
        for key in keys {
            list.text.push_str(key.as_str());
            list.ends.push(list.text.len());
        }
        list
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        // Every start and end is where one whole key's text was joined to
        // the next, so a char boundary: `get` never misses.
        starts
            .zip(&self.ends)
            .map(|(start, &end)| self.text.get(start..end).unwrap_or_default())
    }
}

/// FNV-1a over the key: a stable stripe index.
fn stripe(key: &[u8]) -> usize {
    (kv_core::backend::fnv1a(key) % STRIPES as u64) as usize
}

/// Decodes a stored value; a value not in kv's format is an error naming
/// the key, never `None`.
fn decoded<'a>(op: Operation, key: &str, stored: &'a [u8], now: u64) -> Result<Option<&'a [u8]>> {
    value::decode(stored, now).map_err(|Malformed| malformed(op, key))
}

/// As [`decoded`], with the value's remaining TTL.
fn decoded_with_ttl<'a>(
    op: Operation,
    key: &str,
    stored: &'a [u8],
    now: u64,
) -> Result<Option<value::Live<'a>>> {
    value::decode_with_ttl(stored, now).map_err(|Malformed| malformed(op, key))
}

fn malformed(op: Operation, key: &str) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, op)
        .with_key(key)
        .with_message("the stored value is not in kv's format (written by another program?)")
}

/// One `WriteBatch` of `ops` (a put where an entry is given, else a
/// delete), values in kv's stored format expiring from `now`. Room is
/// reserved up front and every value is encoded through one reused buffer:
/// no allocation per value.
fn write_batch_of<'a>(
    ops: impl Iterator<Item = (&'a Key, Option<&'a Entry>)> + Clone,
    now: u64,
) -> WriteBatch {
    // A record: tag, two varint lengths, the key, the header and value.
    let bytes: usize = ops
        .clone()
        .map(|(key, put)| {
            16 + key.as_str().len() + put.map_or(0, |e| value::HEADER_MAX + e.value.len())
        })
        .sum();
    let mut batch = WriteBatch::with_capacity_bytes(12 + bytes);
    let mut scratch = Vec::new();
    for (key, put) in ops {
        match put {
            Some(entry) => {
                value::encode_into(&mut scratch, &entry.value, entry.ttl, now);
                batch.put(key.as_bytes(), &scratch);
            }
            None => batch.delete(key.as_bytes()),
        }
    }
    batch
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
            let batch = write_batch_of(std::iter::once((&entry.key, Some(&entry))), now_millis());
            inner.write(Operation::Set, batch)
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
            let batch = write_batch_of(entries.iter().map(|e| (&e.key, Some(e))), now_millis());
            inner.write(Operation::BatchSet, batch)
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
            inner.write(Operation::WriteBatch, write_batch_of(changes, now_millis()))
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
                write_batch_of(std::iter::once((&key, entry.as_ref())), now),
            )?;
            Ok(true)
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

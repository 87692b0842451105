//! [`RocksDbStoreBuilder`]: options, opening the database, temporary
//! databases.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kv_core::backend::Validator;
use kv_core::backend::stamp::{self as value, now_millis};
use kv_core::{Operation, Result};
use rocksdb::compaction_filter::Decision;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType,
    DEFAULT_COLUMN_FAMILY_NAME, Options, WriteOptions,
};

use crate::config::{Compression, RocksDbConfig};
use crate::error::{BACKEND, map_rocksdb_error};
use crate::inner::{Inner, STRIPES, join_error};
use crate::store::{RocksDbStore, capabilities};
use crate::versions::Versions;

/// Removes a temporary database's directory when dropped.
pub(crate) struct TemporaryDir(pub(crate) PathBuf);

impl Drop for TemporaryDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds a [`RocksDbStore`].
#[derive(Debug, Clone)]
pub struct RocksDbStoreBuilder {
    pub(crate) config: RocksDbConfig,
    pub(crate) temporary: bool,
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
        let versions = Versions::open(&db, |e| {
            map_rocksdb_error(Operation::Connect, &config.path, e)
        })?;
        let mut write = WriteOptions::default();
        write.set_sync(config.sync_writes);
        Ok(RocksDbStore {
            inner: Arc::new(Inner {
                db,
                path: config.path.clone(),
                write,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                versions,
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

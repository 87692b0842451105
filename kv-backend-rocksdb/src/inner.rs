//! The shared database handle every call runs on the blocking pool with:
//! lock stripes, the stored value format, WriteBatches.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use kv_core::backend::Validator;
use kv_core::backend::stamp::{self as value, Malformed};
use kv_core::{Entry, Error, ErrorKind, Key, Operation, Result};
use rocksdb::{
    ColumnFamily, DB, DBPinnableSlice, DEFAULT_COLUMN_FAMILY_NAME, ReadOptions, WriteBatch,
    WriteOptions,
};

use crate::error::{BACKEND, map_rocksdb_error};
use crate::open::TemporaryDir;
use crate::versions::Versions;

/// How many locks the key space is striped over.
pub(crate) const STRIPES: usize = 64;

pub(crate) struct Inner {
    // Dropped first: the database closes before a temporary directory is
    // removed.
    pub(crate) db: DB,
    pub(crate) path: PathBuf,
    pub(crate) write: WriteOptions,
    pub(crate) stripes: Vec<Mutex<()>>,
    pub(crate) versions: Versions,
    pub(crate) validator: Validator,
    pub(crate) _temporary: Option<TemporaryDir>,
}

impl Inner {
    pub(crate) fn error(&self, op: Operation, err: rocksdb::Error) -> Error {
        map_rocksdb_error(op, &self.path, err)
    }

    /// Locks the stripes of `keys` in ascending order (no deadlocks).
    /// Every write holds the locks of its keys, so a read-then-write
    /// (CAS, counting deletes) sees no other writer in between.
    pub(crate) fn lock<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> Vec<MutexGuard<'_, ()>> {
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
    pub(crate) fn multi_get(
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

    pub(crate) fn default_cf(&self, op: Operation) -> Result<&ColumnFamily> {
        // Opened by name in `open_blocking`, so always present.
        self.db
            .cf_handle(DEFAULT_COLUMN_FAMILY_NAME)
            .ok_or_else(|| {
                Error::new(ErrorKind::Backend, BACKEND, op)
                    .with_message("the default column family is not open")
            })
    }

    /// The live value of `key` now.
    pub(crate) fn live(&self, op: Operation, key: &Key, now: u64) -> Result<Option<Bytes>> {
        match self.stored(op, key)? {
            Some(stored) => {
                decoded(op, key.as_str(), &stored, now).map(|v| v.map(Bytes::copy_from_slice))
            }
            None => Ok(None),
        }
    }

    /// Whether `key` is present and not expired at `now`, without reading
    /// its value as kv's: a value in another format (written through
    /// [`RocksDbStore::db`]) is a present key, as on every backend.
    pub(crate) fn present(&self, op: Operation, key: &Key, now: u64) -> Result<bool> {
        Ok(self
            .stored(op, key)?
            .is_some_and(|stored| !value::expired(&stored, now)))
    }

    /// The stored form of one key, pinned (no copy); `None` when absent.
    fn stored(&self, op: Operation, key: &Key) -> Result<Option<DBPinnableSlice<'_>>> {
        self.db
            .get_pinned(key.as_bytes())
            .map_err(|e| self.error(op, e))
    }

    /// One `WriteBatch` of `ops` (a put where an entry is given, else a
    /// delete), values in kv's stored format expiring from `now`, each put
    /// with a new version. Room is reserved up front and every value is
    /// encoded through one reused buffer: no allocation per value.
    pub(crate) fn batch_of<'a>(
        &self,
        op: Operation,
        ops: impl Iterator<Item = (&'a Key, Option<&'a Entry>)> + Clone,
        now: u64,
    ) -> Result<WriteBatch> {
        // A record: tag, two varint lengths, the key, the header and value.
        let (mut bytes, mut puts) = (0usize, 0u64);
        for (key, put) in ops.clone() {
            bytes += 16 + key.as_str().len() + put.map_or(0, |e| value::HEADER_MAX + e.value.len());
            puts += u64::from(put.is_some());
        }
        let mut version = if puts == 0 {
            0
        } else {
            self.versions.take(puts, &self.db, |e| self.error(op, e))?
        };
        let mut batch = WriteBatch::with_capacity_bytes(12 + bytes);
        let mut scratch = Vec::new();
        for (key, put) in ops {
            match put {
                Some(entry) => {
                    value::encode_versioned_into(
                        &mut scratch,
                        &entry.value,
                        entry.ttl,
                        now,
                        version,
                    );
                    version += 1;
                    batch.put(key.as_bytes(), &scratch);
                }
                None => batch.delete(key.as_bytes()),
            }
        }
        Ok(batch)
    }

    pub(crate) fn write(&self, op: Operation, batch: WriteBatch) -> Result<()> {
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.error(op, e))
    }
}

/// Keys copied for the blocking pool into one string: two allocations
/// however many keys there are, where cloning each `Key` costs one each.
pub(crate) struct KeyList {
    text: String,
    ends: Vec<usize>,
}

impl KeyList {
    pub(crate) fn new<'a>(keys: impl IntoIterator<Item = &'a Key, IntoIter: Clone>) -> Self {
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

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        // Every start and end is where one whole key's text was joined to
        // the next, so a char boundary: `get` never misses.
        starts
            .zip(&self.ends)
            .map(|(start, &end)| self.text.get(start..end).unwrap_or_default())
    }
}

/// FNV-1a over the key: a stable stripe index.
pub(crate) fn stripe(key: &[u8]) -> usize {
    (kv_core::backend::fnv1a(key) % STRIPES as u64) as usize
}

/// Decodes a stored value; a value not in kv's format is an error naming
/// the key, never `None`.
pub(crate) fn decoded<'a>(
    op: Operation,
    key: &str,
    stored: &'a [u8],
    now: u64,
) -> Result<Option<&'a [u8]>> {
    value::decode(stored, now).map_err(|Malformed| malformed(op, key))
}

/// As [`decoded`], with the value's remaining TTL.
pub(crate) fn decoded_with_ttl<'a>(
    op: Operation,
    key: &str,
    stored: &'a [u8],
    now: u64,
) -> Result<Option<value::Live<'a>>> {
    value::decode_with_ttl(stored, now).map_err(|Malformed| malformed(op, key))
}

pub(crate) fn malformed(op: Operation, key: &str) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, op)
        .with_key(key)
        .with_message("the stored value is not in kv's format (written by another program?)")
}

pub(crate) fn join_error(op: Operation, err: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, op)
        .with_message("the blocking RocksDB call did not complete")
        .with_source(err)
}

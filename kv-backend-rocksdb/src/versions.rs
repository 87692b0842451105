//! Versions on RocksDB: every write stores a version with the value (the
//! stamp's versioned forms), taken from a counter that never gives a
//! number twice, across restarts too.
//!
//! The counter hands out numbers from a block whose end is written (with
//! sync) under a key no kv key can be (it starts with NUL, so it is never
//! listed) before any number of the block is used. After a restart or a
//! crash, counting resumes at the last end written: numbers of a block
//! cut short are skipped, never repeated.

use std::sync::{Mutex, PoisonError};

use kv_core::backend::stamp;
use kv_core::{Error, ErrorKind, Operation, Result};
use rocksdb::{DB, WriteOptions};

use crate::error::BACKEND;

/// Where the end of the current block is kept.
pub(crate) const NEXT_VERSION_KEY: &[u8] = b"\0kv\0next-version";

/// How many versions one block holds.
const BLOCK: u64 = 1 << 20;

/// The version counter of one open database.
pub(crate) struct Versions {
    /// The next version to give, and the end of the block written down.
    state: Mutex<(u64, u64)>,
}

impl Versions {
    /// Resumes counting where the last block ended (1 in a new database,
    /// or one whose values carry no versions yet).
    pub(crate) fn open(db: &DB, map: impl Fn(rocksdb::Error) -> Error) -> Result<Self> {
        let next = match db.get(NEXT_VERSION_KEY).map_err(map)? {
            None => 1,
            Some(stored) => stamp::decode(&stored, 0)
                .ok()
                .flatten()
                .and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| {
                    Error::new(ErrorKind::Backend, BACKEND, Operation::Connect)
                        .with_message("the version counter's record is not in kv's format")
                })?,
        };
        Ok(Self {
            state: Mutex::new((next, next)),
        })
    }

    /// Takes `n` consecutive versions; returns the first. Writes the end of
    /// a new block first when the current one has too few left.
    pub(crate) fn take(
        &self,
        n: u64,
        db: &DB,
        map: impl Fn(rocksdb::Error) -> Error,
    ) -> Result<u64> {
        // A panic while holding the lock leaves the numbers as they were:
        // at worst a block's end written and not used.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (next, end) = *state;
        let wanted = next.saturating_add(n);
        if wanted > end {
            let new_end = wanted.saturating_add(BLOCK);
            let mut stored = Vec::new();
            stamp::encode_into(&mut stored, &new_end.to_be_bytes(), None, 0);
            let mut sync = WriteOptions::default();
            sync.set_sync(true);
            db.put_opt(NEXT_VERSION_KEY, stored, &sync).map_err(map)?;
            state.1 = new_end;
        }
        state.0 = wanted;
        Ok(next)
    }
}

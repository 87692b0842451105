//! What a bulk load reports: [`BulkReport`] at the end, [`Progress`] live.

use std::time::Duration;

use crate::error::Error;
use crate::key::Key;

/// The most failed chunks a [`BulkReport`] lists (the first to fail);
/// [`BulkReport::chunks_failed`] counts them all. A load into a store that
/// is down fails every chunk: the report stays small whatever the input.
pub const MAX_REPORTED_FAILED_CHUNKS: usize = 100;

/// The most keys the listed failed chunks hold together; a chunk listed
/// once this many are held keeps only its first keys that fit (none), and
/// [`FailedChunk::ops`] still says how many it had.
/// [`BulkReport::keys_failed`] counts them all.
pub const MAX_REPORTED_FAILED_KEYS: usize = 10_000;

/// A chunk that failed for good (a permanent error, or a temporary one that
/// outlasted its retries): none of its keys were written where the store is
/// atomic ([`Capabilities::atomic_batch`](crate::Capabilities)); some may
/// have been where it is not.
#[derive(Debug)]
pub struct FailedChunk {
    /// The chunk's position in the input, from 0.
    pub index: u64,
    /// Its keys, in input order, cut to what fits under
    /// [`MAX_REPORTED_FAILED_KEYS`] for the whole report.
    pub keys: Vec<Key>,
    /// How many operations the chunk held (an input error: 1).
    pub ops: usize,
    /// The last error.
    pub error: Error,
    /// How many times it was tried.
    pub attempts: u32,
}

/// The outcome of [`BulkWriter::write`](crate::BulkWriter::write).
///
/// A chunk is one native batch; a chunk is all or nothing where the store's
/// batches are atomic, and the load as a whole never is. Check
/// [`is_complete`](Self::is_complete) or turn the report into a `Result`
/// with [`into_result`](Self::into_result): failed chunks are reported
/// here, not raised.
#[derive(Debug, Default)]
#[must_use = "a bulk load reports failed chunks here; check is_complete() or call into_result()"]
pub struct BulkReport {
    /// Chunks written.
    pub chunks_written: u64,
    /// Operations (entries, puts and deletes) in the chunks written.
    pub keys_written: u64,
    /// Key and value bytes in the chunks written.
    pub bytes_written: u64,
    /// The first [`MAX_REPORTED_FAILED_CHUNKS`] chunks that failed, in the
    /// order they failed.
    pub failed: Vec<FailedChunk>,
    /// Every chunk that failed (input errors each count as one).
    pub chunks_failed: u64,
    /// Operations in every failed chunk.
    pub keys_failed: u64,
    /// The smallest input position of a failed chunk: everything before it
    /// was written (where resuming a load should start).
    pub first_failed_index: Option<u64>,
    /// Attempts beyond the first, over all chunks.
    pub retries: u64,
    /// The most chunks that were in flight at once.
    pub max_concurrent: usize,
    /// Whether the load stopped before the end of its input (`fail_fast`
    /// after a failure).
    pub stopped_early: bool,
    /// How long the load took.
    pub elapsed: Duration,
}

impl BulkReport {
    /// A load refused before reading any input.
    pub(crate) fn refused(error: Error) -> Self {
        let mut report = Self {
            stopped_early: true,
            ..Self::default()
        };
        report.record_failure(0, std::iter::empty(), 0, error, 0);
        report
    }

    /// Counts a failed chunk, and lists it while the report has room.
    pub(crate) fn record_failure<'k>(
        &mut self,
        index: u64,
        keys: impl Iterator<Item = &'k Key>,
        ops: usize,
        error: Error,
        attempts: u32,
    ) {
        self.chunks_failed += 1;
        self.keys_failed += ops as u64;
        self.first_failed_index = Some(self.first_failed_index.map_or(index, |i| i.min(index)));
        if self.failed.len() < MAX_REPORTED_FAILED_CHUNKS {
            let held: usize = self.failed.iter().map(|c| c.keys.len()).sum();
            let room = MAX_REPORTED_FAILED_KEYS.saturating_sub(held);
            self.failed.push(FailedChunk {
                index,
                keys: keys.take(room).cloned().collect(),
                ops,
                error,
                attempts,
            });
        }
    }

    /// Whether every chunk was written and the whole input was read.
    pub fn is_complete(&self) -> bool {
        self.chunks_failed == 0 && self.failed.is_empty() && !self.stopped_early
    }

    /// The keys of the listed failed chunks (at most
    /// [`MAX_REPORTED_FAILED_KEYS`]; [`keys_failed`](Self::keys_failed)
    /// counts them all).
    pub fn failed_keys(&self) -> impl Iterator<Item = &Key> {
        self.failed.iter().flat_map(|c| &c.keys)
    }

    /// `Ok(self)` when complete; else the first failed chunk's error.
    ///
    /// # Errors
    ///
    /// The error of the first failed chunk (the rest stay in the report
    /// only when you keep it instead).
    pub fn into_result(mut self) -> Result<Self, Error> {
        if self.failed.is_empty() {
            return Ok(self);
        }
        Err(self.failed.swap_remove(0).error)
    }

    /// Operations per second over the whole load.
    pub fn keys_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.keys_written as f64 / secs
        } else {
            0.0
        }
    }
}

/// A chunk on its way to the store: if the load is dropped now, it may or
/// may not have landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInFlight {
    /// The chunk's position in the input, from 0.
    pub index: u64,
    /// Its first key in input order.
    pub first_key: Key,
    /// How many operations it holds.
    pub keys: usize,
}

/// The live state of a load, published on the channel of
/// [`BulkWriter::progress`](crate::BulkWriter::progress) each time a chunk
/// starts or ends: for progress bars, and after a dropped load, to know
/// what may have landed (`chunks_in_flight`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Chunks written.
    pub chunks_done: u64,
    /// Operations written.
    pub keys_done: u64,
    /// Bytes written.
    pub bytes_done: u64,
    /// Chunks that failed for good.
    pub chunks_failed: u64,
    /// Operations in the failed chunks.
    pub keys_failed: u64,
    /// Retries so far.
    pub retries: u64,
    /// The chunks on their way now.
    pub chunks_in_flight: Vec<ChunkInFlight>,
    /// Free slots for more chunks (`concurrency - in flight`).
    pub available_permits: usize,
    /// Time since the load started.
    pub elapsed: Duration,
    /// Whether the load has ended (completed or stopped).
    pub finished: bool,
}

impl Progress {
    /// Operations written per second so far.
    pub fn keys_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.keys_done as f64 / secs
        } else {
            0.0
        }
    }
}

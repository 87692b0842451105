//! [`BulkWriter`]: loading any number of entries through native batches,
//! several at once, in bounded memory.

mod copy;
mod report;

use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use copy::{
    CopyOptions, CopyReport, DEFAULT_TTL_TOLERANCE, MAX_REPORTED_MISMATCHES, VerifyReport, copy,
};
pub use report::{
    BulkReport, ChunkInFlight, FailedChunk, MAX_REPORTED_FAILED_CHUNKS, MAX_REPORTED_FAILED_KEYS,
    Progress,
};

use crate::backoff;
use crate::batch::{Entry, WriteOp};
use crate::error::Result;
use crate::key::Key;
use crate::store::KvStore;

/// The chunk size when the store has no batch limit, and the most a chunk
/// holds by default.
pub const DEFAULT_CHUNK_SIZE: usize = 1000;

/// Chunks in flight at once by default, for every backend: measured by the
/// `bulk` bench's sweep (1 to 16 in flight, 100,000 entries, 2 cores), no
/// level past 2 won consistently on Redis, PostgreSQL, etcd or MemoryStore,
/// and 4 was within 76-100% of each one's best.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What a [`BulkWriter`] loads: [`Entry`] (each chunk one
/// [`batch_set`](KvStore::batch_set)) or [`WriteOp`] (each chunk one
/// [`write_batch`](KvStore::write_batch)). Sealed.
pub trait BulkItem: Clone + Send + Sync + 'static + sealed::Sealed {
    /// The key the item writes.
    fn key(&self) -> &Key;
    /// Key and value bytes, for the report.
    fn bytes(&self) -> usize;
    /// Writes one chunk as one native batch, lent to the store: a retry
    /// sends the same chunk again without copying it.
    #[doc(hidden)]
    fn apply<'a>(store: &'a dyn KvStore, chunk: &'a [Self]) -> BoxFuture<'a, Result<()>>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::batch::Entry {}
    impl Sealed for crate::batch::WriteOp {}
    impl Sealed for super::copy::ReadEntry {}
}

impl BulkItem for Entry {
    fn key(&self) -> &Key {
        &self.key
    }

    fn bytes(&self) -> usize {
        self.key.as_str().len() + self.value.len()
    }

    fn apply<'a>(store: &'a dyn KvStore, chunk: &'a [Self]) -> BoxFuture<'a, Result<()>> {
        store.batch_set_borrowed(chunk)
    }
}

impl BulkItem for WriteOp {
    fn key(&self) -> &Key {
        WriteOp::key(self)
    }

    fn bytes(&self) -> usize {
        match self {
            WriteOp::Put(entry) => entry.bytes(),
            WriteOp::Delete(key) => key.as_str().len(),
        }
    }

    fn apply<'a>(store: &'a dyn KvStore, chunk: &'a [Self]) -> BoxFuture<'a, Result<()>> {
        store.write_batch_borrowed(chunk)
    }
}

/// Loads a stream of entries or write operations of any length into a
/// store: cuts it into chunks, writes each chunk as **one native batch**
/// (`batch_set` or `write_batch`), up to `concurrency` chunks at once, and
/// retries a chunk whose error is temporary.
///
/// - **Bounded memory**: input is read only when a slot is free, so at most
///   about `(concurrency + 1) x chunk_size` items are held, whatever the
///   input's length.
/// - **Atomic per chunk, never across chunks**: where the store's batches
///   are atomic ([`Capabilities::atomic_batch`](crate::Capabilities)), a
///   chunk lands whole or not at all; the load as a whole is not atomic. A
///   failed chunk is reported with its keys and the others go on (unless
///   [`fail_fast`](Self::fail_fast)).
/// - **Input order per key**: a chunk that touches a key of a chunk still
///   in flight waits for it, so the last write to a key in the input wins,
///   as in one batch.
/// - **Retries**: an error with [`is_temporary`](crate::Error::is_temporary) is
///   retried with exponential backoff and full jitter, at most
///   [`retries`](Self::retries) times; other errors are final at once.
/// - **Cancellation**: dropping the future of [`write`](Self::write) stops
///   reading input and aborts the chunks in flight; the last
///   [`Progress`] lists them (`chunks_in_flight`): those may or may not have
///   landed, every chunk counted in `chunks_done` has.
///
/// Chunks run as tasks on the current Tokio runtime.
///
/// ```
/// use kv_core::{BulkWriter, Entry, Key, KvStore, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_core::Result<()> {
/// let store = MemoryStore::new().into_dyn();
/// let entries = (0..10_000).map(|i| Entry::new(Key::new(format!("k{i:05}")).unwrap(), "v"));
/// let writer = BulkWriter::new(store.clone()).chunk_size(500).concurrency(4);
/// let report = writer.write_iter(entries).await.into_result()?;
/// assert_eq!((report.chunks_written, report.keys_written), (20, 10_000));
/// assert!(store.exists(&Key::new("k09999")?).await?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BulkWriter {
    store: Arc<dyn KvStore>,
    chunk_size: usize,
    concurrency: usize,
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    fail_fast: bool,
    progress: Arc<watch::Sender<Progress>>,
}

impl BulkWriter {
    /// A writer into `store`: chunks of the store's `max_batch_ops` (at
    /// most [`DEFAULT_CHUNK_SIZE`]), [`DEFAULT_CONCURRENCY`] in flight, 5
    /// retries from 50 ms up to 5 s.
    pub fn new(store: Arc<dyn KvStore>) -> Self {
        let chunk_size = store
            .capabilities()
            .max_batch_ops
            .unwrap_or(DEFAULT_CHUNK_SIZE)
            .clamp(1, DEFAULT_CHUNK_SIZE);
        Self {
            store,
            chunk_size,
            concurrency: DEFAULT_CONCURRENCY,
            retries: 5,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            fail_fast: false,
            progress: Arc::new(watch::channel(Progress::default()).0),
        }
    }

    /// Operations per chunk (per native batch), at least 1 and at most the
    /// store's `max_batch_ops`: a larger size is lowered to it, since a
    /// chunk over the limit could never be written (etcd takes 128
    /// operations per Txn by default). [`chunk_len`](Self::chunk_len) says
    /// the size in use.
    pub fn chunk_size(mut self, size: usize) -> Self {
        let limit = self
            .store
            .capabilities()
            .max_batch_ops
            .unwrap_or(usize::MAX);
        self.chunk_size = size.clamp(1, limit.max(1));
        self
    }

    /// The store this writer writes into.
    pub(crate) fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// The operations per chunk this writer sends.
    pub fn chunk_len(&self) -> usize {
        self.chunk_size
    }

    /// Chunks in flight at once, at least 1.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Retries of a chunk after a temporary error (0: none).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The first retry's backoff ceiling and the largest one; each retry
    /// doubles the ceiling and sleeps a random time below it.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// Stop reading input after the first chunk that fails for good (the
    /// chunks in flight finish); the report says `stopped_early`.
    pub fn fail_fast(mut self, on: bool) -> Self {
        self.fail_fast = on;
        self
    }

    /// A receiver of the live [`Progress`] of this writer's loads (clones
    /// share it).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Loads `items` from an iterator. See [`write`](Self::write).
    pub async fn write_iter<T: BulkItem>(&self, items: impl IntoIterator<Item = T>) -> BulkReport {
        self.write(futures::stream::iter(items)).await
    }

    /// Loads `items`: entries through `batch_set`, write operations through
    /// `write_batch`, one native batch per chunk.
    pub async fn write<T: BulkItem>(&self, items: impl Stream<Item = T>) -> BulkReport {
        self.write_results(items.map(Ok)).await
    }

    /// Like [`write`](Self::write), for input that can fail item by item
    /// (a line that does not parse, a value that does not encode): each
    /// `Err` is skipped and reported in a [`FailedChunk`] of its own, with
    /// the error's key if it has one.
    pub async fn write_results<T: BulkItem>(
        &self,
        items: impl Stream<Item = Result<T>>,
    ) -> BulkReport {
        let started = Instant::now();
        let mut load = Load {
            writer: self,
            started,
            report: BulkReport::default(),
            in_flight: HashMap::new(),
        };
        let mut chunks = pin!(items.chunks(self.chunk_size));
        let mut tasks: JoinSet<Outcome<T>> = JoinSet::new();
        let mut next_index = 0u64;
        let mut waiting: Option<(u64, Vec<T>)> = None;
        let mut exhausted = false;
        let mut stop = false;
        self.progress.send_replace(Progress {
            available_permits: self.concurrency,
            ..Progress::default()
        });
        loop {
            while !stop && tasks.len() < self.concurrency {
                let (index, chunk) = match waiting.take() {
                    Some(chunk) => chunk,
                    None => match chunks.next().await {
                        None => {
                            exhausted = true;
                            break;
                        }
                        Some(results) => {
                            let index = next_index;
                            next_index += 1;
                            (index, load.accept(index, results))
                        }
                    },
                };
                if chunk.is_empty() {
                    continue;
                }
                if load.conflicts(&chunk) {
                    waiting = Some((index, chunk));
                    break;
                }
                load.start(&mut tasks, index, chunk);
                load.report.max_concurrent = load.report.max_concurrent.max(tasks.len());
                load.publish(tasks.len(), false);
            }
            match tasks.join_next().await {
                Some(joined) => {
                    let failed = load.finish(joined);
                    stop |= failed && self.fail_fast;
                    load.publish(tasks.len(), false);
                }
                None if stop || (exhausted && waiting.is_none()) => break,
                None => {}
            }
        }
        load.report.stopped_early = stop && !(exhausted && waiting.is_none());
        load.report.elapsed = started.elapsed();
        load.publish(0, true);
        load.report
    }
}

/// One load's bookkeeping.
struct Load<'w> {
    writer: &'w BulkWriter,
    started: Instant,
    report: BulkReport,
    /// The chunks in flight: what progress shows, and their keys.
    in_flight: HashMap<u64, (ChunkInFlight, HashSet<Key>)>,
}

/// What a chunk's task returns.
struct Outcome<T> {
    index: u64,
    chunk: Vec<T>,
    attempts: u32,
    result: Result<()>,
}

impl Load<'_> {
    /// Keeps the items of a chunk read from the input; an input error is
    /// a failed chunk of its own.
    fn accept<T: BulkItem>(&mut self, index: u64, results: Vec<Result<T>>) -> Vec<T> {
        let mut chunk = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(item) => chunk.push(item),
                Err(error) => {
                    let key = error.key().and_then(|k| Key::new(k).ok());
                    self.report.record_failure(index, key.iter(), 1, error, 0);
                }
            }
        }
        chunk
    }

    fn conflicts<T: BulkItem>(&self, chunk: &[T]) -> bool {
        !self.in_flight.is_empty()
            && chunk.iter().any(|item| {
                self.in_flight
                    .values()
                    .any(|(_, keys)| keys.contains(item.key()))
            })
    }

    fn start<T: BulkItem>(&mut self, tasks: &mut JoinSet<Outcome<T>>, index: u64, chunk: Vec<T>) {
        let keys: HashSet<Key> = chunk.iter().map(|i| i.key().clone()).collect();
        let shown = ChunkInFlight {
            index,
            first_key: chunk[0].key().clone(),
            keys: chunk.len(),
        };
        self.in_flight.insert(index, (shown, keys));
        let w = self.writer;
        let (store, retries, backoff, max_backoff) =
            (w.store.clone(), w.retries, w.backoff, w.max_backoff);
        tasks.spawn(async move {
            let mut attempts = 0;
            loop {
                attempts += 1;
                let result = T::apply(&*store, &chunk).await;
                match result {
                    Err(e) if e.is_temporary() && attempts <= retries => {
                        let pause = backoff::delay(backoff, max_backoff, attempts);
                        tokio::time::sleep(pause).await;
                    }
                    result => {
                        return Outcome {
                            index,
                            chunk,
                            attempts,
                            result,
                        };
                    }
                }
            }
        });
    }

    /// Records a finished chunk; returns whether it failed.
    fn finish<T: BulkItem>(
        &mut self,
        joined: std::result::Result<Outcome<T>, tokio::task::JoinError>,
    ) -> bool {
        let outcome = match joined {
            Ok(outcome) => outcome,
            // The task panicked (a store's bug): carry the panic on.
            Err(join) => match join.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled: only when the JoinSet is dropped, not here.
                Err(_) => return false,
            },
        };
        self.in_flight.remove(&outcome.index);
        self.report.retries += u64::from(outcome.attempts.saturating_sub(1));
        match outcome.result {
            Ok(()) => {
                self.report.chunks_written += 1;
                self.report.keys_written += outcome.chunk.len() as u64;
                self.report.bytes_written +=
                    outcome.chunk.iter().map(|i| i.bytes() as u64).sum::<u64>();
                false
            }
            Err(error) => {
                self.report.record_failure(
                    outcome.index,
                    outcome.chunk.iter().map(BulkItem::key),
                    outcome.chunk.len(),
                    error,
                    outcome.attempts,
                );
                true
            }
        }
    }

    fn publish(&self, running: usize, finished: bool) {
        let mut chunks_in_flight: Vec<ChunkInFlight> =
            self.in_flight.values().map(|(c, _)| c.clone()).collect();
        chunks_in_flight.sort_by_key(|c| c.index);
        let report = &self.report;
        self.writer.progress.send_replace(Progress {
            chunks_done: report.chunks_written,
            keys_done: report.keys_written,
            bytes_done: report.bytes_written,
            chunks_failed: report.chunks_failed,
            keys_failed: report.keys_failed,
            retries: report.retries,
            chunks_in_flight,
            available_permits: self.writer.concurrency.saturating_sub(running),
            elapsed: self.started.elapsed(),
            finished,
        });
    }
}

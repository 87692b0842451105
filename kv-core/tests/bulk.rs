//! The BulkWriter's own rules over MemoryStore wrapped in a store that fails
//! or stalls on purpose: temporary errors are retried and the load
//! completes, exhausted retries are reported, memory stays bounded, and a
//! dropped load says which chunks may have landed. (The conformance suite's
//! `bulk` cases run it against every backend.)

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::{
    BulkWriter, Capabilities, Entry, Error, ErrorKind, Health, Key, KvStore, ListOptions,
    MemoryStore, Operation, Page, Result, SetOptions, WriteOp,
};

/// MemoryStore whose `batch_set` fails with a temporary error while
/// `failures` lasts, and takes `delay` before writing.
#[derive(Debug)]
struct Faulty {
    inner: MemoryStore,
    failures: AtomicU32,
    delay: Duration,
    /// Keys written so far by `batch_set`.
    written: AtomicUsize,
}

impl Faulty {
    fn new(failures: u32, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            failures: AtomicU32::new(failures),
            delay,
            written: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl KvStore for Faulty {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        self.inner.set(key, value, options).await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &Key) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.inner.list(prefix, options).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.inner.batch_get(keys).await
    }
    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        tokio::time::sleep(self.delay).await;
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(Error::new(
                ErrorKind::Unavailable,
                "faulty",
                Operation::BatchSet,
            ));
        }
        let n = entries.len();
        self.inner.batch_set(entries).await?;
        self.written.fetch_add(n, Ordering::SeqCst);
        Ok(())
    }
    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        self.inner.batch_delete(keys).await
    }
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        self.inner.write_batch(ops).await
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        self.inner
            .compare_and_swap(key, expected, new, options)
            .await
    }
    async fn health(&self) -> Result<Health> {
        self.inner.health().await
    }
}

fn entry(i: usize) -> Entry {
    Entry::new(Key::new(format!("k{i:05}")).unwrap(), i.to_string())
}

#[tokio::test]
async fn temporary_failures_are_retried_and_the_load_completes() {
    let store = Faulty::new(3, Duration::ZERO);
    let report = BulkWriter::new(store.clone())
        .chunk_size(10)
        .concurrency(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(4))
        .write_iter((0..100).map(entry))
        .await;
    assert!(report.is_complete(), "{:?}", report.failed);
    assert_eq!(report.retries, 3);
    assert_eq!((report.chunks_written, report.keys_written), (10, 100));
    assert_eq!(
        store
            .list("k", ListOptions::default())
            .await
            .unwrap()
            .keys
            .len(),
        100
    );
}

#[tokio::test]
async fn a_chunk_out_of_retries_is_reported_with_its_keys_and_error() {
    let store = Faulty::new(u32::MAX, Duration::ZERO);
    let report = BulkWriter::new(store.clone())
        .chunk_size(10)
        .retries(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .write_iter((0..20).map(entry))
        .await;
    assert_eq!(report.failed.len(), 2);
    for failed in &report.failed {
        assert_eq!(failed.attempts, 3);
        assert_eq!(failed.keys.len(), 10);
        assert_eq!(failed.error.kind(), ErrorKind::Unavailable);
    }
    assert_eq!(report.retries, 4);
    let err = report.into_result().unwrap_err();
    assert!(err.is_temporary());
}

#[tokio::test]
async fn memory_stays_bounded_by_concurrency_and_chunk_size() {
    let store = Faulty::new(0, Duration::from_millis(2));
    let pulled = Arc::new(AtomicUsize::new(0));
    let most_ahead = Arc::new(AtomicUsize::new(0));
    let (p, m, s) = (pulled.clone(), most_ahead.clone(), store.clone());
    let input = (0..5_000).map(move |i| {
        let ahead = p.fetch_add(1, Ordering::SeqCst) + 1 - s.written.load(Ordering::SeqCst);
        m.fetch_max(ahead, Ordering::SeqCst);
        entry(i)
    });
    let (chunk, concurrency) = (50, 3);
    let report = BulkWriter::new(store.clone())
        .chunk_size(chunk)
        .concurrency(concurrency)
        .write_iter(input)
        .await;
    assert!(report.is_complete());
    let most = most_ahead.load(Ordering::SeqCst);
    assert!(
        most <= (concurrency + 1) * chunk,
        "{most} items were read ahead of the writes"
    );
    assert_eq!(pulled.load(Ordering::SeqCst), 5_000);
}

#[tokio::test]
async fn a_dropped_load_lists_the_chunks_that_may_have_landed() {
    let store = Faulty::new(0, Duration::from_millis(40));
    let writer = BulkWriter::new(store.clone()).chunk_size(10).concurrency(2);
    let progress = writer.progress();
    let load = writer.write_iter((0..1_000).map(entry));
    assert!(
        tokio::time::timeout(Duration::from_millis(150), load)
            .await
            .is_err()
    );
    // Give aborted tasks a moment: they must not write after the drop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let last = progress.borrow().clone();
    assert!(!last.finished);
    assert!(last.chunks_done >= 2, "{last:?}");
    assert!(!last.chunks_in_flight.is_empty(), "{last:?}");
    let landed = store
        .list("k", ListOptions::default().limit(1000))
        .await
        .unwrap()
        .keys;
    // Every chunk counted done landed; only the listed in-flight chunks may
    // have; nothing after them was started.
    assert_eq!(landed.len() as u64, last.keys_done);
    let last_started = last.chunks_in_flight.iter().map(|c| c.index).max().unwrap();
    let never = Key::new(format!("k{:05}", (last_started + 1) * 10)).unwrap();
    assert!(!store.exists(&never).await.unwrap());
}

#[tokio::test]
async fn typed_bulk_set_reports_bad_items_and_loads_the_rest() {
    let kv = kv_core::Kv::new(MemoryStore::new().into_dyn());
    let items = (0..300).map(|i| {
        let key = if i == 7 {
            String::new()
        } else {
            format!("n{i:03}")
        };
        (key, i)
    });
    let report = kv.bulk_set(items).await;
    assert_eq!(report.keys_written, 299);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].error.kind(), ErrorKind::InvalidKey);
    assert_eq!(kv.get::<i32>("n299").await.unwrap(), Some(299));
}

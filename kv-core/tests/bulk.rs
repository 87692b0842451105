//! The BulkWriter's own rules over MemoryStore wrapped in a store that fails
//! or stalls on purpose: temporary errors are retried and the load
//! completes, exhausted retries are reported, memory stays bounded, and a
//! dropped load says which chunks may have landed. (The conformance suite's
//! `bulk` cases run it against every backend.)

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use kv_core::{
    BulkWriter, Capabilities, CopyOptions, Entry, Error, ErrorKind, ExportOptions, Health, Key,
    KvStore, KvStoreExt, ListOptions, MemoryStore, Operation, Page, Result, SetOptions, WriteOp,
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
    /// `batch_set` calls that succeed before the failures begin.
    succeed_first: AtomicU32,
    /// A key `list` deletes right after listing it (a writer racing an
    /// export).
    delete_on_list: Mutex<Option<Key>>,
    /// A key `batch_set` overwrites with `corrupt` after writing.
    corrupt_after_write: Mutex<Option<Key>>,
}

impl Faulty {
    fn new(failures: u32, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            failures: AtomicU32::new(failures),
            delay,
            written: AtomicUsize::new(0),
            succeed_first: AtomicU32::new(0),
            delete_on_list: Mutex::new(None),
            corrupt_after_write: Mutex::new(None),
        })
    }

    /// Fails `failures` calls of `batch_set` after `ok` calls succeeded.
    fn after(ok: u32, failures: u32) -> Arc<Self> {
        let faulty = Self::new(failures, Duration::ZERO);
        faulty.succeed_first.store(ok, Ordering::SeqCst);
        faulty
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
        let page = self.inner.list(prefix, options).await?;
        let doomed = self.delete_on_list.lock().unwrap().take();
        if let Some(key) = doomed {
            self.inner.delete(&key).await?;
        }
        Ok(page)
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.inner.batch_get(keys).await
    }
    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        self.inner.batch_get_with_ttl(keys).await
    }
    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        tokio::time::sleep(self.delay).await;
        let ok = self.succeed_first.load(Ordering::SeqCst);
        let left = self.failures.load(Ordering::SeqCst);
        if ok > 0 {
            self.succeed_first.store(ok - 1, Ordering::SeqCst);
        } else if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(Error::new(
                ErrorKind::Unavailable,
                "faulty",
                Operation::BatchSet,
            ));
        }
        let n = entries.len();
        self.inner.batch_set(entries).await?;
        let corrupt = self.corrupt_after_write.lock().unwrap().take();
        if let Some(key) = corrupt {
            self.inner
                .set(&key, "corrupt".into(), SetOptions::default())
                .await?;
        }
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

#[tokio::test(start_paused = true)]
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

#[tokio::test(start_paused = true)]
async fn a_chunk_size_over_the_store_limit_is_lowered_to_it_and_the_load_completes() {
    let store = Arc::new(MemoryStore::builder().max_batch_ops(Some(16)).build());
    let writer = BulkWriter::new(store.clone()).chunk_size(500);
    assert_eq!(writer.chunk_len(), 16);
    let report = writer.write_iter((0..100).map(entry)).await;
    assert!(report.is_complete(), "{:?}", report.failed);
    assert_eq!((report.chunks_written, report.keys_written), (7, 100));
    assert_eq!(BulkWriter::new(store).chunk_size(0).chunk_len(), 1);
}

#[tokio::test(start_paused = true)]
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

/// A store that fails every chunk (down, or refusing the user): the report
/// counts every failed chunk and key but lists at most 100 chunks and
/// 10,000 keys, so a load of any size stays in bounded memory; progress
/// carries the same counts.
#[tokio::test(start_paused = true)]
async fn a_store_failing_every_chunk_keeps_the_report_bounded() {
    let store = Faulty::new(u32::MAX, Duration::ZERO);
    let writer = BulkWriter::new(store.clone()).chunk_size(50).retries(0);
    let n = 200_000u64;
    let report = writer.write_iter((0..n as usize).map(entry)).await;
    assert_eq!(report.chunks_failed, n / 50);
    assert_eq!(report.keys_failed, n);
    assert_eq!(report.failed.len(), kv_core::MAX_REPORTED_FAILED_CHUNKS);
    assert_eq!(report.failed_keys().count(), 100 * 50);
    assert!(report.failed.iter().all(|c| c.ops == 50));
    assert_eq!(report.first_failed_index, Some(0));
    assert_eq!(report.keys_written, 0);
    assert!(!report.is_complete());
    let progress = writer.progress().borrow().clone();
    assert_eq!((progress.chunks_failed, progress.keys_failed), (n / 50, n));

    // Large chunks: the keys listed stop at 10,000 in all.
    let report = BulkWriter::new(store)
        .chunk_size(3_000)
        .retries(0)
        .write_iter((0..30_000).map(entry))
        .await;
    assert_eq!((report.chunks_failed, report.keys_failed), (10, 30_000));
    assert_eq!(report.failed.len(), 10);
    assert_eq!(
        report.failed_keys().count(),
        kv_core::MAX_REPORTED_FAILED_KEYS
    );
    assert!(report.failed.iter().all(|c| c.ops == 3_000));
}

#[tokio::test(start_paused = true)]
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

#[tokio::test(start_paused = true)]
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

#[tokio::test(start_paused = true)]
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

/// A copy whose fourth chunk fails says to resume after the third chunk's
/// last key; copying again from there completes it.
#[tokio::test(start_paused = true)]
async fn a_failed_copy_resumes_after_the_last_chunk_before_the_failure() {
    let src = MemoryStore::new();
    src.batch_set((0..1000).map(entry).collect()).await.unwrap();
    let dst = Faulty::after(3, 1);
    let writer = BulkWriter::new(dst.clone())
        .chunk_size(100)
        .concurrency(1)
        .retries(0);
    let first = writer
        .copy_from(&src, "", CopyOptions::default().verify(true))
        .await;
    assert!(!first.is_complete());
    assert_eq!(first.keys_read, 1000);
    assert_eq!(first.load.failed.len(), 1);
    assert_eq!(first.load.failed[0].index, 3);
    assert_eq!(first.resume_after, Some(entry(299).key));
    assert!(first.verify.is_none(), "an incomplete copy is not verified");
    assert_eq!(
        first.into_result().unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    let options = CopyOptions::default()
        .start_after(entry(299).key)
        .verify(true);
    let second = writer.copy_from(&src, "", options).await;
    assert_eq!(second.keys_read, 700);
    assert_eq!(second.resume_after, None);
    let second = second.into_result().unwrap();
    assert_eq!(second.verify.as_ref().map(|v| v.checked), Some(700));
    let all: Vec<Entry> = dst.inner.export("").try_collect().await.unwrap();
    assert_eq!(all, (0..1000).map(entry).collect::<Vec<_>>());
}

/// Verification names a key whose copy differs and counts it.
#[tokio::test(start_paused = true)]
async fn verification_reports_a_changed_copy() {
    let src = MemoryStore::new();
    src.batch_set((0..50).map(entry).collect()).await.unwrap();
    let dst = MemoryStore::new().into_dyn();
    // Already there with another value and a TTL: the copy overwrites it.
    dst.set(
        &entry(7).key,
        "old".into(),
        SetOptions::ttl(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    let report = kv_core::copy(&src, dst.clone(), "", CopyOptions::default().verify(true))
        .await
        .into_result()
        .unwrap();
    assert_eq!(report.verify.as_ref().map(|v| v.mismatched), Some(0));
    let copied = dst.batch_get_with_ttl(&[entry(7).key]).await.unwrap();
    assert_eq!(
        copied,
        vec![Some(entry(7))],
        "value and no TTL, as the source"
    );

    // A destination changed behind the copy's back fails verification.
    let changed = Faulty::new(0, Duration::ZERO);
    *changed.corrupt_after_write.lock().unwrap() = Some(entry(9).key);
    let check = BulkWriter::new(changed.clone())
        .copy_from(&src, "", CopyOptions::default().verify(true))
        .await;
    assert!(check.load.is_complete() && !check.is_complete());
    let verify = check.verify.as_ref().unwrap();
    assert_eq!((verify.checked, verify.mismatched), (50, 1));
    assert_eq!(verify.mismatched_keys, [entry(9).key]);
    assert_eq!(check.into_result().unwrap_err().kind(), ErrorKind::Backend);
}

/// A copied TTL is what is left when its chunk is written, not when the
/// source was read: here one page of 40 entries is read at once and
/// written in 4 chunks of 10, one at a time, each write taking 300 ms, so
/// the last chunk leaves 900 ms after its entries were read. Copied as
/// read, its keys would expire 1.2 s after the originals (more than this
/// test's 500 ms tolerance); with the time in transit taken off, only the
/// write's own 300 ms remains (a relative TTL starts when the store gets
/// it).
#[tokio::test]
async fn a_copy_takes_the_time_in_transit_off_each_ttl() {
    let src = MemoryStore::new();
    src.batch_set(
        (0..40)
            .map(|i| entry(i).with_ttl(Duration::from_secs(600)))
            .collect(),
    )
    .await
    .unwrap();
    let dst = Faulty::new(0, Duration::from_millis(300));
    let mut options = CopyOptions::default().page_size(40).verify(true);
    options.ttl_tolerance = Duration::from_millis(500);
    let report = BulkWriter::new(dst.clone())
        .chunk_size(10)
        .concurrency(1)
        .copy_from(&src, "", options)
        .await;
    assert_eq!(report.load.chunks_written, 4);
    let verify = report.verify.as_ref().unwrap();
    assert_eq!((verify.checked, verify.mismatched), (40, 0), "{verify:?}");
    assert!(report.is_complete());
}

/// A key deleted between an export's list and its read is skipped; every
/// other key is yielded once.
#[tokio::test(start_paused = true)]
async fn export_skips_a_key_deleted_between_list_and_read() {
    let store = Faulty::new(0, Duration::ZERO);
    store
        .inner
        .batch_set((0..100).map(entry).collect())
        .await
        .unwrap();
    *store.delete_on_list.lock().unwrap() = Some(entry(5).key);
    let got: Vec<Entry> = store
        .export_with("", ExportOptions::default().page_size(10))
        .try_collect()
        .await
        .unwrap();
    let want: Vec<Entry> = (0..100).filter(|&i| i != 5).map(entry).collect();
    assert_eq!(got, want);
}

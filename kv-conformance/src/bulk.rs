//! The [`BulkWriter`] over the store: many chunks of native batches land
//! exactly, a bad chunk fails alone, input order per key holds across
//! concurrent chunks.

use std::sync::Arc;
use std::time::Duration;

use kv_core::{BulkWriter, Entry, ErrorKind, KvStore, WriteOp};

use crate::support::{Space, b, large, live_keys};

/// 50,000 entries (at full size: see [`scale_large_cases`](crate::scale_large_cases))
/// in chunks of the store's batch size, 4 at once: every one lands with its
/// value, the report and the final progress count them all, and
/// memory-bounded reading finishes the input.
pub async fn bulk_load_of_many_entries_lands_exactly(store: Arc<dyn KvStore>) {
    let n = large(50_000);
    let s = Space::new("bulk-50k");
    let writer = BulkWriter::new(store.clone()).concurrency(4);
    let progress = writer.progress();
    let entries = (0..n).map(|i| Entry::new(s.key(&format!("{i:05}")), b(&i.to_string())));
    let report = writer.write_iter(entries).await;
    eprintln!(
        "bulk load: {} keys in {} chunks in {:?} ({:.0} keys/s), {} retries",
        report.keys_written,
        report.chunks_written,
        report.elapsed,
        report.keys_per_sec(),
        report.retries
    );
    assert!(report.is_complete(), "{:?}", report.failed.first());
    assert_eq!(report.keys_written, n as u64);
    let chunk = store
        .capabilities()
        .max_batch_ops
        .unwrap_or(kv_core::DEFAULT_CHUNK_SIZE)
        .min(kv_core::DEFAULT_CHUNK_SIZE);
    assert_eq!(report.chunks_written, (n as u64).div_ceil(chunk as u64));
    assert!(report.max_concurrent >= 1 && report.max_concurrent <= 4);
    let last = progress.borrow().clone();
    let chunk = chunk.max(1);
    assert!(last.finished && last.chunks_in_flight.is_empty());
    assert_eq!(last.keys_done, n as u64);

    // Values read back (the first chunk whole, and a sample), then every
    // key deleted and counted once: each landed exactly once. Point reads
    // and deletes only, so the check costs the same on servers whose range
    // scans are slow.
    let keys: Vec<_> = (0..n).map(|i| s.key(&format!("{i:05}"))).collect();
    let first = chunk.min(n);
    let got = store.batch_get(&keys[..first]).await.unwrap();
    for (i, value) in got.into_iter().enumerate() {
        assert_eq!(value, Some(b(&i.to_string())), "{:?}", keys[i]);
    }
    let sample = [n / 4, n / 2 + 1, n - 1];
    let probe: Vec<_> = sample.iter().map(|i| keys[*i].clone()).collect();
    let got = store.batch_get(&probe).await.unwrap();
    let want: Vec<_> = sample.iter().map(|i| Some(b(&i.to_string()))).collect();
    assert_eq!(got, want);
    let mut deleted = 0;
    for part in keys.chunks(chunk) {
        deleted += store.batch_delete(part).await.unwrap();
    }
    assert_eq!(deleted, n as u64);
    s.cleanup(&*store).await;
}

/// One chunk holding an invalid entry (a zero TTL) fails alone, reported
/// with its keys and the error's kind; its keys are absent (validation
/// comes before any write) and every other chunk lands.
pub async fn bulk_chunk_with_an_invalid_entry_fails_alone(store: Arc<dyn KvStore>) {
    let s = Space::new("bulk-bad");
    let chunk = store.capabilities().max_batch_ops.unwrap_or(100).min(100);
    let total = chunk * 10;
    let bad = chunk * 3 + chunk / 2;
    let entries: Vec<Entry> = (0..total)
        .map(|i| {
            let entry = Entry::new(s.key(&format!("{i:05}")), b("v"));
            if i == bad {
                entry.with_ttl(Duration::ZERO)
            } else {
                entry
            }
        })
        .collect();
    let report = BulkWriter::new(store.clone())
        .chunk_size(chunk)
        .concurrency(3)
        .write_iter(entries)
        .await;
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let failed = &report.failed[0];
    assert_eq!(failed.index, 3);
    assert_eq!(failed.keys.len(), chunk);
    assert_eq!(failed.keys[0], s.key(&format!("{:05}", chunk * 3)));
    assert_eq!(failed.attempts, 1, "a permanent error is not retried");
    let kind = failed.error.kind();
    assert!(
        kind == ErrorKind::InvalidArgument || kind == ErrorKind::Unsupported,
        "{}",
        failed.error
    );
    assert!(!report.is_complete() && !report.stopped_early);
    assert_eq!(report.keys_written as usize, total - chunk);
    let listed = live_keys(&*store, s.prefix(), 1000).await;
    assert_eq!(listed.len(), total - chunk);
    assert!(listed.iter().all(|k| !failed.keys.contains(k)));
    s.cleanup(&*store).await;
}

/// Write operations on the same keys in many small chunks, 8 at once: the
/// store ends as if they were applied one by one in input order (a chunk
/// waits for an earlier one in flight that touches its keys).
pub async fn bulk_write_ops_keep_input_order_per_key(store: Arc<dyn KvStore>) {
    let s = Space::new("bulk-order");
    let keys = s.keys(&["a", "b", "c", "d"]);
    let mut ops = Vec::new();
    let mut expected = vec![None; keys.len()];
    for round in 0..50 {
        for (i, key) in keys.iter().enumerate() {
            if (round + i) % 3 == 0 {
                ops.push(WriteOp::Delete(key.clone()));
                expected[i] = None;
            } else {
                let value = format!("{round}");
                ops.push(WriteOp::Put(Entry::new(key.clone(), b(&value))));
                expected[i] = Some(b(&value));
            }
        }
    }
    let report = BulkWriter::new(store.clone())
        .chunk_size(3)
        .concurrency(8)
        .write_iter(ops)
        .await;
    assert!(report.is_complete(), "{:?}", report.failed.first());
    assert_eq!(report.keys_written, 200);
    assert_eq!(store.batch_get(&keys).await.unwrap(), expected);
    s.cleanup(&*store).await;
}

/// `fail_fast` stops reading input after the first failed chunk: the
/// report says so, and no chunk after the failed one and those in flight
/// with it was written.
pub async fn bulk_fail_fast_stops_after_the_first_failure(store: Arc<dyn KvStore>) {
    let s = Space::new("bulk-ff");
    let entries: Vec<Entry> = (0..100)
        .map(|i| {
            let entry = Entry::new(s.key(&format!("{i:03}")), b("v"));
            if i == 15 {
                entry.with_ttl(Duration::ZERO)
            } else {
                entry
            }
        })
        .collect();
    let report = BulkWriter::new(store.clone())
        .chunk_size(10)
        .concurrency(1)
        .fail_fast(true)
        .write_iter(entries)
        .await;
    assert!(report.stopped_early && !report.is_complete());
    assert_eq!(report.failed.len(), 1);
    assert_eq!((report.chunks_written, report.keys_written), (1, 10));
    assert_eq!(live_keys(&*store, s.prefix(), 1000).await.len(), 10);
    s.cleanup(&*store).await;
}

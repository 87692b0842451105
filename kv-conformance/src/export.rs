//! Export and copy over the store: every live key once with its remaining
//! TTL, resumable, and copies to and from the in-memory reference store
//! that keep values and TTLs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use kv_core::{
    BulkWriter, CopyOptions, Entry, ExportOptions, Key, KvStore, KvStoreExt, MemoryStore,
    PrefixStore, copy,
};

use crate::support::{SHORT_TTL, Space, b, large, wait_past_short_ttl};

/// The TTL of entry `i` of an export case: none, a short one that is over
/// before the export, or minutes that differ by key. `None` everywhere on
/// a store without TTL.
fn ttl_of(store: &dyn KvStore, i: usize) -> Option<Duration> {
    if !store.capabilities().ttl {
        return None;
    }
    match i % 10 {
        0 => Some(SHORT_TTL),
        1..=5 => Some(Duration::from_secs(600) + Duration::from_millis(i as u64)),
        _ => None,
    }
}

fn entries(store: &dyn KvStore, s: &Space, n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let entry = Entry::new(s.key(&format!("{i:05}")), b(&format!("value {i}")));
            match ttl_of(store, i) {
                Some(ttl) => entry.with_ttl(ttl),
                None => entry,
            }
        })
        .collect()
}

/// Checks that `got` holds exactly the entries of `written` still live
/// (no short TTL), in key order, each with its value and, within what
/// `elapsed` allows, its TTL.
fn assert_exported(written: &[Entry], got: &[Entry], elapsed: Duration) {
    let live: Vec<&Entry> = written
        .iter()
        .filter(|e| e.ttl != Some(SHORT_TTL))
        .collect();
    assert_eq!(got.len(), live.len(), "each live key exactly once");
    let slack = Duration::from_millis(2);
    for (want, got) in live.iter().zip(got) {
        assert_eq!(got.key, want.key);
        assert_eq!(got.value, want.value, "{:?}", want.key);
        match (want.ttl, got.ttl) {
            (None, None) => {}
            (Some(set), Some(left)) => assert!(
                left <= set + slack && left + elapsed + slack >= set,
                "{:?}: {left:?} left of {set:?} after {elapsed:?}",
                want.key
            ),
            other => panic!("{:?}: TTL written and read: {other:?}", want.key),
        }
    }
}

/// Writes `entries` through a `BulkWriter`, every chunk landing.
async fn load(store: &Arc<dyn KvStore>, entries: &[Entry]) {
    let report = BulkWriter::new(store.clone())
        .write_iter(entries.to_vec())
        .await
        .into_result()
        .unwrap();
    assert_eq!(report.keys_written, entries.len() as u64);
}

/// Removes `entries`' keys by point deletes (cheap on every server).
async fn delete_all(store: &dyn KvStore, keys: impl Iterator<Item = Key>) {
    let chunk = store.capabilities().max_batch_ops.unwrap_or(1000).min(1000);
    let keys: Vec<Key> = keys.collect();
    for part in keys.chunks(chunk) {
        store.batch_delete(part).await.unwrap();
    }
}

/// Export of 20,000 keys (at full size: see
/// [`scale_large_cases`](crate::scale_large_cases)), a tenth expired before
/// it, half with TTLs of about ten minutes: every live key exactly once,
/// ascending, with its value and its remaining TTL.
pub async fn export_of_many_keys_returns_each_live_key_once_with_its_ttl(store: Arc<dyn KvStore>) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("export-20k");
    let written = entries(&*store, &s, large(20_000));
    let started = Instant::now();
    load(&store, &written).await;
    wait_past_short_ttl().await;
    let got: Vec<Entry> = store.export(s.prefix()).try_collect().await.unwrap();
    assert_exported(&written, &got, started.elapsed());
    delete_all(&*store, written.into_iter().map(|e| e.key)).await;
    s.cleanup(&*store).await;
}

/// An export in small pages resumes strictly after `start_after` and still
/// yields every later key once.
pub async fn export_resumes_after_a_key(store: Arc<dyn KvStore>) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("export-resume");
    let written = entries(&*store, &s, 60);
    let started = Instant::now();
    load(&store, &written).await;
    wait_past_short_ttl().await;
    let options = ExportOptions::default()
        .page_size(7)
        .read_ahead(3)
        .start_after(s.key("00024"));
    let got: Vec<Entry> = store
        .export_with(s.prefix(), options)
        .try_collect()
        .await
        .unwrap();
    assert_exported(&written[25..], &got, started.elapsed());
    delete_all(&*store, written.into_iter().map(|e| e.key)).await;
    s.cleanup(&*store).await;
}

/// Copy from the store into a `MemoryStore` and from that into another
/// space of the store, verified both times: values and TTLs survive both
/// trips; a resumed copy takes only the keys after its start.
pub async fn copy_to_memory_and_back_keeps_values_and_ttls(store: Arc<dyn KvStore>) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("copy-src");
    let written = entries(&*store, &s, 2_500);
    let started = Instant::now();
    load(&store, &written).await;
    wait_past_short_ttl().await;

    let memory = MemoryStore::new().into_dyn();
    let verified = CopyOptions::default().verify(true);
    let out = copy(&*store, memory.clone(), s.prefix(), verified.clone())
        .await
        .into_result()
        .unwrap();
    let live = written.iter().filter(|e| e.ttl != Some(SHORT_TTL)).count() as u64;
    assert_eq!((out.keys_read, out.load.keys_written), (live, live));
    let check = out.verify.as_ref().expect("verified");
    assert_eq!((check.checked, check.mismatched), (live, 0));
    let in_memory: Vec<Entry> = memory.export(s.prefix()).try_collect().await.unwrap();
    assert_exported(&written, &in_memory, started.elapsed());

    // Back into the store, under another space, through a PrefixStore.
    let back = Space::new("copy-back");
    let target: Arc<dyn KvStore> =
        Arc::new(PrefixStore::new(store.clone(), back.prefix()).unwrap());
    let home = copy(&*memory, target.clone(), s.prefix(), verified)
        .await
        .into_result()
        .unwrap();
    assert_eq!(home.load.keys_written, live);
    let returned: Vec<Entry> = target.export(s.prefix()).try_collect().await.unwrap();
    assert_exported(&written, &returned, started.elapsed());

    // Resumed: only the keys after the start.
    let resumed = Space::new("copy-resume");
    let partial: Arc<dyn KvStore> =
        Arc::new(PrefixStore::new(store.clone(), resumed.prefix()).unwrap());
    let options = CopyOptions::default().start_after(s.key("01999"));
    let rest = copy(&*memory, partial.clone(), s.prefix(), options)
        .await
        .into_result()
        .unwrap();
    let after: Vec<Entry> = partial.export(s.prefix()).try_collect().await.unwrap();
    assert_exported(&written[2000..], &after, started.elapsed());
    assert_eq!(rest.load.keys_written, after.len() as u64);
    assert_eq!(rest.resume_after, None);

    delete_all(&*store, written.into_iter().map(|e| e.key)).await;
    s.cleanup(&*store).await;
    back.cleanup(&*store).await;
    resumed.cleanup(&*store).await;
}

//! `kv::copy` between different real backends, each reached by its URL:
//! Redis to PostgreSQL to RocksDB and back to Redis (and on to etcd and
//! MongoDB when those features are on). Every hop keeps keys, values and
//! remaining TTLs, and its verification pass finds nothing different.

#![cfg(all(feature = "redis", feature = "postgres", feature = "rocksdb"))]
#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use kv::{CopyOptions, Entry, Key, KvStore, KvStoreExt, PrefixStore};

const KEYS: usize = 3_000;

fn entries(prefix: &str) -> Vec<Entry> {
    (0..KEYS)
        .map(|i| {
            // Binary values, one in three with a TTL of minutes that
            // differs by key, one in three without TTL.
            let value: Vec<u8> = format!("value {i} ").bytes().chain([0, 255, 7]).collect();
            let entry = Entry::new(Key::new(format!("{prefix}{i:05}")).unwrap(), value);
            match i % 3 {
                0 => entry.with_ttl(Duration::from_secs(900) + Duration::from_millis(i as u64)),
                1 => entry.with_ttl(Duration::from_secs(120)),
                _ => entry,
            }
        })
        .collect()
}

/// `store` holds exactly `written` under `prefix`: same keys and values,
/// a TTL where one was written, counted down by no more than the time
/// since `started` (just before the first write).
async fn assert_holds(store: &dyn KvStore, prefix: &str, written: &[Entry], started: Instant) {
    let got: Vec<Entry> = store.export(prefix).try_collect().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(got.len(), written.len(), "{}", store.backend());
    for (want, got) in written.iter().zip(&got) {
        assert_eq!((&got.key, &got.value), (&want.key, &want.value));
        match (want.ttl, got.ttl) {
            (None, None) => {}
            (Some(set), Some(left)) => assert!(
                left <= set + Duration::from_millis(2) && left + elapsed >= set,
                "{}: {:?} has {left:?} left of {set:?} after {elapsed:?}",
                store.backend(),
                want.key
            ),
            other => panic!("{}: {:?} TTLs {other:?}", store.backend(), want.key),
        }
    }
}

async fn hop(src: &dyn KvStore, dst: Arc<dyn KvStore>, prefix: &str) {
    let report = kv::copy(
        src,
        dst.clone(),
        prefix,
        CopyOptions::default().verify(true),
    )
    .await
    .into_result()
    .unwrap_or_else(|e| panic!("{} -> {}: {e}", src.backend(), dst.backend()));
    let verify = report.verify.as_ref().unwrap();
    assert_eq!(verify.checked, KEYS as u64);
    println!(
        "{} -> {}: {} keys in {:?} ({:.0} keys/s), verified {}",
        src.backend(),
        dst.backend(),
        report.load.keys_written,
        report.load.elapsed,
        report.load.keys_per_sec(),
        verify.checked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_between_backends_keeps_keys_values_and_ttls() {
    let (Some(redis), Some(postgres)) = (kv_testkit::redis().await, kv_testkit::postgres().await)
    else {
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("copy-test/{nanos}/");
    let dir = tempfile::tempdir().unwrap();
    let redis = kv::connect_store(&redis.kv_url()).await.unwrap();
    let postgres = kv::connect_store(&postgres.kv_url()).await.unwrap();
    let rocksdb = kv::connect_store(&format!("rocksdb://{}", dir.path().display()))
        .await
        .unwrap();

    let written = entries(&prefix);
    let started = Instant::now();
    redis.batch_set(written.clone()).await.unwrap();

    hop(&*redis, postgres.clone(), &prefix).await;
    assert_holds(&*postgres, &prefix, &written, started).await;
    hop(&*postgres, rocksdb.clone(), &prefix).await;
    assert_holds(&*rocksdb, &prefix, &written, started).await;
    // Back into Redis beside the originals, under another prefix.
    let back: Arc<dyn KvStore> = Arc::new(PrefixStore::new(redis.clone(), "back/").unwrap());
    hop(&*rocksdb, back.clone(), &prefix).await;
    assert_holds(&*back, &prefix, &written, started).await;

    #[cfg(all(feature = "etcd", feature = "mongo"))]
    {
        let (Some(etcd), Some(mongo)) = (kv_testkit::etcd().await, kv_testkit::mongo().await)
        else {
            return;
        };
        let etcd = kv::connect_store(&etcd.kv_url()).await.unwrap();
        let mongo = kv::connect_store(&mongo.kv_url()).await.unwrap();
        hop(&*back, etcd.clone(), &prefix).await;
        assert_holds(&*etcd, &prefix, &written, started).await;
        hop(&*etcd, mongo.clone(), &prefix).await;
        assert_holds(&*mongo, &prefix, &written, started).await;
        for store in [&etcd, &mongo] {
            store.clear(&prefix).await.unwrap();
        }
    }

    for store in [&redis, &postgres, &back] {
        store.clear(&prefix).await.unwrap();
    }
}

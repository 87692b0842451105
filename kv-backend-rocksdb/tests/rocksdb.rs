//! RocksDB-specific behaviour: persistence across reopen, compaction of
//! expired values, locking, exact counts under concurrency, foreign data.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kv_backend_rocksdb::RocksDbStore;
use kv_core::{Entry, ErrorKind, Key, KvStore, ListOptions, SetOptions};

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// The entries RocksDB holds for kv keys (the version counter's record,
/// under a key no kv key can be, left out).
fn raw_entries(store: &RocksDbStore) -> usize {
    store
        .db()
        .iterator(rocksdb::IteratorMode::Start)
        .filter(|item| item.as_ref().is_ok_and(|(k, _)| !k.starts_with(b"\0")))
        .count()
}

#[tokio::test]
async fn reopening_keeps_data_and_ttls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = RocksDbStore::builder(&path).open().await.unwrap();
        store
            .set(&key("plain"), "p".into(), SetOptions::default())
            .await
            .unwrap();
        store
            .set(
                &key("long"),
                "l".into(),
                SetOptions::ttl(Duration::from_millis(1500)),
            )
            .await
            .unwrap();
        store
            .set(
                &key("short"),
                "s".into(),
                SetOptions::ttl(Duration::from_millis(100)),
            )
            .await
            .unwrap();
    } // closed
    tokio::time::sleep(Duration::from_millis(200)).await;
    let store = RocksDbStore::builder(&path).open().await.unwrap();
    let got = store
        .batch_get(&[key("plain"), key("long"), key("short")])
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            Some(Bytes::from_static(b"p")),
            Some(Bytes::from_static(b"l")),
            None
        ]
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        store.get(&key("long")).await.unwrap(),
        None,
        "the TTL survived the reopen"
    );
    assert_eq!(
        store.list("", ListOptions::default()).await.unwrap().keys,
        ["plain"]
    );
}

/// A version survives a reopen with its value and still guards a write;
/// versions given after the reopen are none of those given before (the
/// counter resumes past the block it had written down).
#[tokio::test]
async fn versions_survive_a_reopen_and_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut before = Vec::new();
    {
        let store = RocksDbStore::builder(&path).open().await.unwrap();
        for i in 0..5 {
            store
                .set(&key("k"), format!("{i}").into(), SetOptions::default())
                .await
                .unwrap();
            before.push(
                store
                    .get_versioned(&key("k"))
                    .await
                    .unwrap()
                    .unwrap()
                    .version,
            );
        }
    }
    let store = RocksDbStore::builder(&path).open().await.unwrap();
    let last = before.last().cloned().unwrap();
    assert_eq!(
        store
            .get_versioned(&key("k"))
            .await
            .unwrap()
            .unwrap()
            .version,
        last
    );
    for i in 0..5 {
        store
            .set(
                &key(&format!("other{i}")),
                "o".into(),
                SetOptions::default(),
            )
            .await
            .unwrap();
        let version = store
            .get_versioned(&key(&format!("other{i}")))
            .await
            .unwrap()
            .unwrap()
            .version;
        assert!(
            !before.contains(&version),
            "{version:?} was given before the reopen"
        );
    }
    assert!(
        store
            .write_if(
                &key("k"),
                kv_core::Condition::Version(last),
                Some("after".into()),
                SetOptions::default()
            )
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn compaction_removes_expired_values_from_disk() {
    let store = RocksDbStore::temporary().await.unwrap();
    let mut batch: Vec<Entry> = (0..1000)
        .map(|i| Entry::new(key(&format!("dead{i:04}")), "x").with_ttl(Duration::from_millis(100)))
        .collect();
    batch.extend((0..10).map(|i| Entry::new(key(&format!("live{i}")), "y")));
    store.batch_set(batch).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        raw_entries(&store),
        1010,
        "expired values stay until compacted"
    );
    store.compact().await.unwrap();
    assert_eq!(
        raw_entries(&store),
        10,
        "the compaction filter dropped the expired values"
    );
}

#[tokio::test]
async fn a_database_in_use_is_unavailable_and_named() {
    let store = RocksDbStore::temporary().await.unwrap();
    let err = RocksDbStore::builder(store.path())
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string()
            .contains(&store.path().display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_database_without_create_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = RocksDbStore::builder(dir.path().join("nothing-here"))
        .create_if_missing(false)
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn bad_urls_are_config_errors() {
    for url in [
        "rocksdb://relative/no-dot",
        "rocksdb:///tmp/x?sync=perhaps",
        "file:///tmp/x",
    ] {
        assert_eq!(
            RocksDbStore::open_url(url).await.unwrap_err().kind(),
            ErrorKind::Config,
            "{url}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_delete_counts_exactly_under_concurrent_writers() {
    // Each key is written once by its own task while a deleter sweeps all
    // keys repeatedly: every write is either deleted and counted once, or
    // left for the final sweep. Counting outside the key locks would lose
    // writes that land between the count and the delete.
    let store = Arc::new(RocksDbStore::temporary().await.unwrap());
    for round in 0..5 {
        let keys: Vec<Key> = (0..200).map(|i| key(&format!("r{round}/{i:03}"))).collect();
        let writers: Vec<_> = keys
            .iter()
            .cloned()
            .map(|k| {
                let store = store.clone();
                tokio::spawn(async move { store.set(&k, "v".into(), SetOptions::default()).await })
            })
            .collect();
        let deleter = {
            let (store, keys) = (store.clone(), keys.clone());
            tokio::spawn(async move {
                let mut removed = 0;
                for _ in 0..20 {
                    removed += store.batch_delete(&keys).await?;
                }
                Ok::<_, kv_core::Error>(removed)
            })
        };
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        let mut removed = deleter.await.unwrap().unwrap();
        removed += store.batch_delete(&keys).await.unwrap();
        assert_eq!(removed, 200, "round {round}");
    }
}

#[tokio::test]
async fn a_value_written_by_another_program_is_an_error_not_none() {
    let store = RocksDbStore::temporary().await.unwrap();
    store.db().put(b"foreign", b"no header").unwrap();
    let err = store.get(&key("foreign")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert_eq!(err.key(), Some("foreign"));
    // The rule every backend keeps: a present key that can be listed,
    // deleted and cleared (before, delete and list failed on it).
    let db = store.db();
    kv_conformance::foreign::foreign_values_are_present_keys(&store, |key| {
        db.put(key.as_bytes(), b"\x07not kv's format").unwrap();
        std::future::ready(())
    })
    .await;
    // A key that is not a valid kv key has no name in kv: never listed.
    store.db().put(b"bad\0key", b"\x00v").unwrap();
    store.db().put(b"bad\xffkey", b"\x00v").unwrap();
    let page = store.list("bad", Default::default()).await.unwrap();
    assert!(page.keys.is_empty(), "{page:?}");
}

#[tokio::test]
async fn a_temporary_database_is_removed_when_dropped() {
    let store = RocksDbStore::temporary().await.unwrap();
    let path = store.path().to_owned();
    store
        .set(&key("k"), "v".into(), SetOptions::default())
        .await
        .unwrap();
    assert!(path.exists());
    drop(store);
    assert!(!path.exists());
}

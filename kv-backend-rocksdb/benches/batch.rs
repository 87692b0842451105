//! kv's RocksDB batches against the same calls written by hand with the
//! rocksdb crate, in one run, on one database.
//!
//! ```text
//! cargo bench -p kv-backend-rocksdb --bench batch
//! KV_BENCH_QUICK=1 cargo bench -p kv-backend-rocksdb --bench batch
//! ```
//!
//! Both sides run on Tokio's blocking pool (`spawn_blocking`), as async code
//! must call RocksDB, with the durable default (sync writes). By hand: one
//! `WriteBatch` of raw values (kv adds a 1-byte expiry header), a snapshot
//! `multi_get`, a `WriteBatch` of deletes (kv also counts the live keys under
//! its key locks). For 1, 10, 100 and 1000 keys of 1 KiB; then one batch of
//! 100 against 100 single calls. Rounds are interleaved; medians reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::sync::Arc;

use bytes::Bytes;
use kv_backend_rocksdb::RocksDbStore;
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::{batch_against_single_calls, quick, race, report_row};
use rocksdb::{WriteBatch, WriteOptions};

const VALUE_BYTES: usize = 1024;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(quick()));
}

async fn run(quick: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksDbStore::builder(dir.path().join("db"))
        .sync_writes(true)
        .open()
        .await
        .unwrap();
    // The same database, for the hand-written calls (different keys).
    let store_for_hand = store.clone();
    let db = move || store_for_hand.clone();
    let rounds = if quick { 5 } else { 21 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);

    println!(
        "kv-backend-rocksdb batch benchmark: values {VALUE_BYTES} B, sync writes, median of {rounds} interleaved rounds"
    );
    println!();
    println!("| op | batch | kv keys/s | by hand keys/s | kv/hand |");
    println!("|---|---:|---:|---:|---:|");
    for size in [1usize, 10, 100, 1000] {
        let ops = (if quick { 400 } else { 2_000 } / size).clamp(5, 200);
        let kv_keys: Vec<Key> = (0..size)
            .map(|i| Key::new(format!("kv:{i:05}")).unwrap())
            .collect();
        let hand_keys: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..size)
                .map(|i| format!("hand:{i:05}").into_bytes())
                .collect(),
        );
        let entries: Vec<Entry> = kv_keys
            .iter()
            .map(|k| Entry::new(k.clone(), value.clone()))
            .collect();

        let [kv, hand] = race(
            rounds,
            ops,
            [
                &|| Box::pin(async { store.batch_set(entries.clone()).await.unwrap() }),
                &|| {
                    let (db, keys, value) = (db(), hand_keys.clone(), value.clone());
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || {
                            let mut batch = WriteBatch::default();
                            for k in keys.iter() {
                                batch.put(k, &value);
                            }
                            let mut opts = WriteOptions::default();
                            opts.set_sync(true);
                            db.db().write_opt(batch, &opts).unwrap();
                        })
                        .await
                        .unwrap();
                    })
                },
            ],
        )
        .await;
        report_row("batch_set", size, ops, kv, hand);

        let [kv, hand] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        assert_eq!(store.batch_get(&kv_keys).await.unwrap().len(), size)
                    })
                },
                &|| {
                    let (db, keys) = (db(), hand_keys.clone());
                    Box::pin(async move {
                        let got: Vec<Option<Bytes>> = tokio::task::spawn_blocking(move || {
                            let snapshot = db.db().snapshot();
                            snapshot
                                .multi_get(keys.iter())
                                .into_iter()
                                .map(|v| v.unwrap().map(Bytes::from))
                                .collect()
                        })
                        .await
                        .unwrap();
                        assert_eq!(got.len(), size);
                    })
                },
            ],
        )
        .await;
        report_row("batch_get", size, ops, kv, hand);

        let [kv, hand] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        store.batch_delete(&kv_keys).await.unwrap();
                    })
                },
                &|| {
                    let (db, keys) = (db(), hand_keys.clone());
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || {
                            let mut batch = WriteBatch::default();
                            for k in keys.iter() {
                                batch.delete(k);
                            }
                            let mut opts = WriteOptions::default();
                            opts.set_sync(true);
                            db.db().write_opt(batch, &opts).unwrap();
                        })
                        .await
                        .unwrap();
                    })
                },
            ],
        )
        .await;
        report_row("batch_delete", size, ops, kv, hand);
    }

    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("kv:{i:05}")).unwrap())
        .collect();
    batch_against_single_calls(&store, &keys, &value, rounds, if quick { 3 } else { 10 }).await;
}

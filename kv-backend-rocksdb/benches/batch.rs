//! kv's RocksDB batches against the same calls written by hand with the
//! rocksdb crate, in one run, on one database.
//!
//! ```text
//! cargo bench -p anykv-rocksdb --bench batch
//! KV_BENCH_QUICK=1 cargo bench -p anykv-rocksdb --bench batch
//! ```
//!
//! Both sides run on Tokio's blocking pool (`spawn_blocking`), as async code
//! must call RocksDB, with the durable default (sync writes), and take turns
//! on two sets of keys so neither gets the better place in the database (the
//! placement alone moved a ratio by 10%). By hand: one `WriteBatch` of the
//! same stored bytes (kv's 9-byte header, a tag and a version, prepended
//! once, up front; kv takes a version per key from its counter), a snapshot
//! batched `multi_get` (values copied out, as kv must), and for deletes a
//! batched `multi_get` counting live keys then a `WriteBatch` (what kv does,
//! under its key locks, for the exact count the contract returns), and a
//! `WriteBatch` of deletes alone, which shows what the count costs. For 1,
//! 10, 100 and 1000 keys of 1 KiB; then one batch of 100 against 100 single
//! calls. Rounds are interleaved; medians reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use kv_backend_rocksdb::RocksDbStore;
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::{batch_against_single_calls, quick, race, report_row};
use rocksdb::{DB, DEFAULT_COLUMN_FAMILY_NAME, ReadOptions, WriteBatch, WriteOptions};

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
    // The same database for the hand-written calls.
    let store_for_hand = store.clone();
    let db = move || store_for_hand.clone();
    let rounds = if quick { 5 } else { 21 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    // What kv stores for `value` without a TTL: its versioned header (tag 2 and an 8-byte version), then the value.
    let stored = Bytes::from([&[2u8][..], &[0u8; 8][..], &value[..]].concat());

    println!(
        "kv-backend-rocksdb batch benchmark: values {VALUE_BYTES} B, sync writes, median of {rounds} interleaved rounds"
    );
    println!();
    println!("| op | batch | kv keys/s | by hand keys/s | kv/hand |");
    println!("|---|---:|---:|---:|---:|");
    for size in [1usize, 10, 100, 1000] {
        let ops = (if quick { 400 } else { 10_000 } / size).clamp(5, 500);
        let sets = [
            KeySet::new("a", size, &value),
            KeySet::new("b", size, &value),
        ];
        // Call n of kv uses set n % 2, call n by hand the other one.
        let (kv_turn, hand_turn) = (AtomicUsize::new(0), AtomicUsize::new(1));
        let kv_set = || &sets[kv_turn.fetch_add(1, Ordering::Relaxed) % 2];
        let hand_set = || &sets[hand_turn.fetch_add(1, Ordering::Relaxed) % 2];

        let [kv, hand] = race(
            rounds,
            ops,
            [
                &|| Box::pin(async { store.batch_set(kv_set().entries.clone()).await.unwrap() }),
                &|| {
                    let (db, keys, stored) = (db(), hand_set().raw.clone(), stored.clone());
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || {
                            let mut batch = WriteBatch::default();
                            for k in keys.iter() {
                                batch.put(k, &stored);
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

        // The hand-written read, raced twice: against kv, and against itself
        // (an A/A row: how far two identical contenders drift on this machine).
        let hand_get = |keys: Arc<Vec<Vec<u8>>>| {
            let db = db();
            Box::pin(async move {
                let got: Vec<Option<Bytes>> = tokio::task::spawn_blocking(move || {
                    let db = db.db();
                    let snapshot = db.snapshot();
                    let mut read = ReadOptions::default();
                    read.set_snapshot(&snapshot);
                    let cf = db.cf_handle(DEFAULT_COLUMN_FAMILY_NAME).unwrap();
                    db.batched_multi_get_cf_opt(cf, keys.iter(), false, &read)
                        .into_iter()
                        // Without the header, as kv returns it.
                        .map(|v| v.unwrap().map(|v| Bytes::copy_from_slice(&v[1..])))
                        .collect()
                })
                .await
                .unwrap();
                assert!(got.len() == size && got.iter().all(Option::is_some));
            })
        };
        let again_turn = AtomicUsize::new(0);
        let [kv, hand, again] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        let got = store.batch_get(&kv_set().keys).await.unwrap();
                        assert!(got.len() == size && got.iter().all(Option::is_some));
                    })
                },
                &|| hand_get(hand_set().raw.clone()),
                &|| {
                    hand_get(
                        sets[again_turn.fetch_add(1, Ordering::Relaxed) % 2]
                            .raw
                            .clone(),
                    )
                },
            ],
        )
        .await;
        report_row("batch_get", size, ops, kv, hand);
        report_row(
            "batch_get (A/A: by hand vs by hand)",
            size,
            ops,
            hand,
            again,
        );

        // By hand twice: counting the live keys as kv must (the same batched
        // multi_get, then the WriteBatch), and deleting without a count.
        let [kv, hand, uncounted] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        assert!(store.batch_delete(&kv_set().keys).await.unwrap() <= size as u64);
                    })
                },
                &|| {
                    let (db, keys) = (db(), hand_set().raw.clone());
                    Box::pin(async move {
                        let live = tokio::task::spawn_blocking(move || {
                            let db = db.db();
                            let cf = db.cf_handle(DEFAULT_COLUMN_FAMILY_NAME).unwrap();
                            let live = db
                                .batched_multi_get_cf(cf, keys.iter(), false)
                                .into_iter()
                                .filter(|v| v.as_ref().unwrap().is_some())
                                .count();
                            delete_by_hand(db, &keys);
                            live
                        })
                        .await
                        .unwrap();
                        assert!(live <= size);
                    })
                },
                &|| {
                    let (db, keys) = (db(), hand_set().raw.clone());
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || delete_by_hand(db.db(), &keys))
                            .await
                            .unwrap();
                    })
                },
            ],
        )
        .await;
        report_row("batch_delete", size, ops, kv, hand);
        report_row("batch_delete (hand: no count)", size, ops, kv, uncounted);
    }

    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("single:{i:05}")).unwrap())
        .collect();
    batch_against_single_calls(&store, &keys, &value, rounds, if quick { 3 } else { 10 }).await;
}

/// One set of keys, as kv takes them and as raw bytes.
struct KeySet {
    keys: Vec<Key>,
    entries: Vec<Entry>,
    raw: Arc<Vec<Vec<u8>>>,
}

impl KeySet {
    fn new(name: &str, size: usize, value: &Bytes) -> Self {
        let keys: Vec<Key> = (0..size)
            .map(|i| Key::new(format!("{name}:{i:05}")).unwrap())
            .collect();
        KeySet {
            entries: keys
                .iter()
                .map(|k| Entry::new(k.clone(), value.clone()))
                .collect(),
            raw: Arc::new(keys.iter().map(|k| k.as_bytes().to_vec()).collect()),
            keys,
        }
    }
}

fn delete_by_hand(db: &DB, keys: &[Vec<u8>]) {
    let mut batch = WriteBatch::default();
    for k in keys {
        batch.delete(k);
    }
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts).unwrap();
}

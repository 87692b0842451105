//! kv's versions, counters and transactions on RocksDB against the same
//! work written by hand with the rocksdb crate, in one run, on one
//! database (sync writes, the durable default).
//!
//! ```text
//! cargo bench -p anykv-rocksdb --bench versions
//! KV_BENCH_QUICK=1 cargo bench -p anykv-rocksdb --bench versions
//! ```
//!
//! RocksDB has no conditional write of its own: kv's are a read and a
//! `WriteBatch` under its key locks. By hand, each row does the same on
//! Tokio's blocking pool: a mutex, a `get_pinned`, the decision, a
//! `WriteBatch` of the value in kv's versioned form (a version from a
//! counter).
//!
//! - `increment`: `Kv::increment` against lock, read, parse, write;
//! - `versioned update`: `get_versioned` then `write_if`, against a read,
//!   then lock, read, compare the version, write;
//! - `2-key transaction`: `batch_get_versioned` then `transact` checking
//!   both versions and writing both, against a `multi_get`, then lock,
//!   `multi_get`, compare both, one `WriteBatch` of both.
//!
//! Rounds are interleaved; the median round is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kv_backend_rocksdb::RocksDbStore;
use kv_core::backend::stamp;
use kv_core::{Key, KvStore, SetOptions};
use kv_testkit::bench::{
    kv_transaction, kv_versioned_update, quick, race, report_op, versions_header,
};
use rocksdb::{WriteBatch, WriteOptions};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(quick()));
}

/// What the hand-written side shares: the database, a lock, a counter.
struct Hand {
    store: RocksDbStore,
    lock: Mutex<()>,
    versions: AtomicU64,
}

impl Hand {
    /// `value` in kv's stored form with a new version.
    fn stored(&self, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let version = self.versions.fetch_add(1, Ordering::Relaxed);
        stamp::encode_versioned_into(&mut out, value, None, 0, version);
        out
    }

    fn write(&self, batch: WriteBatch) {
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.store.db().write_opt(batch, &sync).unwrap();
    }

    /// The version in a stored value.
    fn version(stored: &[u8]) -> u64 {
        stamp::decode_versioned(stored, 0).unwrap().unwrap().2
    }
}

async fn blocking<T: Send + 'static>(
    hand: &Arc<Hand>,
    f: impl FnOnce(&Hand) -> T + Send + 'static,
) -> T {
    let hand = hand.clone();
    tokio::task::spawn_blocking(move || f(&hand)).await.unwrap()
}

async fn run(quick: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksDbStore::builder(dir.path().join("db"))
        .sync_writes(true)
        .open()
        .await
        .unwrap();
    let hand = Arc::new(Hand {
        store: store.clone(),
        lock: Mutex::new(()),
        versions: AtomicU64::new(1 << 40),
    });
    let rounds = if quick { 5 } else { 21 };
    let ops = if quick { 100 } else { 300 };
    versions_header("kv-backend-rocksdb (sync writes)", rounds);

    let kv_counter = key("counter:kv");
    let [kv, by_hand] = race(
        rounds,
        ops,
        [
            &|| {
                Box::pin(async {
                    store
                        .increment(&kv_counter, 1, SetOptions::default())
                        .await
                        .unwrap();
                })
            },
            &|| {
                Box::pin(blocking(&hand, |h| {
                    let _guard = h.lock.lock().unwrap();
                    let db = h.store.db();
                    let n: i64 = match db.get_pinned(b"counter:hand").unwrap() {
                        Some(stored) => {
                            let (text, _, _) =
                                stamp::decode_versioned(&stored, 0).unwrap().unwrap();
                            std::str::from_utf8(text).unwrap().parse().unwrap()
                        }
                        None => 0,
                    };
                    let mut batch = WriteBatch::default();
                    batch.put(b"counter:hand", h.stored((n + 1).to_string().as_bytes()));
                    h.write(batch);
                }))
            },
        ],
    )
    .await;
    report_op("increment", ops, kv, by_hand);

    let value = Bytes::from(vec![b'x'; 100]);
    let kv_doc = key("doc:kv");
    store
        .set(&kv_doc, value.clone(), SetOptions::default())
        .await
        .unwrap();
    let first = hand.stored(&value);
    hand.store.db().put(b"doc:hand", first).unwrap();
    let [kv, by_hand] = race(
        rounds,
        ops,
        [&|| Box::pin(kv_versioned_update(&store, &kv_doc)), &|| {
            Box::pin(async {
                let (value, version) = blocking(&hand, |h| {
                    let stored = h.store.db().get_pinned(b"doc:hand").unwrap().unwrap();
                    let (v, _, version) = stamp::decode_versioned(&stored, 0).unwrap().unwrap();
                    (v.to_vec(), version)
                })
                .await;
                blocking(&hand, move |h| {
                    let _guard = h.lock.lock().unwrap();
                    let now = h.store.db().get_pinned(b"doc:hand").unwrap().unwrap();
                    assert_eq!(Hand::version(&now), version);
                    let mut batch = WriteBatch::default();
                    batch.put(b"doc:hand", h.stored(&value));
                    h.write(batch);
                })
                .await;
            })
        }],
    )
    .await;
    report_op(
        "versioned update (read, then write at the version)",
        ops,
        kv,
        by_hand,
    );

    let kv_pair = [key("pair:kv:a"), key("pair:kv:b")];
    for k in &kv_pair {
        store
            .set(k, value.clone(), SetOptions::default())
            .await
            .unwrap();
    }
    const HAND_PAIR: [&[u8]; 2] = [b"pair:hand:a", b"pair:hand:b"];
    for k in HAND_PAIR {
        let stored = hand.stored(&value);
        hand.store.db().put(k, stored).unwrap();
    }
    let [kv, by_hand] = race(
        rounds,
        ops,
        [
            &|| Box::pin(kv_transaction(&store, &kv_pair, &value)),
            &|| {
                let (value, hand) = (value.clone(), hand.clone());
                Box::pin(async move {
                    let versions: Vec<u64> = blocking(&hand, |h| {
                        h.store
                            .db()
                            .multi_get(HAND_PAIR)
                            .into_iter()
                            .map(|v| Hand::version(&v.unwrap().unwrap()))
                            .collect()
                    })
                    .await;
                    blocking(&hand, move |h| {
                        let _guard = h.lock.lock().unwrap();
                        let now: Vec<u64> = h
                            .store
                            .db()
                            .multi_get(HAND_PAIR)
                            .into_iter()
                            .map(|v| Hand::version(&v.unwrap().unwrap()))
                            .collect();
                        assert_eq!(now, versions);
                        let mut batch = WriteBatch::default();
                        for k in HAND_PAIR {
                            batch.put(k, h.stored(&value));
                        }
                        h.write(batch);
                    })
                    .await;
                })
            },
        ],
    )
    .await;
    report_op(
        "2-key transaction (read both versions, check, write both)",
        ops,
        kv,
        by_hand,
    );
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

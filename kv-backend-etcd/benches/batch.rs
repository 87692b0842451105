//! kv's etcd batches against the same Txn written by hand with etcd-client,
//! in one run against one server.
//!
//! ```text
//! cargo bench -p anykv-etcd --bench batch          # full run
//! KV_BENCH_QUICK=1 cargo bench -p anykv-etcd --bench batch
//! KV_TEST_ETCD_URL=http://host:2379 cargo bench ...     # your own server
//! ```
//!
//! For each batch size (1, 10, 100 keys, 1 KiB values) it times:
//! - kv: `batch_set`, `batch_get`, `batch_delete` through `EtcdStore`;
//! - by hand: exactly the Txn kv sends (Puts of the same stored bytes, kv's
//!   one-byte header included; Ranges; DeleteRanges with `prev_kv`), built
//!   with etcd-client the usual way (`op_responses()` to read answers): kv's
//!   overhead;
//!
//! and batch-100 against 100 single `set`/`get` calls. Both contenders share
//! one gRPC channel (kv's). Rounds are interleaved in a rotating order, each
//! block after a 10 ms pause (`race_paced`), and the median round is
//! reported, as keys per second and as kv time / hand time (1.00 = same).

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use kv_backend_etcd::EtcdStore;
use kv_backend_etcd::etcd_client::{DeleteOptions, KvClient, Txn, TxnOp, TxnOpResponse};
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::{
    Stock, batch_against_single_calls, calls, keys_per_sec, quick, race_paced, ratio,
};

const VALUE_BYTES: usize = 1024;

/// The pause before each timed block: etcd's group commit of one
/// contender's writes lands outside the next contender's timing.
const PAUSE: Duration = Duration::from_millis(10);

fn main() {
    let quick = quick();
    let server = kv_testkit::server_blocking(kv_testkit::Kind::Etcd).expect("an etcd server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&server.kv_url(), quick));
}

async fn run(url: &str, quick: bool) {
    let store = EtcdStore::connect(url).await.unwrap();
    let kv: KvClient = store.client().kv_client();
    let rounds = if quick { 5 } else { 31 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    // What kv stores for a value without TTL: a zero header byte, the value.
    let stored: Vec<u8> = [&[0u8][..], &value[..]].concat();

    println!(
        "kv-backend-etcd batch benchmark: {url}, values {VALUE_BYTES} B, median of {rounds} interleaved rounds"
    );
    println!();
    println!("| op | batch | kv keys/s | by hand keys/s | kv/hand |");
    println!("|---|---:|---:|---:|---:|");
    for size in [1usize, 10, 100] {
        let ops = (if quick { 500 } else { 3_000 } / size).clamp(5, 300);
        let keys: Vec<Key> = (0..size)
            .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
            .collect();
        let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
        let entries = Stock::new(
            keys.iter()
                .map(|k| Entry::new(k.clone(), value.clone()))
                .collect::<Vec<Entry>>(),
            calls(rounds, ops),
        );

        let set_by_hand = || {
            Box::pin(async {
                let puts: Vec<TxnOp> = names
                    .iter()
                    .map(|n| TxnOp::put(*n, stored.clone(), None))
                    .collect();
                kv.clone().txn(Txn::new().and_then(puts)).await.unwrap();
            })
        };
        let [kv_time, hand, again] = race_paced(
            rounds,
            ops,
            PAUSE,
            [
                &|| Box::pin(async { store.batch_set(entries.take()).await.unwrap() }),
                &|| set_by_hand(),
                &|| set_by_hand(),
            ],
        )
        .await;
        report("batch_set", size, ops, kv_time, hand);
        report("batch_set (A/A: hand vs hand)", size, ops, hand, again);

        let get_by_hand = || {
            Box::pin(async {
                let gets: Vec<TxnOp> = names.iter().map(|n| TxnOp::get(*n, None)).collect();
                let resp = kv.clone().txn(Txn::new().and_then(gets)).await.unwrap();
                let values: Vec<Option<Vec<u8>>> = resp
                    .op_responses()
                    .into_iter()
                    .map(|r| match r {
                        TxnOpResponse::Get(mut get) => {
                            get.take_kvs().pop().map(|kv| kv.into_key_value().1)
                        }
                        _ => None,
                    })
                    .collect();
                assert_eq!(values.len(), size);
            })
        };
        let [kv_time, hand, again] = race_paced(
            rounds,
            ops,
            PAUSE,
            [
                &|| {
                    Box::pin(async {
                        assert_eq!(store.batch_get(&keys).await.unwrap().len(), size)
                    })
                },
                &|| get_by_hand(),
                &|| get_by_hand(),
            ],
        )
        .await;
        report("batch_get", size, ops, kv_time, hand);
        report("batch_get (A/A: hand vs hand)", size, ops, hand, again);

        // Each op deletes keys that no longer exist after the first, the
        // same for both contenders.
        let [kv_time, hand] = race_paced(
            rounds,
            ops,
            PAUSE,
            [
                &|| {
                    Box::pin(async {
                        assert!(store.batch_delete(&keys).await.unwrap() <= size as u64)
                    })
                },
                &|| {
                    Box::pin(async {
                        let deletes: Vec<TxnOp> = names
                            .iter()
                            .map(|n| TxnOp::delete(*n, Some(DeleteOptions::new().with_prev_key())))
                            .collect();
                        let resp = kv.clone().txn(Txn::new().and_then(deletes)).await.unwrap();
                        let removed: usize = resp
                            .op_responses()
                            .into_iter()
                            .map(|r| match r {
                                TxnOpResponse::Delete(d) => d.prev_kvs().len(),
                                _ => 0,
                            })
                            .sum();
                        assert!(removed <= size);
                    })
                },
            ],
        )
        .await;
        report("batch_delete", size, ops, kv_time, hand);
    }

    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
        .collect();
    batch_against_single_calls(&store, &keys, &value, rounds, if quick { 10 } else { 30 }).await;
    store.batch_delete(&keys).await.unwrap();
}

fn report(op: &str, size: usize, ops: usize, kv: Duration, hand: Duration) {
    println!(
        "| {op} | {size} | {:.0} | {:.0} | {:.3} |",
        keys_per_sec(size, ops, kv),
        keys_per_sec(size, ops, hand),
        ratio(kv, hand),
    );
}

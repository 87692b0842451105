//! kv's versions, counters and transactions on etcd against the same
//! requests written by hand with etcd-client, in one run against one
//! server.
//!
//! ```text
//! cargo bench -p anykv-etcd --bench versions
//! KV_BENCH_QUICK=1 cargo bench -p anykv-etcd --bench versions
//! ```
//!
//! etcd has no increment: kv's is a Txn guarded by the counter's revision.
//! By hand, each row is what a careful user writes with the driver: a
//! Range for the value and its `mod_revision`, then a Txn comparing the
//! revision(s) and putting the new value(s) (kv's stored form: a zero
//! header byte, then the bytes).
//!
//! - `increment`: `Kv::increment` against a Range then a guarded Txn;
//! - `versioned update`: `get_versioned` then `write_if`, against the same
//!   Range and guarded Txn;
//! - `2-key transaction`: `batch_get_versioned` then `transact` checking
//!   both versions and writing both, against a Txn of two Ranges then a
//!   Txn comparing both revisions.
//!
//! Rounds are interleaved, each timed block after a pause (etcd's group
//! commit); the median round is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use kv_backend_etcd::EtcdStore;
use kv_backend_etcd::etcd_client::{Compare, CompareOp, KvClient, Txn, TxnOp, TxnOpResponse};
use kv_core::{Key, KvStore, SetOptions};
use kv_testkit::bench::{
    kv_transaction, kv_versioned_update, quick, race_paced, report_op, versions_header,
};

const PAUSE: Duration = Duration::from_millis(10);

fn main() {
    let server = kv_testkit::server_blocking(kv_testkit::Kind::Etcd).expect("an etcd server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&server.kv_url(), quick()));
}

/// kv's stored form of a value without TTL.
fn stored(value: &[u8]) -> Vec<u8> {
    [&[0u8][..], value].concat()
}

/// The value and `mod_revision` of `key`, by hand.
async fn read(kv: &KvClient, key: &str) -> (Vec<u8>, i64) {
    let resp = kv.clone().get(key, None).await.unwrap();
    let found = &resp.kvs()[0];
    (found.value().to_vec(), found.mod_revision())
}

async fn run(url: &str, quick: bool) {
    let store = EtcdStore::connect(url).await.unwrap();
    let kv: KvClient = store.client().kv_client();
    let rounds = if quick { 5 } else { 21 };
    let ops = if quick { 50 } else { 150 };
    versions_header("kv-backend-etcd", rounds);

    let (kv_counter, hand_counter) = (key("vbench:counter:kv"), key("vbench:counter:hand"));
    store
        .increment(&kv_counter, 1, SetOptions::default())
        .await
        .unwrap();
    kv.clone()
        .put(hand_counter.as_str(), stored(b"1"), None)
        .await
        .unwrap();
    let [kv_time, hand] = race_paced(
        rounds,
        ops,
        PAUSE,
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
                Box::pin(async {
                    let (old, revision) = read(&kv, hand_counter.as_str()).await;
                    let n: i64 = std::str::from_utf8(&old[1..]).unwrap().parse().unwrap();
                    let next = stored((n + 1).to_string().as_bytes());
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            hand_counter.as_str(),
                            CompareOp::Equal,
                            revision,
                        )])
                        .and_then([TxnOp::put(hand_counter.as_str(), next, None)]);
                    assert!(kv.clone().txn(txn).await.unwrap().succeeded());
                })
            },
        ],
    )
    .await;
    report_op("increment", ops, kv_time, hand);

    let value = Bytes::from(vec![b'x'; 100]);
    let (kv_doc, hand_doc) = (key("vbench:doc:kv"), key("vbench:doc:hand"));
    for k in [&kv_doc, &hand_doc] {
        store
            .set(k, value.clone(), SetOptions::default())
            .await
            .unwrap();
    }
    let [kv_time, hand] = race_paced(
        rounds,
        ops,
        PAUSE,
        [&|| Box::pin(kv_versioned_update(&store, &kv_doc)), &|| {
            Box::pin(async {
                let (old, revision) = read(&kv, hand_doc.as_str()).await;
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        hand_doc.as_str(),
                        CompareOp::Equal,
                        revision,
                    )])
                    .and_then([TxnOp::put(hand_doc.as_str(), old, None)]);
                assert!(kv.clone().txn(txn).await.unwrap().succeeded());
            })
        }],
    )
    .await;
    report_op(
        "versioned update (read, then write at the version)",
        ops,
        kv_time,
        hand,
    );

    let kv_pair = [key("vbench:pair:kv:a"), key("vbench:pair:kv:b")];
    let hand_pair = [key("vbench:pair:hand:a"), key("vbench:pair:hand:b")];
    for k in kv_pair.iter().chain(&hand_pair) {
        store
            .set(k, value.clone(), SetOptions::default())
            .await
            .unwrap();
    }
    let [kv_time, hand] = race_paced(
        rounds,
        ops,
        PAUSE,
        [
            &|| Box::pin(kv_transaction(&store, &kv_pair, &value)),
            &|| {
                Box::pin(async {
                    let reads = Txn::new().and_then(
                        hand_pair
                            .iter()
                            .map(|k| TxnOp::get(k.as_str(), None))
                            .collect::<Vec<_>>(),
                    );
                    let resp = kv.clone().txn(reads).await.unwrap();
                    let revisions: Vec<i64> = resp
                        .op_responses()
                        .into_iter()
                        .map(|r| match r {
                            TxnOpResponse::Get(get) => get.kvs()[0].mod_revision(),
                            _ => unreachable!("a Range answers a Range"),
                        })
                        .collect();
                    let compares: Vec<Compare> = hand_pair
                        .iter()
                        .zip(&revisions)
                        .map(|(k, r)| Compare::mod_revision(k.as_str(), CompareOp::Equal, *r))
                        .collect();
                    let puts: Vec<TxnOp> = hand_pair
                        .iter()
                        .map(|k| TxnOp::put(k.as_str(), stored(&value), None))
                        .collect();
                    let txn = Txn::new().when(compares).and_then(puts);
                    assert!(kv.clone().txn(txn).await.unwrap().succeeded());
                })
            },
        ],
    )
    .await;
    report_op(
        "2-key transaction (read both versions, check, write both)",
        ops,
        kv_time,
        hand,
    );
    for k in [kv_counter, hand_counter, kv_doc, hand_doc]
        .iter()
        .chain(&kv_pair)
        .chain(&hand_pair)
    {
        store.delete(k).await.unwrap();
    }
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

//! A Redis Cluster of three primaries (with a replica each) against one
//! Redis, all on this machine, through kv:
//!
//! - `batch_set` / `batch_get` of 100 keys (100 B values): one Redis (one
//!   MULTI/EXEC, one MGET), the cluster with the store spread over 16
//!   buckets (one MULTI/EXEC or MGET per bucket the batch touches, all at
//!   once), and the cluster with a hash-tagged prefix (one slot: one
//!   MULTI/EXEC, like one Redis). Spread against tagged is the cost of
//!   splitting a batch by slot.
//! - `list` of 1,000-key pages over 10,000 keys: spread merges 16 buckets'
//!   pages.
//! - the BulkWriter loading 100,000 entries (default chunks, 4 in flight).
//!
//! ```text
//! cargo bench -p anykv-redis --bench cluster
//! KV_BENCH_QUICK=1 cargo bench -p anykv-redis --bench cluster
//! ```
//!
//! Rounds of the contenders are interleaved; medians, as keys per second.
//! Two cores run the client and all seven servers: the cluster cannot be
//! faster here than on separate machines, where each primary has its own.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_backend_redis::RedisStore;
use kv_core::{BulkWriter, Entry, Key, KvStore, ListOptions};
use kv_testkit::bench::{Stock, calls, keys_per_sec, quick, race};

const VALUE_BYTES: usize = 100;

fn main() {
    let quick = quick();
    let single = kv_testkit::server_blocking(kv_testkit::Kind::Redis).expect("a Redis server");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(single.url(), quick));
}

async fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder()
        .url(url)
        .key_prefix(prefix)
        .purge_interval(None)
        .connect()
        .await
        .unwrap()
}

async fn run(single_url: &str, quick: bool) {
    let cluster = kv_testkit::redis_cluster().await.expect("a Redis Cluster");
    let stores = [
        ("one Redis", store(single_url, "bench:").await),
        ("cluster, 16 buckets", store(cluster.url(), "bench:").await),
        ("cluster, one tag", store(cluster.url(), "{bench}:").await),
    ];
    let rounds = if quick { 5 } else { 21 };
    let ops = if quick { 20 } else { 100 };
    let size = 100;
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let keys: Vec<Key> = (0..size)
        .map(|i| Key::new(format!("k{i:04}")).unwrap())
        .collect();
    let entries = Stock::new(
        keys.iter()
            .map(|k| Entry::new(k.clone(), value.clone()))
            .collect::<Vec<Entry>>(),
        3 * calls(rounds, ops),
    );
    println!(
        "kv-backend-redis cluster benchmark: 3 primaries + 3 replicas vs one Redis, {VALUE_BYTES} B \
         values, median of {rounds} interleaved rounds of {ops} calls"
    );
    println!();
    println!(
        "| op | keys | {} | {} | {} | spread / tagged time |",
        stores[0].0, stores[1].0, stores[2].0
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let [a, b, c] = race(
        rounds,
        ops,
        [
            &|| Box::pin(async { stores[0].1.batch_set(entries.take()).await.unwrap() }),
            &|| Box::pin(async { stores[1].1.batch_set(entries.take()).await.unwrap() }),
            &|| Box::pin(async { stores[2].1.batch_set(entries.take()).await.unwrap() }),
        ],
    )
    .await;
    row("batch_set", size, ops, [a, b, c]);
    let [a, b, c] = race(
        rounds,
        ops,
        [
            &|| {
                Box::pin(async {
                    assert_eq!(stores[0].1.batch_get(&keys).await.unwrap().len(), size)
                })
            },
            &|| {
                Box::pin(async {
                    assert_eq!(stores[1].1.batch_get(&keys).await.unwrap().len(), size)
                })
            },
            &|| {
                Box::pin(async {
                    assert_eq!(stores[2].1.batch_get(&keys).await.unwrap().len(), size)
                })
            },
        ],
    )
    .await;
    row("batch_get", size, ops, [a, b, c]);
    for (_, s) in &stores {
        s.batch_delete(&keys).await.unwrap();
    }

    // Listing: 10,000 keys, pages of 1,000.
    let many: Vec<Entry> = (0..10_000)
        .map(|i| Entry::new(Key::new(format!("list/{i:05}")).unwrap(), value.clone()))
        .collect();
    for (_, s) in &stores {
        for part in many.chunks(1000) {
            s.batch_set(part.to_vec()).await.unwrap();
        }
    }
    let list_all = |s: &RedisStore| {
        let s = s.clone();
        async move {
            let mut options = ListOptions::default().limit(1000);
            let mut n = 0;
            loop {
                let page = s.list("list/", options.clone()).await.unwrap();
                n += page.keys.len();
                match page.next {
                    Some(after) => options = options.start_after(after),
                    None => break,
                }
            }
            assert_eq!(n, 10_000);
        }
    };
    let list_rounds = if quick { 3 } else { 7 };
    let [a, b, c] = race(
        list_rounds,
        1,
        [
            &|| Box::pin(list_all(&stores[0].1)),
            &|| Box::pin(list_all(&stores[1].1)),
            &|| Box::pin(list_all(&stores[2].1)),
        ],
    )
    .await;
    row("list (pages of 1,000)", 10_000, 1, [a, b, c]);
    let many_keys: Vec<Key> = many.iter().map(|e| e.key.clone()).collect();
    for (_, s) in &stores {
        for part in many_keys.chunks(1000) {
            s.batch_delete(part).await.unwrap();
        }
    }

    // The BulkWriter.
    let total = if quick { 20_000 } else { 100_000 };
    let mut rates = [0.0; 3];
    for (i, (_, s)) in stores.iter().enumerate() {
        let store: Arc<dyn KvStore> = Arc::new(s.clone());
        let items = (0..total)
            .map(|i| Entry::new(Key::new(format!("bulk/{i:07}")).unwrap(), value.clone()));
        let started = Instant::now();
        let report = BulkWriter::new(store.clone()).write_iter(items).await;
        let took = started.elapsed();
        assert!(report.is_complete(), "{:?}", report.failed);
        rates[i] = total as f64 / took.as_secs_f64();
        let keys: Vec<Key> = (0..total)
            .map(|i| Key::new(format!("bulk/{i:07}")).unwrap())
            .collect();
        for part in keys.chunks(1000) {
            store.batch_delete(part).await.unwrap();
        }
    }
    println!(
        "| BulkWriter load | {total} | {:.0} | {:.0} | {:.0} | {:.2} |",
        rates[0],
        rates[1],
        rates[2],
        rates[2] / rates[1]
    );
}

fn row(op: &str, keys: usize, ops: usize, times: [Duration; 3]) {
    println!(
        "| {op} | {keys} | {:.0} | {:.0} | {:.0} | {:.2} |",
        keys_per_sec(keys, ops, times[0]),
        keys_per_sec(keys, ops, times[1]),
        keys_per_sec(keys, ops, times[2]),
        times[1].as_secs_f64() / times[2].as_secs_f64()
    );
}

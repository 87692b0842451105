//! The cost of every layer at once (concurrency limit, timeout, retry,
//! metrics, tracing), on MemoryStore and on Redis, at batch 1 and 100: the
//! same calls through the bare store and through the stack, interleaved
//! rounds, medians; ns per call and the ratio.
//!
//! ```text
//! cargo bench -p kv-tests --features redis,tracing,metrics --bench layers
//! KV_BENCH_QUICK=1 cargo bench -p kv-tests --features redis,tracing,metrics --bench layers
//! ```
//!
//! "Tracing off" is no subscriber installed and the metrics facade without
//! a recorder: the layers run their checks and record nothing, what a
//! service pays when it ships them and turns them on later. The `on` rows
//! install a no-op-writing subscriber and the Prometheus recorder.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kv::{
    ConcurrencyLimitLayer, Entry, Key, KvStore, Layer, MetricsLayer, RetryLayer, SetOptions,
    TimeoutLayer, TracingLayer,
};
use kv_testkit::bench::{Contender, Stock, calls, race};

fn layered(store: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
    let store = ConcurrencyLimitLayer::new(64).layer(store);
    let store = TimeoutLayer::new(Duration::from_secs(5)).layer(store);
    let store = RetryLayer::new().layer(store);
    let store = MetricsLayer::new().layer(store);
    TracingLayer::new().layer(store)
}

async fn compare(name: &str, bare: Arc<dyn KvStore>, rounds: usize, ops: usize) {
    let with = layered(bare.clone());
    let value = Bytes::from(vec![b'v'; 100]);
    let one = Key::new(format!("bench-layers/{name}/one")).unwrap();
    let hundred: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("bench-layers/{name}/{i:03}")).unwrap())
        .collect();
    let entries: Vec<Entry> = hundred
        .iter()
        .map(|k| Entry::new(k.clone(), value.clone()))
        .collect();
    bare.set(&one, value.clone(), SetOptions::default())
        .await
        .unwrap();
    bare.batch_set(entries.clone()).await.unwrap();
    let n = calls(rounds, ops);
    let stocks = [
        Stock::new(entries.clone(), n),
        Stock::new(entries.clone(), n),
    ];

    let set_bare = || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async {
            bare.set(&one, value.clone(), SetOptions::default())
                .await
                .unwrap();
        })
    };
    let set_with = || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async {
            with.set(&one, value.clone(), SetOptions::default())
                .await
                .unwrap();
        })
    };
    let get_bare = || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async {
            bare.get(&one).await.unwrap().unwrap();
        })
    };
    let get_with = || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async {
            with.get(&one).await.unwrap().unwrap();
        })
    };
    let bset_bare = || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async { bare.batch_set(stocks[0].take()).await.unwrap() })
    };
    let bset_with = || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async { with.batch_set(stocks[1].take()).await.unwrap() })
    };
    let bget_bare = || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async {
            assert_eq!(bare.batch_get(&hundred).await.unwrap().len(), 100);
        })
    };
    let bget_with = || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async {
            assert_eq!(with.batch_get(&hundred).await.unwrap().len(), 100);
        })
    };
    let pairs: [(&str, usize, Contender<'_>, Contender<'_>); 4] = [
        ("set", 1, &set_bare, &set_with),
        ("get", 1, &get_bare, &get_with),
        ("batch_set", 100, &bset_bare, &bset_with),
        ("batch_get", 100, &bget_bare, &bget_with),
    ];
    for (op, batch, bare_call, with_call) in pairs {
        let [b, w] = race(rounds, ops, [bare_call, with_call]).await;
        let per = |d: Duration| d.as_nanos() as f64 / ops as f64;
        println!(
            "| {name} | {op} | {batch} | {:.0} | {:.0} | {:+.0} | {:.3} |",
            per(b),
            per(w),
            per(w) - per(b),
            w.as_secs_f64() / b.as_secs_f64()
        );
    }
}

fn main() {
    let quick = kv_testkit::bench::quick();
    let (rounds, ops) = if quick { (11, 200) } else { (31, 1000) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = kv_testkit::server_blocking(kv_testkit::Kind::Redis)
        .unwrap()
        .kv_url();
    let header = || {
        println!(
            "| store | op | batch | bare ns/call | layered ns/call | difference ns | layered/bare |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|");
    };
    println!("All five layers, tracing and metrics off (no subscriber, no recorder):");
    println!();
    header();
    runtime.block_on(async {
        let memory = kv::connect_store("memory://").await.unwrap();
        compare("memory", memory, rounds, ops).await;
        let store = kv::connect_store(&redis).await.unwrap();
        compare("redis", store, rounds, ops / 10).await;
    });

    // The same with a subscriber that builds every span (writing to a sink)
    // and the Prometheus recorder installed.
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .finish();
    let _recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    println!();
    println!("All five layers, tracing on (fmt subscriber to a sink) and the Prometheus recorder:");
    println!();
    header();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let memory = kv::connect_store("memory://").await.unwrap();
            compare("memory", memory, rounds, ops).await;
            let store = kv::connect_store(&redis).await.unwrap();
            compare("redis", store, rounds, ops / 10).await;
        });
    });
}

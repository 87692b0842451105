//! kv on etcd: every batch one Txn (at most 128 operations by default,
//! etcd's `--max-txn-ops`), exact TTLs on shared leases, and the etcd
//! client for anything else.
//!
//! ```text
//! etcd &                            # or: docker run -p 2379:2379 quay.io/coreos/etcd:v3.5.17 etcd \
//!                                   #   --advertise-client-urls http://0.0.0.0:2379 --listen-client-urls http://0.0.0.0:2379
//! cargo run --example etcd --features etcd -- 127.0.0.1:2379
//! ```
//!
//! Several endpoints: `host1:2379,host2:2379`. Through `kv::connect`:
//! `etcd://user:password@host:2379?prefix=app/`, `etcds://` for TLS.

use std::time::Duration;

use kv::etcd::EtcdStore;
use kv::{ErrorKind, Kv};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoints = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2379".to_owned());

    let store = EtcdStore::builder()
        .endpoints(endpoints.split(','))
        .key_prefix("example/")
        .request_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let handle = store.clone(); // clones share the channel and the lease cache
    let kv = Kv::new(store.into_dyn());
    let limit = kv.capabilities().max_batch_ops;
    println!("etcd at {endpoints}: at most {limit:?} operations per batch");

    // 200 keys with a 10-minute TTL, each in a batch of 100: each batch is
    // one Txn; the keys share a handful of leases instead of one each.
    for part in 0..2 {
        let batch: Vec<(String, u32)> =
            (0..100).map(|i| (format!("job:{part}{i:02}"), i)).collect();
        kv.batch_set_with_ttl(batch, Duration::from_secs(600))
            .await?;
    }
    println!(
        "200 keys with a TTL use {} lease(s)",
        handle.cached_leases()
    );

    // Over the limit, the whole batch is refused before anything is sent.
    let too_many: Vec<(String, u32)> = (0..129).map(|i| (format!("x:{i}"), i)).collect();
    match kv.batch_set(too_many).await {
        Err(err) if err.kind() == ErrorKind::BatchTooLarge => println!("129 operations -> {err}"),
        other => return Err(format!("expected BatchTooLarge, got {other:?}").into()),
    }

    // The BulkWriter cuts any number of keys into batches that fit.
    let report = kv
        .bulk_set((0..1000).map(|i| (format!("bulk:{i:04}"), i)))
        .await;
    println!(
        "bulk: {} keys in {} Txns",
        report.keys_written, report.chunks_written
    );

    // The etcd client itself: the revision this store's writes reached.
    let status = handle.client().status().await?;
    println!(
        "cluster revision {}",
        status.header().map_or(0, |h| h.revision())
    );

    kv.clear().await?;
    Ok(())
}

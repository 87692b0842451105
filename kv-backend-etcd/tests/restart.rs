//! Surviving an etcd restart while batches are written. Its own test
//! binary: it restarts the server this process shares.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use kv_backend_etcd::EtcdStore;
use kv_conformance::disruption::{batches_stay_whole_while, bulk_load_completes_across};
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_a_server_restart() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let store = EtcdStore::builder()
        .endpoints([server.kv_url().trim_start_matches("etcd://")])
        .key_prefix("restart/")
        .request_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let ttl = SetOptions::ttl(Duration::from_secs(60));
    store.set(&key("before"), "1".into(), ttl).await.unwrap();

    // Batches are written while the server restarts twice: each applies
    // whole or not at all, a failed one is a temporary error, and writes
    // succeed again afterwards.
    let keys: Vec<Key> = (0..100).map(|i| key(&format!("gen:{i:03}"))).collect();
    let restart_twice = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tokio::task::spawn_blocking(move || server.restart())
                .await
                .unwrap()
                .expect("restart the local etcd");
        }
    };
    let kinds = [ErrorKind::Unavailable, ErrorKind::Timeout];
    let failed = batches_stay_whole_while(&store, &keys, &kinds, restart_twice).await;

    // etcd keeps its data and leases across a restart.
    assert_eq!(store.get(&key("before")).await.unwrap(), Some("1".into()));
    store.set(&key("after"), "2".into(), ttl).await.unwrap();
    assert!(store.exists(&key("after")).await.unwrap());
    println!("{failed} batch(es) failed with a temporary error during the restarts");

    // 2. A bulk load while the server restarts: the chunks that meet the
    // restart fail with temporary errors and are retried; the load completes
    // with every key present.
    let restart = || async {
        tokio::task::spawn_blocking(move || server.restart())
            .await
            .unwrap()
            .expect("restart the local server");
    };
    let report =
        bulk_load_completes_across(std::sync::Arc::new(store.clone()), "bulk:", 10_000, restart)
            .await;
    println!(
        "bulk load across a restart: {} keys in {:?}, {} retries",
        report.keys_written, report.elapsed, report.retries
    );
}

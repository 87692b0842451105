//! Surviving a Redis restart and killed connections. Its own test binary:
//! it restarts the server this process shares, and kills its clients.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use kv_backend_redis::RedisStore;
use kv_conformance::disruption::{batches_stay_whole_while, bulk_load_completes_across};
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

#[tokio::test]
async fn the_store_survives_a_server_restart_and_killed_connections() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let store = RedisStore::builder()
        .url(server.url())
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    store
        .set(&key("before"), "1".into(), SetOptions::default())
        .await
        .unwrap();

    // 1. The server restarts (without persistence: the data is gone).
    server.restart().expect("restart the local redis-server");
    // Reads retry once over a fresh connection: the first call after the
    // restart already answers.
    assert_eq!(store.get(&key("before")).await.unwrap(), None);
    store
        .set(&key("after"), "2".into(), SetOptions::default())
        .await
        .unwrap();
    assert!(store.exists(&key("after")).await.unwrap());

    // 2. Every client connection is killed while batches are being written.
    // Each batch applies whole or not at all; a failed one is a temporary
    // error; writes succeed again afterwards.
    let keys: Vec<Key> = (0..200).map(|i| key(&format!("gen:{i:03}"))).collect();
    let admin = redis::Client::open(server.url()).unwrap();
    let kill_clients = async {
        let mut conn = admin.get_multiplexed_async_connection().await.unwrap();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(15)).await;
            let _: redis::RedisResult<u64> = redis::cmd("CLIENT")
                .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"][..])
                .query_async(&mut conn)
                .await;
        }
    };
    let kinds = [ErrorKind::Unavailable, ErrorKind::Timeout];
    let failed = batches_stay_whole_while(&store, &keys, &kinds, kill_clients).await;
    store
        .set(&key("final"), "ok".into(), SetOptions::default())
        .await
        .unwrap();
    println!("{failed} batch(es) failed with a temporary error while connections were killed");

    // 3. A bulk load while the server restarts: the chunks that meet the
    // restart fail with temporary errors and are retried; the load completes
    // with every key present. (Redis saves on shutdown once a save point is set.)
    let mut admin_conn = admin.get_multiplexed_async_connection().await.unwrap();
    // A save point makes the shutdown write an RDB that the restarted
    // server loads: the test server otherwise keeps nothing.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "save", "3600 1"][..])
        .query_async(&mut admin_conn)
        .await
        .unwrap();
    let restart = || async {
        tokio::task::spawn_blocking(move || server.restart())
            .await
            .unwrap()
            .expect("restart the local server");
    };
    let report =
        bulk_load_completes_across(std::sync::Arc::new(store.clone()), "bulk:", 50_000, restart)
            .await;
    println!(
        "bulk load across a restart: {} keys in {:?}, {} retries",
        report.keys_written, report.elapsed, report.retries
    );
}

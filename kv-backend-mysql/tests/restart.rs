//! Surviving a MariaDB restart and killed connections. Its own test
//! binary: it restarts the server this process shares and kills sessions.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use kv_backend_mysql::MysqlStore;
use kv_conformance::disruption::{batches_stay_whole_while, bulk_load_completes_across};
use kv_core::{ErrorKind, Key, KvStore, SetOptions};
use sqlx::Connection;

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_a_restart_and_killed_connections() {
    let Some(server) = kv_testkit::mysql().await else {
        return;
    };
    let store = MysqlStore::builder()
        .url(server.url())
        .table("kv_restart")
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    store
        .set(&key("before"), "1".into(), SetOptions::default())
        .await
        .unwrap();
    let before = store.get_versioned(&key("before")).await.unwrap().unwrap();

    // 1. The server restarts (SIGTERM: a clean shutdown; the data dir is kept).
    server.restart().expect("restart the local mariadbd");
    // The pool tests connections before use and reads retry once: the first
    // call after the restart answers.
    assert_eq!(
        store.get(&key("before")).await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    // The version survives the restart with the data, and still guards.
    let after = store.get_versioned(&key("before")).await.unwrap().unwrap();
    assert_eq!(after.version, before.version);
    assert!(
        store
            .write_if(
                &key("before"),
                kv_core::Condition::Version(before.version.clone()),
                Some("1b".into()),
                SetOptions::default(),
            )
            .await
            .unwrap()
    );
    // A new store on the table never hands out a version used before.
    let second = MysqlStore::builder()
        .url(server.url())
        .table("kv_restart")
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    second
        .set(&key("before"), "1c".into(), SetOptions::default())
        .await
        .unwrap();
    let third = second.get_versioned(&key("before")).await.unwrap().unwrap();
    assert_ne!(third.version, after.version);
    assert_ne!(third.version, before.version);

    // 2. Every connection of the store is killed while batches are written
    // (each batch is one statement). A batch applies whole or not at all,
    // failures are temporary, and the store carries on.
    let mut admin = sqlx::MySqlConnection::connect(server.url()).await.unwrap();
    let keys: Vec<Key> = (0..300).map(|i| key(&format!("gen:{i:03}"))).collect();
    let kill_connections = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            let ids: Vec<u64> = sqlx::query_scalar(
                "SELECT CAST(id AS UNSIGNED) FROM information_schema.processlist \
                 WHERE id <> CONNECTION_ID() AND user <> 'system user' AND command <> 'Daemon'",
            )
            .fetch_all(&mut admin)
            .await
            .unwrap();
            for id in ids {
                // A connection may have closed in between: that error is fine.
                let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
                    .execute(&mut admin)
                    .await;
            }
        }
    };
    let kinds = [ErrorKind::Unavailable, ErrorKind::Backend];
    let failed = batches_stay_whole_while(&store, &keys, &kinds, kill_connections).await;
    store
        .set(&key("final"), "ok".into(), SetOptions::default())
        .await
        .unwrap();
    println!("{failed} batch(es) failed with a temporary error while connections were killed");

    // 3. A bulk load while the server restarts: the chunks that meet the
    // restart fail with temporary errors and are retried; the load completes
    // with every key present.
    let restart = || async {
        tokio::task::spawn_blocking(move || server.restart())
            .await
            .unwrap()
            .expect("restart the local server");
    };
    let report =
        bulk_load_completes_across(std::sync::Arc::new(store.clone()), "bulk:", 20_000, restart)
            .await;
    println!(
        "bulk load across a restart: {} keys in {:?}, {} retries",
        report.keys_written, report.elapsed, report.retries
    );
}

//! Surviving a PostgreSQL restart and terminated connections. Its own test
//! binary: it restarts the server this process shares and kills sessions.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use kv_backend_postgres::PostgresStore;
use kv_conformance::disruption::{batches_stay_whole_while, bulk_load_completes_across};
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_a_restart_and_terminated_sessions() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let store = PostgresStore::builder()
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

    // 1. The server restarts (fast shutdown; the data dir is kept).
    server.restart().expect("restart the local postgres");
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
                kv_core::Condition::Version(before.version),
                Some("1b".into()),
                SetOptions::default(),
            )
            .await
            .unwrap()
    );
    store
        .set(&key("after"), "2".into(), SetOptions::default())
        .await
        .unwrap();

    // 2. Every session of the store is terminated while batches are written
    // (each batch is one statement, so one transaction). A batch applies whole
    // or not at all, failures are temporary, and the store carries on.
    let admin = sqlx::PgPool::connect(server.url()).await.unwrap();
    let keys: Vec<Key> = (0..300).map(|i| key(&format!("gen:{i:03}"))).collect();
    let terminate_sessions = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'kv' AND pid <> pg_backend_pid()",
            )
            .execute(&admin)
            .await
            .unwrap();
        }
    };
    let kinds = [ErrorKind::Unavailable, ErrorKind::Backend];
    let failed = batches_stay_whole_while(&store, &keys, &kinds, terminate_sessions).await;
    store
        .set(&key("final"), "ok".into(), SetOptions::default())
        .await
        .unwrap();
    println!("{failed} batch(es) failed with a temporary error while sessions were terminated");

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

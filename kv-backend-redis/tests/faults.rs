//! Redis under injected faults: connections cut mid-request, stalled, and
//! 64 tasks of load. Each store goes through a `kv_testkit::FaultProxy`;
//! checks read over a direct connection.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::{Duration, Instant};

use kv_backend_redis::RedisStore;
use kv_core::{ErrorKind, Key, KvStore};
use kv_testkit::FaultProxy;

async fn store(url: &str) -> RedisStore {
    RedisStore::builder()
        .url(url)
        .purge_interval(None)
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cuts_leave_no_partial_batch_and_no_double_swap() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let proxy = FaultProxy::start(server.url()).await.unwrap();
    let through = store(&proxy.url_for(server.url())).await;
    let direct = store(server.url()).await;
    let report = kv_conformance::faults::cuts_leave_no_partial_batch(
        &through,
        &direct,
        &proxy,
        "faults/cuts/",
        1000,
        kv_testkit::seed(),
    )
    .await;
    println!("Redis: {report}");
    assert_eq!(report.partial, 0);
    assert!(report.cuts >= 1000, "{report}");
}

#[tokio::test]
async fn a_stalled_connection_ends_in_timeout_and_the_store_recovers() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let proxy = FaultProxy::start(server.url()).await.unwrap();
    let through = RedisStore::builder()
        .url(proxy.url_for(server.url()))
        .purge_interval(None)
        .response_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let key = Key::new("faults/stall").unwrap();
    through
        .set(&key, "1".into(), Default::default())
        .await
        .unwrap();
    proxy.stall();
    for call in ["get", "batch_set"] {
        let started = Instant::now();
        let err = match call {
            "get" => through.get(&key).await.map(drop),
            _ => {
                through
                    .batch_set(vec![kv_core::Entry::new(key.clone(), "2")])
                    .await
            }
        }
        .unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{call}: {err}");
        assert!(err.is_temporary());
        assert!(
            took >= Duration::from_millis(300),
            "{call} gave up early: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "{call} hung: {took:?}");
        println!("Redis {call} on a stalled connection: Timeout after {took:?}");
    }
    proxy.resume();
    kv_conformance::faults::works_again(&through, &key).await;
}

#[tokio::test]
async fn connecting_to_a_refused_or_silent_port_fails_fast() {
    let refused = kv_testkit::closed_port();
    let started = Instant::now();
    let err = RedisStore::builder()
        .url(format!("redis://{refused}"))
        .connect()
        .await
        .unwrap_err();
    println!(
        "Redis connect to a refused port: {:?} after {:?}",
        err.kind(),
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // A server that accepts and never answers: the connect timeout governs.
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let proxy = FaultProxy::start(server.url()).await.unwrap();
    proxy.stall();
    let started = Instant::now();
    let err = RedisStore::builder()
        .url(proxy.url_for(server.url()))
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    let took = started.elapsed();
    println!(
        "Redis connect to a silent server: {:?} after {took:?}",
        err.kind()
    );
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.is_temporary());
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_of_mixed_load_lose_no_write() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let store = store(server.url()).await.into_dyn();
    let report = kv_conformance::load::mixed_load_loses_no_write(
        store,
        "faults/load/",
        64,
        kv_conformance::load::duration(),
        kv_testkit::seed(),
    )
    .await;
    println!("Redis load: {report}");
}

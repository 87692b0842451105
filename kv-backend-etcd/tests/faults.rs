//! etcd under injected faults: connections cut mid-request, stalled,
//! refused, and 64 tasks of load. The store under test goes through a
//! `kv_testkit::FaultProxy`; checks read over a direct connection.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use kv_backend_etcd::{EtcdStore, EtcdStoreBuilder};
use kv_conformance::faults;
use kv_core::Key;
use kv_testkit::{FaultProxy, TestServer};

fn endpoint(server: &TestServer) -> String {
    server.kv_url().trim_start_matches("etcd://").to_owned()
}

fn builder(endpoint: impl Into<String>) -> EtcdStoreBuilder {
    EtcdStore::builder().endpoints([endpoint.into()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cuts_leave_no_partial_batch_and_no_double_swap() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let proxy = FaultProxy::start(&endpoint(server)).await.unwrap();
    let through = builder(proxy.addr().to_string()).connect().await.unwrap();
    let direct = builder(endpoint(server)).connect().await.unwrap();
    let seed = kv_testkit::seed();
    let report =
        faults::cuts_leave_no_partial_batch(&through, &direct, &proxy, "faults/cuts/", 1000, seed)
            .await;
    println!("etcd: {report}");
    assert_eq!(report.partial, 0);
    assert!(report.cuts >= 1000, "{report}");
}

#[tokio::test]
async fn a_stalled_connection_ends_in_timeout_and_the_store_recovers() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let proxy = FaultProxy::start(&endpoint(server)).await.unwrap();
    let timeout = Duration::from_millis(300);
    let through = builder(proxy.addr().to_string())
        .request_timeout(timeout)
        .connect()
        .await
        .unwrap();
    let key = Key::new("faults/stall").unwrap();
    let took = faults::stalls_end_in_timeout(&through, &proxy, timeout, &key).await;
    println!(
        "etcd get, batch_set on a stalled connection (request timeout {timeout:?}): Timeout after {took:?}"
    );
}

#[tokio::test]
async fn connecting_to_a_refused_or_silent_port_fails_fast() {
    let took = faults::connect_fails_fast(
        Duration::from_secs(5),
        builder(kv_testkit::closed_port().to_string()).connect(),
    )
    .await;
    println!("etcd connect to a refused port: Unavailable after {took:?}");

    // A server that accepts and never answers: the connect timeout governs.
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let proxy = FaultProxy::start(&endpoint(server)).await.unwrap();
    proxy.stall();
    let took = faults::connect_fails_fast(
        Duration::from_secs(3),
        builder(proxy.addr().to_string())
            .connect_timeout(Duration::from_secs(1))
            .connect(),
    )
    .await;
    println!("etcd connect to a silent server (connect timeout 1s): Unavailable after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_of_mixed_load_lose_no_write() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let store = builder(endpoint(server))
        .connect()
        .await
        .unwrap()
        .into_dyn();
    let report = kv_conformance::load::mixed_load_loses_no_write(
        store,
        "faults/load/",
        64,
        kv_conformance::load::duration(),
        kv_testkit::seed(),
    )
    .await;
    println!("etcd load: {report}");
}

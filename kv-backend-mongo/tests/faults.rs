//! MongoDB under injected faults: connections cut mid-request, stalled,
//! refused, and 64 tasks of load. The store under test goes through a
//! `kv_testkit::FaultProxy`; checks read over a direct connection.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use kv_backend_mongo::MongoStore;
use kv_conformance::faults;
use kv_core::Key;
use kv_testkit::FaultProxy;

async fn store(url: &str) -> MongoStore {
    MongoStore::builder().url(url).connect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cuts_leave_no_partial_batch_and_no_double_swap() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    // After a cut the driver marks the server unknown and may check it
    // again only 500 ms later (the drivers' minHeartbeatFrequencyMS), so a
    // cut costs about half a second: four lanes, each with its own proxy
    // and client, make 250 cuts each at the same time.
    let direct = store(server.url()).await;
    let seed = kv_testkit::seed();
    let mut lanes = Vec::new();
    for lane in 0..4u64 {
        let proxy = FaultProxy::start(server.url()).await.unwrap();
        let through = store(&proxy.url_for(server.url())).await;
        lanes.push((proxy, through, format!("faults/cuts/{lane}/")));
    }
    let runs = lanes
        .iter()
        .enumerate()
        .map(|(lane, (proxy, through, prefix))| {
            faults::cuts_leave_no_partial_batch(
                through,
                &direct,
                proxy,
                prefix,
                250,
                seed + lane as u64,
            )
        });
    let mut report = faults::CutReport::default();
    for run in futures::future::join_all(runs).await {
        report.add(&run);
    }
    println!("MongoDB: {report}");
    assert_eq!(report.partial, 0);
    assert!(report.cuts >= 1000, "{report}");
}

#[tokio::test]
async fn a_stalled_connection_ends_in_timeout_and_the_store_recovers() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let proxy = FaultProxy::start(server.url()).await.unwrap();
    let timeout = Duration::from_millis(300);
    let through = MongoStore::builder()
        .url(proxy.url_for(server.url()))
        .request_timeout(timeout)
        .connect()
        .await
        .unwrap();
    let key = Key::new("faults/stall").unwrap();
    let took = faults::stalls_end_in_timeout(&through, &proxy, timeout, &key).await;
    println!(
        "MongoDB get, batch_set on a stalled connection (request timeout {timeout:?}): Timeout after {took:?}"
    );
}

#[tokio::test]
async fn connecting_to_a_refused_or_silent_port_fails_fast() {
    let refused = format!(
        "mongodb://{}/?directConnection=true",
        kv_testkit::closed_port()
    );
    // The driver's server selection waits its whole timeout (the connect
    // timeout) even for a refused connection.
    let took = faults::connect_fails_fast(
        Duration::from_secs(4),
        MongoStore::builder()
            .url(refused)
            .connect_timeout(Duration::from_secs(1))
            .connect(),
    )
    .await;
    println!("MongoDB connect to a refused port (connect timeout 1s): Unavailable after {took:?}");

    // A server that accepts and never answers: the connect timeout governs.
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let proxy = FaultProxy::start(server.url()).await.unwrap();
    proxy.stall();
    let took = faults::connect_fails_fast(
        Duration::from_secs(3),
        MongoStore::builder()
            .url(proxy.url_for(server.url()))
            .connect_timeout(Duration::from_secs(1))
            .connect(),
    )
    .await;
    println!("MongoDB connect to a silent server (connect timeout 1s): Unavailable after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_of_mixed_load_lose_no_write() {
    let Some(server) = kv_testkit::mongo().await else {
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
    println!("MongoDB load: {report}");
}

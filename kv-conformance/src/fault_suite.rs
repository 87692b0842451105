//! The fault tests of a network backend, written once. A backend says how
//! to reach its test server by implementing [`FaultTarget`], and
//! [`fault_suite!`](macro@crate::fault_suite) expands to its five tests:
//!
//! - 1,000 connections cut mid-request or mid-answer
//!   ([`faults::cuts_leave_no_partial_batch`]);
//! - a stalled connection ends in `Timeout` ([`faults::stalls_end_in_timeout`]);
//! - a refused port and a silent server fail `connect` fast
//!   ([`faults::connect_fails_fast`]);
//! - 64 tasks of mixed load lose no write
//!   ([`load::mixed_load_loses_no_write`]);
//! - increments whose answers are lost are never counted twice, and the
//!   bank test's transfers keep the total while connections are cut
//!   ([`transactions`]).
//!
//! ```ignore
//! struct Redis;
//!
//! impl kv_conformance::fault_suite::FaultTarget for Redis {
//!     const NAME: &'static str = "Redis";
//!     async fn server() -> Option<String> { Some(kv_testkit::redis().await?.url().to_owned()) }
//!     fn refused() -> String { format!("redis://{}", kv_testkit::closed_port()) }
//!     async fn connect(address: &str, timeouts: Timeouts) -> kv_core::Result<Arc<dyn KvStore>> { .. }
//! }
//!
//! kv_conformance::fault_suite!(Redis);
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kv_core::{Key, KvStore, Layer, RetryLayer, SetOptions};
use kv_testkit::FaultProxy;

use crate::faults::{self, CutReport};
use crate::load;

/// How many connections the cut test cuts, over all its lanes.
pub const CUTS: u64 = 1000;

/// The timeouts a fault test sets on a store it connects; `None` keeps the
/// backend's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// How long one call may wait for its answer (the backend's request or
    /// response timeout).
    pub request: Option<Duration>,
    /// How long connecting may take.
    pub connect: Option<Duration>,
}

/// How the fault suite reaches one network backend's test server.
pub trait FaultTarget {
    /// The backend's name in the printed figures.
    const NAME: &'static str;

    /// Cut-test lanes run at once, each with its own proxy and store:
    /// 1, or more where each cut costs the driver a pause (MongoDB's
    /// drivers wait 500 ms before checking a server again).
    const LANES: u64 = 1;

    /// The shared test server, as the address [`connect`](Self::connect)
    /// takes (a URL; for etcd `host:port`); `None` when it is unavailable
    /// and skipping is allowed.
    fn server() -> impl Future<Output = Option<String>> + Send;

    /// `address` reached through `proxy` (by default the URL with the
    /// proxy's host and port).
    fn through(proxy: &FaultProxy, address: &str) -> String {
        proxy.url_for(address)
    }

    /// An address where nothing listens.
    fn refused() -> String;

    /// A store on `address` with `timeouts`.
    fn connect(
        address: &str,
        timeouts: Timeouts,
    ) -> impl Future<Output = kv_core::Result<Arc<dyn KvStore>>> + Send;
}

/// Cuts [`CUTS`] connections during batches and swaps, in `T::LANES` lanes;
/// none may leave a partial batch or a double swap.
pub async fn cuts<T: FaultTarget>() {
    let Some(address) = T::server().await else {
        return;
    };
    let direct = T::connect(&address, Timeouts::default()).await.unwrap();
    let seed = kv_testkit::seed();
    let mut lanes = Vec::new();
    for lane in 0..T::LANES {
        let proxy = FaultProxy::start(&address).await.unwrap();
        let through = T::connect(&T::through(&proxy, &address), Timeouts::default())
            .await
            .unwrap();
        lanes.push((proxy, through, format!("faults/cuts/{lane}/")));
    }
    let per_lane = CUTS.div_ceil(T::LANES);
    let runs = lanes
        .iter()
        .enumerate()
        .map(|(lane, (proxy, through, prefix))| {
            faults::cuts_leave_no_partial_batch(
                through.as_ref(),
                direct.as_ref(),
                proxy,
                prefix,
                per_lane,
                seed + lane as u64,
            )
        });
    let mut report = CutReport::default();
    for run in futures::future::join_all(runs).await {
        report.add(&run);
    }
    println!("{}: {report}", T::NAME);
    assert_eq!(report.partial, 0);
    assert!(report.cuts >= CUTS, "{report}");
}

/// A stalled connection makes `get` and `batch_set` end in `Timeout` at a
/// 300 ms request timeout; the store recovers.
pub async fn stalls<T: FaultTarget>() {
    let Some(address) = T::server().await else {
        return;
    };
    let proxy = FaultProxy::start(&address).await.unwrap();
    let timeout = Duration::from_millis(300);
    let timeouts = Timeouts {
        request: Some(timeout),
        connect: None,
    };
    let through = T::connect(&T::through(&proxy, &address), timeouts)
        .await
        .unwrap();
    let key = Key::new("faults/stall").unwrap();
    let took = faults::stalls_end_in_timeout(through.as_ref(), &proxy, timeout, &key).await;
    println!(
        "{} get, batch_set on a stalled connection (request timeout {timeout:?}): Timeout after {took:?}",
        T::NAME
    );
}

/// `connect` to a refused port and to a server that accepts and never
/// answers fails with `Unavailable` within 3 s at a 1 s connect timeout.
pub async fn connects<T: FaultTarget>() {
    let timeouts = Timeouts {
        request: None,
        connect: Some(Duration::from_secs(1)),
    };
    let limit = Duration::from_secs(3);
    let took = faults::connect_fails_fast(limit, T::connect(&T::refused(), timeouts)).await;
    println!(
        "{} connect to a refused port (connect timeout 1s): Unavailable after {took:?}",
        T::NAME
    );
    let Some(address) = T::server().await else {
        return;
    };
    let proxy = FaultProxy::start(&address).await.unwrap();
    proxy.stall();
    let silent = T::through(&proxy, &address);
    let took = faults::connect_fails_fast(limit, T::connect(&silent, timeouts)).await;
    println!(
        "{} connect to a silent server (connect timeout 1s): Unavailable after {took:?}",
        T::NAME
    );
}

/// 64 tasks of mixed calls for [`load::duration`]; no write lost.
pub async fn load<T: FaultTarget>() {
    let Some(address) = T::server().await else {
        return;
    };
    let store = T::connect(&address, Timeouts::default()).await.unwrap();
    let report = load::mixed_load_loses_no_write(
        store,
        "faults/load/",
        64,
        load::duration(),
        kv_testkit::seed(),
    )
    .await;
    println!("{} load: {report}", T::NAME);
}

/// Increments and transactions through a proxy that cuts connections:
///
/// - 200 increments through the retry layer, every other one losing its
///   answer (the server applied it; the client sees a temporary error),
///   after 8 that measure a request's size:
///   no answered value repeats, and the counter ends between the answered
///   count and that plus the ambiguous ones, never above: no increment was
///   sent twice.
/// - The bank test for 10 s ([`races`](crate::races)) while every open
///   connection is dropped every 20 to 80 ms: every consistent read during
///   the run and the end state show the same total, so no transfer was
///   half applied.
pub async fn transactions<T: FaultTarget>() {
    let Some(address) = T::server().await else {
        return;
    };
    let direct = T::connect(&address, Timeouts::default()).await.unwrap();
    let caps = direct.capabilities();
    let proxy = Arc::new(FaultProxy::start(&address).await.unwrap());
    let through = T::connect(&T::through(&proxy, &address), Timeouts::default())
        .await
        .unwrap();
    if caps.counters {
        let retrying = RetryLayer::new().layer(through.clone());
        let key = Key::new(format!("faults/incr/{}", kv_testkit::seed())).unwrap();
        direct.delete(&key).await.unwrap();
        let (mut answered, mut ambiguous) = (std::collections::BTreeSet::new(), 0u64);
        // The bytes one increment sends (the least of 8: a first call on a
        // connection may prepare a statement or load a script): a cut of
        // the answer to the request carrying its last byte falls on the
        // increment itself, past any liveness ping a pool sends first.
        let mut size = u64::MAX;
        for _ in 0..8 {
            let before = proxy.client_bytes();
            let value = through
                .increment(&key, 1, SetOptions::default())
                .await
                .unwrap();
            answered.insert(value);
            size = size.min(proxy.client_bytes() - before);
        }
        for i in 0..200 {
            if i % 2 == 0 {
                proxy.cut_answer_after(size.saturating_sub(1));
            }
            match retrying.increment(&key, 1, SetOptions::default()).await {
                Ok(value) => assert!(answered.insert(value), "{value} was answered twice"),
                Err(e) => {
                    assert!(e.is_temporary(), "a cut must be a temporary error: {e}");
                    ambiguous += 1;
                }
            }
            proxy.disarm();
        }
        let stored = direct.get(&key).await.unwrap().unwrap_or_default();
        let end: u64 = std::str::from_utf8(&stored).unwrap().parse().unwrap();
        let answered_count = answered.len() as u64;
        println!(
            "{}: 208 increments through the retry layer, 100 with their answer cut: \
             {answered_count} answered, {ambiguous} ambiguous, counter at {end}",
            T::NAME
        );
        assert!(
            (answered_count..=answered_count + ambiguous).contains(&end),
            "the counter ({end}) must lie between the answered increments \
             ({answered_count}) and those plus the ambiguous ones ({ambiguous})"
        );
        direct.delete(&key).await.unwrap();
    }
    if caps.transactions {
        let s = crate::support::Space::new("faults-bank");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cutter = {
            let (proxy, stop) = (proxy.clone(), stop.clone());
            tokio::spawn(async move {
                let mut drops = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(20..80))).await;
                    proxy.drop_connections();
                    drops += 1;
                }
                drops
            })
        };
        let report = crate::races::run_bank(
            through.clone(),
            direct.clone(),
            &s,
            Duration::from_secs(10),
            8,
        )
        .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let drops = cutter.await.unwrap();
        println!(
            "{}: bank test through the proxy, connections dropped {drops} times in 10 s: {report:?}; \
             the total never changed",
            T::NAME
        );
        assert!(report.committed > 0, "{report:?}");
        s.cleanup(direct.as_ref()).await;
    }
}

/// The five fault tests of a [`FaultTarget`], as `#[tokio::test]`s in the
/// module where it is invoked.
#[macro_export]
macro_rules! fault_suite {
    ($target:ty) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_thousand_cuts_leave_no_partial_batch_and_no_double_swap() {
            $crate::fault_suite::cuts::<$target>().await;
        }

        #[tokio::test]
        async fn a_stalled_connection_ends_in_timeout_and_the_store_recovers() {
            $crate::fault_suite::stalls::<$target>().await;
        }

        #[tokio::test]
        async fn connecting_to_a_refused_or_silent_port_fails_fast() {
            $crate::fault_suite::connects::<$target>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sixty_four_tasks_of_mixed_load_lose_no_write() {
            $crate::fault_suite::load::<$target>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn lost_answers_never_double_an_increment_and_transfers_stay_whole() {
            $crate::fault_suite::transactions::<$target>().await;
        }
    };
}

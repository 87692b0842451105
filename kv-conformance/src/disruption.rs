//! Batches under a disruption (killed connections, a failover): a check for
//! backend tests that can disrupt their server, which the suite cannot.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use kv_core::{BulkReport, BulkWriter, Entry, ErrorKind, Key, KvStore};
use tokio::sync::watch;

/// Writes batches over `keys` (every key of batch `n` holds `n`) while
/// `disrupt` runs on the same task, then 20 more, and checks the contract
/// for writes that fail mid-air:
/// - each failed batch is a temporary error of one of `kinds`;
/// - no batch is applied in part: afterwards every key holds the same
///   generation (read back, retrying temporary errors);
///
/// and returns how many batches failed. `disrupt` must end; it runs between
/// the writes' awaits, so it should sleep between blows.
///
/// ```ignore
/// let failed = kv_conformance::disruption::batches_stay_whole_while(
///     &store,
///     &keys,
///     &[ErrorKind::Unavailable, ErrorKind::Timeout],
///     kill_every_client_connection_five_times(),
/// )
/// .await;
/// ```
pub async fn batches_stay_whole_while(
    store: &dyn KvStore,
    keys: &[Key],
    kinds: &[ErrorKind],
    disrupt: impl Future<Output = ()>,
) -> u32 {
    let disrupted = Cell::new(false);
    let disrupt = async {
        disrupt.await;
        disrupted.set(true);
    };
    let write = async {
        let (mut failed, mut after) = (0u32, 0);
        for generation in 0u32.. {
            if disrupted.get() {
                if after == 20 {
                    break;
                }
                after += 1;
            }
            let batch = keys
                .iter()
                .map(|k| Entry::new(k.clone(), generation.to_string()))
                .collect();
            if let Err(e) = store.batch_set(batch).await {
                assert!(kinds.contains(&e.kind()), "{e} ({:?})", e.kind());
                assert!(e.is_temporary(), "{e} ({:?})", e.kind());
                failed += 1;
            }
        }
        failed
    };
    let ((), failed) = futures::join!(disrupt, write);
    let mut attempts = 0;
    let values = loop {
        match store.batch_get(keys).await {
            Ok(values) => break values,
            Err(e) if e.is_temporary() && attempts < 50 => attempts += 1,
            Err(e) => panic!("reading back after the disruption: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let first = values.first().cloned().flatten();
    assert!(first.is_some(), "no batch was written");
    assert!(
        values.iter().all(|v| *v == first),
        "a batch was applied in part ({failed} batches failed)"
    );
    failed
}

/// Loads `n` entries (`{prefix}000000`, ... holding their index) through a
/// [`BulkWriter`] with patient retries while `disrupt` (a server restart)
/// runs: the first half of the input is read, then `disrupt()` starts and
/// the rest of the input flows while it runs, so chunks meet the
/// disruption. Checks that the load completes (temporary errors retried,
/// no chunk failed) and that afterwards every key holds its value, then
/// deletes the keys. Returns the report (its `retries` show how many
/// chunk attempts the disruption cost).
///
/// ```ignore
/// let report = bulk_load_completes_across(store, "restart/", 20_000, || async {
///     tokio::task::spawn_blocking(move || server.restart()).await.unwrap().unwrap();
/// })
/// .await;
/// ```
pub async fn bulk_load_completes_across<F, Fut>(
    store: Arc<dyn KvStore>,
    prefix: &str,
    n: usize,
    disrupt: F,
) -> BulkReport
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let key = |i: usize| Key::new(format!("{prefix}{i:06}")).expect("a valid test key");
    let (reached_tx, mut reached) = watch::channel(false);
    let (started_tx, started) = watch::channel(false);
    let half = n / 2;
    let input = stream::iter(0..n).then(|i| {
        let (reached_tx, mut started) = (&reached_tx, started.clone());
        async move {
            if i == half {
                reached_tx.send_replace(true);
                // The rest of the input waits until the disruption began.
                let _ = started.wait_for(|s| *s).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Entry::new(key(i), i.to_string())
        }
    });
    let writer = BulkWriter::new(store.clone())
        .retries(30)
        .backoff(Duration::from_millis(100), Duration::from_secs(2));
    let disruption = async {
        let _ = reached.wait_for(|r| *r).await;
        started_tx.send_replace(true);
        disrupt().await;
    };
    let (report, ()) = futures::join!(writer.write(input), disruption);
    assert!(
        report.is_complete(),
        "the load did not complete across the disruption: {:?}",
        report.failed.first()
    );
    assert_eq!(report.keys_written, n as u64);
    let keys: Vec<Key> = (0..n).map(key).collect();
    let chunk = store.capabilities().max_batch_ops.unwrap_or(1000).min(1000);
    for (c, part) in keys.chunks(chunk).enumerate() {
        let values = retry_temporary(|| store.batch_get(part)).await;
        for (j, value) in values.into_iter().enumerate() {
            let i = c * chunk + j;
            assert_eq!(
                value.as_deref(),
                Some(i.to_string().as_bytes()),
                "key {} after the disruption",
                part[j]
            );
        }
        retry_temporary(|| store.batch_delete(part)).await;
    }
    report
}

/// Runs `call` until it succeeds, retrying temporary errors for up to
/// about five seconds.
async fn retry_temporary<T, F, Fut>(call: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = kv_core::Result<T>>,
{
    let mut attempts = 0;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) if e.is_temporary() && attempts < 50 => attempts += 1,
            Err(e) => panic!("after the disruption: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

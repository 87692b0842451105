//! Batches under a disruption (killed connections, a failover): a check for
//! backend tests that can disrupt their server, which the suite cannot.

use std::cell::Cell;
use std::future::Future;

use kv_core::{Entry, ErrorKind, Key, KvStore};

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

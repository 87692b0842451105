//! Races on versions, counters and transactions: many tasks on few keys,
//! nothing lost, nothing doubled, no total changed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use kv_core::{Entry, Key, Kv, KvStore, SetOptions, Transaction};
use serde::{Deserialize, Serialize};

use crate::support::Space;

/// 8 tasks each incrementing one counter 200 times end at exactly 1,600,
/// and every task saw its own increments return distinct values.
pub async fn increments_from_8_tasks_sum_to_1600(store: Arc<dyn KvStore>) {
    if !store.capabilities().counters {
        return;
    }
    let s = Space::new("race-incr");
    let key = s.key("n");
    let tasks = (0..8).map(|_| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            let mut seen = Vec::with_capacity(200);
            for _ in 0..200 {
                seen.push(store.increment(&key, 1, SetOptions::default()).await?);
            }
            Ok::<_, kv_core::Error>(seen)
        })
    });
    let mut all = BTreeSet::new();
    for result in join_all(tasks).await {
        for value in result.expect("task panicked").expect("increment failed") {
            assert!(all.insert(value), "two increments returned {value}");
        }
    }
    assert_eq!(all.len(), 1600);
    assert_eq!(all.first(), Some(&1));
    assert_eq!(all.last(), Some(&1600));
    let kv = Kv::new(store.clone());
    assert_eq!(kv.get::<i64>(key.as_str()).await.unwrap(), Some(1600));
    s.cleanup(&*store).await;
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Log {
    entries: Vec<String>,
}

/// 8 tasks each `update` one document 100 times (appending an entry):
/// all 800 entries are in the result, none lost to a concurrent update.
pub async fn updates_from_8_tasks_lose_none(store: Arc<dyn KvStore>) {
    if !store.capabilities().versions {
        return;
    }
    let s = Space::new("race-update");
    let kv = Kv::new(store.clone()).namespace(s.prefix()).unwrap();
    let tasks = (0..8).map(|task| {
        let kv = kv.clone();
        tokio::spawn(async move {
            for i in 0..100 {
                let entry = format!("{task}-{i}");
                kv.update("log", |log: Option<Log>| {
                    let mut log = log.unwrap_or_default();
                    log.entries.push(entry.clone());
                    Some(log)
                })
                .await?;
            }
            Ok::<_, kv_core::Error>(())
        })
    });
    for result in join_all(tasks).await {
        result.expect("task panicked").expect("update failed");
    }
    let log: Log = kv.get("log").await.unwrap().unwrap();
    let distinct: BTreeSet<&String> = log.entries.iter().collect();
    assert_eq!(log.entries.len(), 800, "every update is in the result once");
    assert_eq!(distinct.len(), 800);
    s.cleanup(&*store).await;
}

/// The accounts of a bank test: keys that one transaction may span.
fn accounts(s: &Space, n: usize) -> Vec<Key> {
    (0..n).map(|i| s.key(&format!("acct{i}"))).collect()
}

const ACCOUNTS: usize = 10;
const OPENING: i64 = 1_000;

/// The bank test: 10 accounts, 8 tasks making random transfers for 10 s,
/// each a transaction that checks both accounts' versions and writes both
/// balances. A reader checks the total throughout (with a snapshot
/// `batch_get`, or a read confirmed by a transaction checking all ten
/// versions), and the total at the end is unchanged.
pub async fn bank_transfers_keep_the_total(store: Arc<dyn KvStore>) {
    if !store.capabilities().transactions {
        return;
    }
    let s = Space::new("race-bank");
    let report = run_bank(store.clone(), store.clone(), &s, Duration::from_secs(10), 8).await;
    eprintln!("bank on {}: {report:?}", store.backend());
    assert!(report.committed > 0, "no transfer committed: {report:?}");
    // Without faults a transfer fails only with a temporary error (a
    // backend that gave up after repeated write conflicts says so).
    assert!(report.all_temporary, "{report:?}");
    assert!(
        report.checked_totals > 0,
        "the reader never checked: {report:?}"
    );
    s.cleanup(&*store).await;
}

/// What a bank run did.
#[derive(Debug, Clone, Default)]
pub struct BankReport {
    /// Transfers committed.
    pub committed: u64,
    /// Transfers rejected because a balance changed since it was read.
    pub rejected: u64,
    /// Transfers that failed with an error (the fault suite counts them;
    /// without faults there are none).
    pub failed: u64,
    /// Consistent reads of all accounts during the run, each with the
    /// total checked.
    pub checked_totals: u64,
    /// The first errors of failed transfers (at most 3).
    pub first_errors: Vec<String>,
    /// Whether every failed transfer's error was temporary.
    pub all_temporary: bool,
}

/// Runs the bank test for `duration`: `tasks` tasks transfer on `store`,
/// one reader checks the total on `check` (the same store, or a direct one
/// when `store` goes through a fault proxy); panics if any consistent
/// read, or the end state, shows another total. Errors of single
/// transfers and reads are counted, not fatal (the fault suite cuts
/// `store`'s connections); the opening write and the final read panic.
pub(crate) async fn run_bank(
    store: Arc<dyn KvStore>,
    check: Arc<dyn KvStore>,
    s: &Space,
    duration: Duration,
    tasks: usize,
) -> BankReport {
    let keys = accounts(s, ACCOUNTS);
    let opening: Vec<Entry> = keys
        .iter()
        .map(|k| Entry::new(k.clone(), OPENING.to_string()))
        .collect();
    check.batch_set(opening).await.expect("open the accounts");
    let total = OPENING * ACCOUNTS as i64;
    let stop = Arc::new(AtomicBool::new(false));
    let (committed, rejected, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let errors: Arc<std::sync::Mutex<(Vec<String>, bool)>> =
        Arc::new(std::sync::Mutex::new((Vec::new(), true)));
    let transfers: Vec<_> = (0..tasks)
        .map(|_| {
            let (store, keys, stop) = (store.clone(), keys.clone(), stop.clone());
            let (committed, rejected, failed) =
                (committed.clone(), rejected.clone(), failed.clone());
            let errors = errors.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let from = fastrand::usize(..ACCOUNTS);
                    let to = (from + 1 + fastrand::usize(..ACCOUNTS - 1)) % ACCOUNTS;
                    match transfer(&*store, &keys[from], &keys[to], fastrand::i64(1..=100)).await {
                        Ok(true) => committed.fetch_add(1, Ordering::Relaxed),
                        Ok(false) => rejected.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            let mut errors = errors.lock().unwrap();
                            errors.1 &= e.is_temporary();
                            if errors.0.len() < 3 {
                                errors.0.push(e.to_string());
                            }
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    // Memory answers without suspending: let the reader in.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let reader = {
        let (store, keys, stop) = (check.clone(), keys.clone(), stop.clone());
        tokio::spawn(async move {
            let mut checked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some(sum)) = consistent_total(&*store, &keys).await {
                    assert_eq!(sum, total, "a reader saw the total change");
                    checked += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            checked
        })
    };
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in join_all(transfers).await {
        task.expect("transfer task panicked");
    }
    let checked_totals = reader.await.expect("reader panicked");
    let end = consistent_total(&*check, &keys)
        .await
        .expect("read the accounts")
        .expect("nothing writes at the end");
    assert_eq!(end, total, "the total changed");
    let (first_errors, all_temporary) = errors.lock().unwrap().clone();
    BankReport {
        committed: committed.load(Ordering::Relaxed),
        rejected: rejected.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        checked_totals,
        first_errors,
        all_temporary,
    }
}

async fn transfer(store: &dyn KvStore, from: &Key, to: &Key, amount: i64) -> kv_core::Result<bool> {
    let found = store
        .batch_get_versioned(&[from.clone(), to.clone()])
        .await?;
    let (Some(a), Some(b)) = (&found[0], &found[1]) else {
        panic!("an account disappeared");
    };
    let balance = |v: &bytes::Bytes| -> i64 {
        std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.parse().ok())
            .expect("a balance")
    };
    let (from_balance, to_balance) = (balance(&a.value), balance(&b.value));
    let amount = amount.min(from_balance);
    let txn = Transaction::new()
        .check_version(from.clone(), a.version.clone())
        .check_version(to.clone(), b.version.clone())
        .put(Entry::new(
            from.clone(),
            (from_balance - amount).to_string(),
        ))
        .put(Entry::new(to.clone(), (to_balance + amount).to_string()));
    Ok(store.transact(&txn).await?.is_committed())
}

/// The sum of the balances from one consistent read: a snapshot
/// `batch_get` where the store has one, else a versioned read confirmed by
/// a transaction checking every version (`None` when a transfer came in
/// between).
async fn consistent_total(store: &dyn KvStore, keys: &[Key]) -> kv_core::Result<Option<i64>> {
    let sum = |values: Vec<Option<bytes::Bytes>>| -> i64 {
        values
            .iter()
            .map(|v| {
                let v = v.as_ref().expect("an account disappeared");
                std::str::from_utf8(v).unwrap().parse::<i64>().unwrap()
            })
            .sum()
    };
    if store.capabilities().snapshot_batch_get {
        return Ok(Some(sum(store.batch_get(keys).await?)));
    }
    let found = store.batch_get_versioned(keys).await?;
    let mut confirm = Transaction::new();
    for (key, found) in keys.iter().zip(&found) {
        let version = found
            .as_ref()
            .expect("an account disappeared")
            .version
            .clone();
        confirm = confirm.check_version(key.clone(), version);
    }
    if !store.transact(&confirm).await?.is_committed() {
        return Ok(None);
    }
    Ok(Some(sum(found
        .into_iter()
        .map(|f| f.map(|f| f.value))
        .collect())))
}

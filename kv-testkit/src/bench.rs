//! Timing helpers for the backends' benchmark binaries: interleaved rounds
//! and medians, so kv and the hand-written driver calls it is compared with
//! see the same machine conditions.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// Calls of each contender before timing starts (at most).
const WARM_UP: usize = 20;

/// One contender: a closure that starts one operation.
pub type Contender<'a> = &'a dyn Fn() -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// How many times [`race`] calls each contender: the warm-up, then
/// `rounds` rounds of `ops_per_round`.
pub fn calls(rounds: usize, ops_per_round: usize) -> usize {
    ops_per_round.min(WARM_UP) + rounds * ops_per_round
}

/// Inputs built before the timing, for APIs that take them by value: a
/// contender takes one per call, so the time measures the call, not the
/// caller building its data. Falls back to cloning when used up.
#[derive(Debug)]
pub struct Stock<T: Clone> {
    template: T,
    items: std::cell::RefCell<Vec<T>>,
}

impl<T: Clone> Stock<T> {
    /// `count` clones of `template`.
    pub fn new(template: T, count: usize) -> Self {
        let items = std::cell::RefCell::new(vec![template.clone(); count]);
        Self { template, items }
    }

    /// One prepared input (a fresh clone when the stock is used up).
    pub fn take(&self) -> T {
        self.items
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| self.template.clone())
    }
}

/// The order of the contenders in `round` for [`race_paced`]: rotated by
/// one each round and reversed every other cycle, so over `2 * n` rounds
/// each contender runs in every position, after every other contender,
/// equally often.
fn round_order(round: usize, n: usize) -> Vec<usize> {
    let rotation = round % n.max(1);
    let mut order: Vec<usize> = (0..n).map(|i| (i + rotation) % n).collect();
    if (round / n.max(1)) % 2 == 1 {
        order.reverse();
    }
    order
}

/// Times `rounds` rounds of `ops_per_round` sequential calls of each
/// contender, interleaved (the order alternates every round), after a short
/// warm-up, and returns each contender's median round.
pub async fn race<const N: usize>(
    rounds: usize,
    ops_per_round: usize,
    contenders: [Contender<'_>; N],
) -> [Duration; N] {
    let alternate = |round: usize| -> Vec<usize> {
        if round.is_multiple_of(2) {
            (0..N).collect()
        } else {
            (0..N).rev().collect()
        }
    };
    timed_rounds(rounds, ops_per_round, contenders, alternate, Duration::ZERO).await
}

/// [`race`] for servers with background work of their own (etcd's group
/// commit): the order rotates so every contender takes every position
/// equally often, and each timed block starts after `pause`, so work one
/// contender's writes started on the server is not billed to the next.
pub async fn race_paced<const N: usize>(
    rounds: usize,
    ops_per_round: usize,
    pause: Duration,
    contenders: [Contender<'_>; N],
) -> [Duration; N] {
    let rotate = |round: usize| round_order(round, N);
    timed_rounds(rounds, ops_per_round, contenders, rotate, pause).await
}

async fn timed_rounds<const N: usize>(
    rounds: usize,
    ops_per_round: usize,
    contenders: [Contender<'_>; N],
    order: impl Fn(usize) -> Vec<usize>,
    pause: Duration,
) -> [Duration; N] {
    for run in &contenders {
        for _ in 0..ops_per_round.min(WARM_UP) {
            run().await;
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); N];
    for round in 0..rounds {
        for i in order(round) {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let started = Instant::now();
            for _ in 0..ops_per_round {
                contenders[i]().await;
            }
            samples[i].push(started.elapsed());
        }
    }
    let mut medians = [Duration::ZERO; N];
    for (median, mut s) in medians.iter_mut().zip(samples) {
        s.sort();
        *median = s.get(s.len() / 2).copied().unwrap_or_default();
    }
    medians
}

/// Keys per second for `ops` operations of `keys` keys in `time`.
pub fn keys_per_sec(keys: usize, ops: usize, time: Duration) -> f64 {
    (keys * ops) as f64 / time.as_secs_f64()
}

/// `kv / other` in time: below 1.0, kv was faster.
pub fn ratio(kv: Duration, other: Duration) -> f64 {
    kv.as_secs_f64() / other.as_secs_f64()
}

/// Whether `KV_BENCH_QUICK=1` asks for a short run.
pub fn quick() -> bool {
    std::env::var("KV_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Prints the header of the versions benchmarks' table.
pub fn versions_header(backend: &str, rounds: usize) {
    println!(
        "{backend} versions, counters and transactions: median of {rounds} interleaved rounds"
    );
    println!();
    println!("| op | kv ops/s | by hand ops/s | kv/hand |");
    println!("|---|---:|---:|---:|");
}

/// Prints one row `| op | kv ops/s | hand ops/s | kv/hand |` of `ops`
/// calls per round.
pub fn report_op(op: &str, ops: usize, kv: Duration, hand: Duration) {
    println!(
        "| {op} | {:.0} | {:.0} | {:.3} |",
        keys_per_sec(1, ops, kv),
        keys_per_sec(1, ops, hand),
        ratio(kv, hand),
    );
}

/// Prints one result row `| op | batch | kv keys/s | hand keys/s | kv/hand |`.
pub fn report_row(op: &str, size: usize, ops: usize, kv: Duration, hand: Duration) {
    println!(
        "| {op} | {size} | {:.0} | {:.0} | {:.3} |",
        keys_per_sec(size, ops, kv),
        keys_per_sec(size, ops, hand),
        ratio(kv, hand),
    );
}

/// Times one `batch_set`/`batch_get` of `keys` through `store` against the
/// same keys written and read with single `set`/`get` calls, and prints the
/// table. The same for every backend: it uses only the `KvStore` API.
pub async fn batch_against_single_calls(
    store: &dyn kv_core::KvStore,
    keys: &[kv_core::Key],
    value: &bytes::Bytes,
    rounds: usize,
    ops: usize,
) {
    use kv_core::{Entry, SetOptions};

    let entries: Vec<Entry> = keys
        .iter()
        .map(|k| Entry::new(k.clone(), value.clone()))
        .collect();
    let [batch_set, single_set, batch_get, single_get] = race(
        rounds,
        ops,
        [
            &|| Box::pin(async { store.batch_set(entries.clone()).await.expect("batch_set") }),
            &|| {
                Box::pin(async {
                    for k in keys {
                        store
                            .set(k, value.clone(), SetOptions::default())
                            .await
                            .expect("set");
                    }
                })
            },
            &|| Box::pin(async { drop(store.batch_get(keys).await.expect("batch_get")) }),
            &|| {
                Box::pin(async {
                    for k in keys {
                        drop(store.get(k).await.expect("get"));
                    }
                })
            },
        ],
    )
    .await;
    let n = keys.len();
    println!();
    println!("| {n} keys through kv | one batch | {n} single calls | batch speedup |");
    println!("|---|---:|---:|---:|");
    for (name, batch, single) in [
        ("set", batch_set, single_set),
        ("get", batch_get, single_get),
    ] {
        println!(
            "| {name} | {:.0} keys/s | {:.0} keys/s | {:.1}x |",
            keys_per_sec(n, ops, batch),
            keys_per_sec(n, ops, single),
            ratio(single, batch)
        );
    }
}

/// kv's side of the versioned-update row of the versions benchmarks:
/// `get_versioned`, then `write_if` at the version read, writing the value
/// read. Panics when the key is missing or the write finds it changed (a
/// benchmark has no other writer).
pub async fn kv_versioned_update(store: &dyn kv_core::KvStore, key: &kv_core::Key) {
    use kv_core::{Condition, SetOptions};

    let read = store
        .get_versioned(key)
        .await
        .expect("get_versioned")
        .expect("the benchmark's key exists");
    let written = store
        .write_if(
            key,
            Condition::Version(read.version),
            Some(read.value),
            SetOptions::default(),
        )
        .await
        .expect("write_if");
    assert!(written, "nothing else writes the benchmark's key");
}

/// kv's side of the 2-key transaction row of the versions benchmarks:
/// `batch_get_versioned` of `keys`, then `transact` checking each version
/// and putting `value` into each. Panics when it does not commit (a
/// benchmark has no other writer).
pub async fn kv_transaction(
    store: &dyn kv_core::KvStore,
    keys: &[kv_core::Key],
    value: &bytes::Bytes,
) {
    use kv_core::{Entry, Transaction};

    let found = store
        .batch_get_versioned(keys)
        .await
        .expect("batch_get_versioned");
    let mut txn = Transaction::new();
    for (key, found) in keys.iter().zip(found) {
        let version = found.expect("the benchmark's keys exist").version;
        txn = txn.check_version(key.clone(), version);
    }
    for key in keys {
        txn = txn.put(Entry::new(key.clone(), value.clone()));
    }
    let outcome = store.transact(&txn).await.expect("transact");
    assert!(
        outcome.is_committed(),
        "nothing else writes the benchmark's keys"
    );
}

#[cfg(test)]
mod tests {
    use super::round_order;

    #[test]
    fn every_contender_takes_every_position_equally_often() {
        for n in 1..=4 {
            let mut counts = vec![vec![0; n]; n];
            for round in 0..2 * n {
                for (position, contender) in round_order(round, n).into_iter().enumerate() {
                    counts[contender][position] += 1;
                }
            }
            for row in &counts {
                assert!(row.iter().all(|&c| c == row[0]), "n {n}: {counts:?}");
            }
        }
    }
}

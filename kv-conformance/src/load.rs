//! Load: many tasks of mixed operations on one store for a bounded time,
//! then a check that no write was lost. Figures, not assertions: the
//! report gives ops/s and latency percentiles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_core::{Entry, Key, KvStore, SetOptions};

/// What [`mixed_load_loses_no_write`] measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Concurrent tasks.
    pub tasks: usize,
    /// Calls made, all tasks together.
    pub ops: u64,
    /// How long the calls ran.
    pub elapsed: Duration,
    /// Median latency of one call.
    pub p50: Duration,
    /// 99th-percentile latency of one call.
    pub p99: Duration,
    /// Keys checked at the end (every one held what its task wrote last).
    pub keys_checked: usize,
}

impl LoadReport {
    /// Calls per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tasks, {} calls in {:.1} s: {:.0} ops/s, p50 {} us, p99 {} us, {} keys checked, none lost",
            self.tasks,
            self.ops,
            self.elapsed.as_secs_f64(),
            self.ops_per_sec(),
            self.p50.as_micros(),
            self.p99.as_micros(),
            self.keys_checked
        )
    }
}

/// How long the backends' load tests run: 20 s, or `KV_TEST_LOAD_SECS`.
pub fn duration() -> Duration {
    let secs = std::env::var("KV_TEST_LOAD_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

const KEYS_PER_TASK: usize = 32;

/// Runs `tasks` tasks for about `duration`, each on its own keys under
/// `prefix`: `set`, `get`, `batch_set` and `batch_get` of 4, `delete` and a
/// compare-and-swap counter, chosen at random (`seed`). Each task keeps a
/// model of its keys and checks every read against it; at the end every
/// key and counter is read back and compared. Any error or mismatch
/// panics. Removes its keys. Needs a multi-threaded runtime to be a load.
pub async fn mixed_load_loses_no_write(
    store: Arc<dyn KvStore>,
    prefix: &str,
    tasks: usize,
    duration: Duration,
    seed: u64,
) -> LoadReport {
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            let prefix = format!("{prefix}{t}/");
            tokio::spawn(run_task(store, prefix, deadline, seed ^ t as u64))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut keys_checked = 0;
    for handle in handles {
        let (mut task_latencies, checked) = match handle.await {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        latencies.append(&mut task_latencies);
        keys_checked += checked;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    LoadReport {
        tasks,
        ops: latencies.len() as u64,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
        keys_checked,
    }
}

async fn run_task(
    store: Arc<dyn KvStore>,
    prefix: String,
    deadline: Instant,
    seed: u64,
) -> (Vec<Duration>, usize) {
    let keys: Vec<Key> = (0..KEYS_PER_TASK)
        .map(|i| Key::new(format!("{prefix}{i}")).unwrap())
        .collect();
    let counter = Key::new(format!("{prefix}counter")).unwrap();
    let mut model: HashMap<usize, Bytes> = HashMap::new();
    let mut count: u64 = 0;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut latencies = Vec::new();
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let value = Bytes::from(format!("{prefix}{n}"));
        let i = rng.usize(0..KEYS_PER_TASK);
        let four: Vec<usize> = (0..4).map(|_| rng.usize(0..KEYS_PER_TASK)).collect();
        let t = Instant::now();
        match rng.u8(0..6) {
            0 => {
                store
                    .set(&keys[i], value.clone(), SetOptions::default())
                    .await
                    .unwrap_or_else(|e| fail(&prefix, "set", e));
                model.insert(i, value);
            }
            1 => {
                let got = store
                    .get(&keys[i])
                    .await
                    .unwrap_or_else(|e| fail(&prefix, "get", e));
                assert_eq!(
                    got.as_ref(),
                    model.get(&i),
                    "{}: get read another value",
                    keys[i]
                );
            }
            2 => {
                let entries = four
                    .iter()
                    .map(|&j| Entry::new(keys[j].clone(), value.clone()))
                    .collect();
                store
                    .batch_set(entries)
                    .await
                    .unwrap_or_else(|e| fail(&prefix, "batch_set", e));
                for &j in &four {
                    model.insert(j, value.clone());
                }
            }
            3 => {
                let batch: Vec<Key> = four.iter().map(|&j| keys[j].clone()).collect();
                let got = store
                    .batch_get(&batch)
                    .await
                    .unwrap_or_else(|e| fail(&prefix, "batch_get", e));
                for (&j, got) in four.iter().zip(got) {
                    assert_eq!(
                        got.as_ref(),
                        model.get(&j),
                        "{}: batch_get read another value",
                        keys[j]
                    );
                }
            }
            4 => {
                let existed = store
                    .delete(&keys[i])
                    .await
                    .unwrap_or_else(|e| fail(&prefix, "delete", e));
                assert_eq!(
                    existed,
                    model.remove(&i).is_some(),
                    "{}: delete's answer",
                    keys[i]
                );
            }
            _ => {
                let expected = (count > 0).then(|| Bytes::from(count.to_string()));
                let new = Bytes::from((count + 1).to_string());
                let swapped = store
                    .compare_and_swap(&counter, expected, Some(new), SetOptions::default())
                    .await
                    .unwrap_or_else(|e| fail(&prefix, "compare_and_swap", e));
                assert!(swapped, "{counter}: nobody else writes this counter");
                count += 1;
            }
        }
        latencies.push(t.elapsed());
    }
    let got = store
        .batch_get(&keys)
        .await
        .unwrap_or_else(|e| fail(&prefix, "the final batch_get", e));
    for (i, got) in got.into_iter().enumerate() {
        assert_eq!(got.as_ref(), model.get(&i), "{}: a write was lost", keys[i]);
    }
    let final_count = store
        .get(&counter)
        .await
        .unwrap_or_else(|e| fail(&prefix, "the final get", e));
    let want = (count > 0).then(|| Bytes::from(count.to_string()));
    assert_eq!(final_count, want, "{counter}: a swap was lost");
    let mut all = keys;
    all.push(counter);
    store
        .batch_delete(&all)
        .await
        .unwrap_or_else(|e| fail(&prefix, "cleanup", e));
    (latencies, KEYS_PER_TASK + 1)
}

fn fail<T>(prefix: &str, what: &str, e: kv_core::Error) -> T {
    panic!("{prefix}: {what} failed under load: {e}")
}

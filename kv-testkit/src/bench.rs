//! Timing helpers for the backends' benchmark binaries: interleaved rounds
//! and medians, so kv and the hand-written driver calls it is compared with
//! see the same machine conditions.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// One contender: a closure that starts one operation.
pub type Contender<'a> = &'a dyn Fn() -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Times `rounds` rounds of `ops_per_round` sequential calls of each
/// contender, interleaved (the order alternates every round), after a short
/// warm-up, and returns each contender's median round.
pub async fn race<const N: usize>(
    rounds: usize,
    ops_per_round: usize,
    contenders: [Contender<'_>; N],
) -> [Duration; N] {
    for run in &contenders {
        for _ in 0..ops_per_round.min(20) {
            run().await;
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); N];
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..N).collect()
        } else {
            (0..N).rev().collect()
        };
        for i in order {
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

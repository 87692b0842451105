//! `kv bench`: operations per second and latency percentiles of a store,
//! measured from this machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kv::{BulkWriter, Bytes, Entry, Key, KvStore, KvStoreExt, SetOptions};

use super::{Ctx, check_batch, key};
use crate::args::BenchArgs;
use crate::failure::{Failure, Outcome};
use crate::progress::Bar;
use crate::units::{show_count, show_duration};

/// The operations `--ops` may name.
const OPS: [&str; 5] = ["set", "get", "exists", "batch_set", "batch_get"];

/// Keys the bench writes and reads, at least.
const MIN_KEYS: usize = 1000;

/// One measured operation.
#[derive(Debug)]
struct Row {
    op: &'static str,
    batch: usize,
    calls: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// Runs each operation in `--ops` for `--duration` with `--concurrency`
/// calls in flight over its own keys, then removes them and prints a table.
pub(crate) async fn run(ctx: &Ctx<'_>, args: BenchArgs) -> Outcome {
    let ops = args
        .ops
        .iter()
        .map(|name| {
            OPS.iter().copied().find(|op| op == name).ok_or_else(|| {
                Failure::usage(format!("unknown op {name:?} (one of {})", OPS.join(", ")))
            })
        })
        .collect::<Outcome<Vec<&'static str>>>()?;
    if args.concurrency == 0 {
        return Err(Failure::usage("--concurrency must be at least 1"));
    }
    let store = ctx.store().await?;
    check_batch(&*store, args.batch)?;
    if args.value_size > store.capabilities().max_value_bytes {
        return Err(Failure::usage(format!(
            "--value-size {} is over this store's largest value ({} bytes)",
            args.value_size,
            store.capabilities().max_value_bytes
        )));
    }
    // A prefix of its own, so the bench never touches other keys.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let space = format!("{}{}-{nonce:x}/", args.prefix, std::process::id());
    let count = MIN_KEYS.max(args.batch * args.concurrency * 2);
    let keys: Arc<Vec<Key>> = Arc::new(
        (0..count)
            .map(|i| key(&format!("{space}{i:08}")))
            .collect::<Outcome<_>>()?,
    );
    let value = Bytes::from(vec![b'x'; args.value_size]);
    ctx.say(&format!("writing {count} keys under {space:?} first"));
    let filled = BulkWriter::new(store.clone())
        .write_iter(keys.iter().map(|k| Entry::new(k.clone(), value.clone())))
        .await
        .into_result()
        .map_err(|e| Failure::store("bench: writing its keys", &e));
    let rows = match filled {
        Ok(_) => measure_all(ctx, &store, &ops, &args, &keys, &value).await,
        Err(failure) => Err(failure),
    };
    // Removed whatever happened, and said when that fails.
    let cleared = store.clear(&space).await;
    let rows = rows?;
    cleared
        .map_err(|e| Failure::store(&format!("bench: removing its keys under {space:?}"), &e))?;
    print_table(store.backend(), &args, &rows);
    Ok(())
}

async fn measure_all(
    ctx: &Ctx<'_>,
    store: &Arc<dyn KvStore>,
    ops: &[&'static str],
    args: &BenchArgs,
    keys: &Arc<Vec<Key>>,
    value: &Bytes,
) -> Outcome<Vec<Row>> {
    let bar = Bar::timed(ctx.quiet, args.duration * ops.len() as u32);
    let mut rows = Vec::with_capacity(ops.len());
    for (i, &op) in ops.iter().enumerate() {
        let done = args.duration * i as u32;
        bar.at(done, op);
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    bar.at(done + started.elapsed(), op);
                }
            })
        };
        let row = measure(store, op, args, keys, value).await;
        ticker.abort();
        rows.push(row?);
    }
    bar.finish();
    Ok(rows)
}

/// One operation for `args.duration` from `args.concurrency` tasks.
async fn measure(
    store: &Arc<dyn KvStore>,
    op: &'static str,
    args: &BenchArgs,
    keys: &Arc<Vec<Key>>,
    value: &Bytes,
) -> Outcome<Row> {
    let batch = if op.starts_with("batch_") {
        args.batch
    } else {
        1
    };
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = tokio::task::JoinSet::new();
    let spread = keys.len() / args.concurrency;
    for task in 0..args.concurrency {
        let (store, keys, value) = (store.clone(), keys.clone(), value.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            // Each task walks the keys from its own offset.
            let mut at = task * spread;
            while Instant::now() < deadline {
                let start = at % (keys.len() - batch + 1);
                let window = &keys[start..start + batch];
                let begun = Instant::now();
                call(&*store, op, window, &value).await?;
                latencies.push(begun.elapsed());
                at += batch;
            }
            Ok::<_, kv::Error>(latencies)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let latencies = joined
            .map_err(|e| Failure::new(format!("bench task failed: {e}")))?
            .map_err(|e| Failure::store(&format!("bench {op}"), &e))?;
        all.extend(latencies);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Row {
        op,
        batch,
        calls: all.len() as u64,
        elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
    })
}

async fn call(store: &dyn KvStore, op: &str, keys: &[Key], value: &Bytes) -> kv::Result<()> {
    match op {
        "set" => {
            store
                .set(&keys[0], value.clone(), SetOptions::default())
                .await
        }
        "get" => store.get(&keys[0]).await.map(drop),
        "exists" => store.exists(&keys[0]).await.map(drop),
        "batch_set" => {
            let entries: Vec<Entry> = keys
                .iter()
                .map(|k| Entry::new(k.clone(), value.clone()))
                .collect();
            store.batch_set(entries).await
        }
        _ => store.batch_get(keys).await.map(drop),
    }
}

fn print_table(backend: &str, args: &BenchArgs, rows: &[Row]) {
    println!(
        "{backend}: {} B values, {} calls in flight, {} per op",
        args.value_size,
        args.concurrency,
        show_duration(args.duration)
    );
    println!(
        "{:<10} {:>6} {:>10} {:>10} {:>11} {:>9} {:>9}",
        "op", "batch", "calls", "calls/s", "keys/s", "p50", "p99"
    );
    for row in rows {
        let per_sec = row.calls as f64 / row.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<10} {:>6} {:>10} {:>10} {:>11} {:>9} {:>9}",
            row.op,
            row.batch,
            show_count(row.calls),
            show_count(per_sec as u64),
            show_count((per_sec * row.batch as f64) as u64),
            show_duration(row.p50),
            show_duration(row.p99)
        );
    }
}

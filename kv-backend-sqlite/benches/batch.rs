//! kv's SQLite batches against the same SQL written by hand with sqlx, in
//! one run, on one file.
//!
//! ```text
//! cargo bench -p anykv-sqlite --bench batch
//! KV_BENCH_QUICK=1 cargo bench -p anykv-sqlite --bench batch
//! ```
//!
//! For 1, 10, 100 and 1000 keys of 1 KiB it times `batch_set`, `batch_get`
//! and `batch_delete` through `SqliteStore` against exactly the statements
//! kv sends, run by hand on pools of the same shape (one writer, readers)
//! on the same file, with the durable default (`synchronous = FULL`): the
//! multi-row upsert (256 rows a statement, the rest in one more, inside
//! `BEGIN IMMEDIATE` when there are several), `IN (SELECT value FROM
//! json_each(?))` for reads and the `DELETE ... RETURNING` that counts live
//! keys; the hand-written upsert also races itself (A/A), which shows this
//! machine's noise. Then one batch of 100 against 100 single calls. Rounds
//! are interleaved; the median is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::{Bench, now};
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::{Stock, batch_against_single_calls, calls, quick, race, report_row};

const VALUE_BYTES: usize = 1024;
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(quick()));
}

/// The multi-row upsert of `rows` rows, as kv writes it.
fn upsert(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| format!("(?{}, ?{}, ?{}, ?1)", 3 * r + 2, 3 * r + 3, 3 * r + 4))
        .collect();
    format!(
        "INSERT INTO \"kv_store\" (key, value, expires_at, version) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
         expires_at = excluded.expires_at, version = excluded.version",
        values.join(", ")
    )
}

async fn run(quick: bool) {
    let bench = Bench::open().await;
    let (store, writer, readers) = (&bench.store, &bench.writer, &bench.readers);
    let rounds = if quick { 5 } else { 21 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let version = || bench.version();
    let select = format!(
        "SELECT key, CAST(value AS BLOB) FROM \"kv_store\" WHERE key IN (SELECT value FROM json_each(?1)) AND {LIVE}"
    );
    let delete = format!(
        "DELETE FROM \"kv_store\" WHERE key IN (SELECT value FROM json_each(?1)) RETURNING {LIVE}"
    );

    println!(
        "kv-backend-sqlite batch benchmark: values {VALUE_BYTES} B, synchronous = FULL, median of {rounds} interleaved rounds"
    );
    println!();
    println!("| op | batch | kv keys/s | by hand keys/s | kv/hand |");
    println!("|---|---:|---:|---:|---:|");
    for size in [1usize, 10, 100, 1000] {
        let ops = (if quick { 400 } else { 3_000 } / size).clamp(5, 300);
        let keys: Vec<Key> = (0..size)
            .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
            .collect();
        let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
        let entries: Vec<Entry> = keys
            .iter()
            .map(|k| Entry::new(k.clone(), value.clone()))
            .collect();
        // By hand: statements of 256 rows, then one of the rest.
        let full = upsert(256.min(size));
        let rest = (size % 256 != 0 && size > 256).then(|| upsert(size % 256));
        let stock = Stock::new(entries.clone(), calls(rounds, ops));

        let by_hand = || async {
            let v = version();
            let mut conn = writer.acquire().await.unwrap();
            let several = size > 256;
            if several {
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            for chunk in names.chunks(256) {
                let sql = if chunk.len() == 256.min(size) {
                    &full
                } else {
                    rest.as_ref().unwrap()
                };
                let mut q = sqlx::query(sql).bind(v);
                for name in chunk {
                    q = q.bind(*name).bind(&value[..]).bind(None::<i64>);
                }
                q.execute(&mut *conn).await.unwrap();
            }
            if several {
                sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
            }
        };
        // The hand-written upsert also races itself: an A/A row, this
        // machine's noise (each call waits for an fsync).
        let [kv, hand, again] = race(
            rounds,
            ops,
            [
                &|| Box::pin(async { store.batch_set(stock.take()).await.unwrap() }),
                &|| Box::pin(by_hand()),
                &|| Box::pin(by_hand()),
            ],
        )
        .await;
        report_row("batch_set", size, ops, kv, hand);
        report_row(
            "batch_set (A/A: by hand vs by hand)",
            size,
            ops,
            again,
            hand,
        );

        let [kv, hand] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        assert_eq!(store.batch_get(&keys).await.unwrap().len(), size)
                    })
                },
                &|| {
                    Box::pin(async {
                        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(&select)
                            .bind(serde_json::to_string(&names).unwrap())
                            .bind(now())
                            .fetch_all(readers)
                            .await
                            .unwrap();
                        // Answer in input order, as batch_get does.
                        let mut found: HashMap<String, Vec<u8>> = rows.into_iter().collect();
                        let aligned: Vec<Option<Vec<u8>>> =
                            names.iter().map(|n| found.remove(*n)).collect();
                        assert_eq!(aligned.len(), size);
                    })
                },
            ],
        )
        .await;
        report_row("batch_get", size, ops, kv, hand);

        // After the first call the keys are gone: both sides then delete
        // absent keys, the same work.
        let [kv, hand] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        store.batch_delete(&keys).await.unwrap();
                    })
                },
                &|| {
                    Box::pin(async {
                        let live: Vec<bool> = sqlx::query_scalar(&delete)
                            .bind(serde_json::to_string(&names).unwrap())
                            .bind(now())
                            .fetch_all(writer)
                            .await
                            .unwrap();
                        drop(live);
                    })
                },
            ],
        )
        .await;
        report_row("batch_delete", size, ops, kv, hand);
    }

    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
        .collect();
    batch_against_single_calls(store, &keys, &value, rounds, if quick { 5 } else { 20 }).await;
}

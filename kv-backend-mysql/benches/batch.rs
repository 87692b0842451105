//! kv's MySQL batches against the same SQL written by hand with sqlx, in
//! one run against one server.
//!
//! ```text
//! cargo bench -p anykv-mysql --bench batch
//! KV_BENCH_QUICK=1 cargo bench -p anykv-mysql --bench batch
//! KV_TEST_MYSQL_URL=mysql://... cargo bench ...    # your own server
//! ```
//!
//! For 1, 10, 100 and 1000 keys of 1 KiB it times `batch_set`, `batch_get`
//! and `batch_delete` through `MysqlStore` against exactly the statements
//! kv sends (the multi-row `INSERT ... ON DUPLICATE KEY UPDATE` with a new
//! version per call, `IN (?, ...)`, the `DELETE` of live rows), run by hand
//! on a pool of the same size; each hand-written side also races itself
//! (A/A), which shows this machine's noise. Then one batch of 100 against
//! 100 single calls. Rounds are interleaved; the median is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use kv_backend_mysql::MysqlStore;
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::{Stock, batch_against_single_calls, calls, quick, race, report_row};
use sqlx::MySqlPool;

const VALUE_BYTES: usize = 1024;
const TABLE: &str = "kv_bench";
const NOW_MS: &str = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)";

fn main() {
    let server = kv_testkit::server_blocking(kv_testkit::Kind::Mysql).expect("a MySQL server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(server.url(), quick()));
}

fn list(n: usize, unit: &str) -> String {
    vec![unit; n].join(", ")
}

async fn run(url: &str, quick: bool) {
    let store = MysqlStore::builder()
        .url(url)
        .table(TABLE)
        .max_connections(4)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let pool: MySqlPool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap();
    let rounds = if quick { 5 } else { 21 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let live = format!("(expires_at IS NULL OR expires_at > {NOW_MS})");
    // The hand-written side writes versions from its own range.
    let version = AtomicI64::new(i64::MAX / 2);

    println!(
        "kv-backend-mysql batch benchmark: values {VALUE_BYTES} B, median of {rounds} interleaved rounds"
    );
    println!();
    println!("| op | batch | kv keys/s | by hand keys/s | kv/hand |");
    println!("|---|---:|---:|---:|---:|");
    for size in [1usize, 10, 100, 1000] {
        let ops = (if quick { 500 } else { 3_000 } / size).clamp(5, 300);
        let keys: Vec<Key> = (0..size)
            .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
            .collect();
        let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
        let entries: Vec<Entry> = keys
            .iter()
            .map(|k| Entry::new(k.clone(), value.clone()))
            .collect();
        // `batch_set` takes its entries by value: build them before timing.
        let stock = Stock::new(entries.clone(), calls(rounds, ops));
        let upsert = format!(
            "INSERT INTO `{TABLE}` (k, v, expires_at, version) VALUES {} \
             ON DUPLICATE KEY UPDATE v = VALUES(v), expires_at = VALUES(expires_at), \
             version = VALUES(version)",
            list(size, &format!("(?, ?, {NOW_MS} + ?, ?)"))
        );
        let select = format!(
            "SELECT k, v FROM `{TABLE}` WHERE k IN ({}) AND {live}",
            list(size, "?")
        );
        let delete = format!(
            "DELETE FROM `{TABLE}` WHERE k IN ({}) AND {live}",
            list(size, "?")
        );

        let set_by_hand = || async {
            let v = version.fetch_add(1, Ordering::Relaxed);
            let mut q = sqlx::query(&upsert);
            for name in &names {
                q = q
                    .bind(name.as_bytes())
                    .bind(&value[..])
                    .bind(None::<i64>)
                    .bind(v);
            }
            q.execute(&pool).await.unwrap();
        };
        let [kv, hand, again] = race(
            rounds,
            ops,
            [
                &|| Box::pin(async { store.batch_set(stock.take()).await.unwrap() }),
                &|| Box::pin(set_by_hand()),
                &|| Box::pin(set_by_hand()),
            ],
        )
        .await;
        report_row("batch_set", size, ops, kv, hand);
        report_row("batch_set (A/A)", size, ops, again, hand);

        let get_by_hand = || async {
            let mut q = sqlx::query_as(&select);
            for name in &names {
                q = q.bind(name.as_bytes());
            }
            let rows: Vec<(Vec<u8>, Vec<u8>)> = q.fetch_all(&pool).await.unwrap();
            // Answer in input order, as batch_get does.
            let mut found: HashMap<String, Vec<u8>> = rows
                .into_iter()
                .map(|(k, v)| (String::from_utf8(k).unwrap(), v))
                .collect();
            let aligned: Vec<Option<Vec<u8>>> = names.iter().map(|n| found.remove(*n)).collect();
            assert_eq!(aligned.len(), size);
        };
        let [kv, hand, again] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        assert_eq!(store.batch_get(&keys).await.unwrap().len(), size)
                    })
                },
                &|| Box::pin(get_by_hand()),
                &|| Box::pin(get_by_hand()),
            ],
        )
        .await;
        report_row("batch_get", size, ops, kv, hand);
        report_row("batch_get (A/A)", size, ops, again, hand);

        // After the first call the keys are gone: both sides then delete
        // absent keys, the same work.
        let delete_by_hand = || async {
            let mut q = sqlx::query(&delete);
            for name in &names {
                q = q.bind(name.as_bytes());
            }
            q.execute(&pool).await.unwrap();
        };
        let [kv, hand, again] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        store.batch_delete(&keys).await.unwrap();
                    })
                },
                &|| Box::pin(delete_by_hand()),
                &|| Box::pin(delete_by_hand()),
            ],
        )
        .await;
        report_row("batch_delete", size, ops, kv, hand);
        report_row("batch_delete (A/A)", size, ops, again, hand);
    }

    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
        .collect();
    batch_against_single_calls(&store, &keys, &value, rounds, if quick { 5 } else { 20 }).await;
    sqlx::query(&format!("DROP TABLE `{TABLE}`"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&format!("DROP TABLE `{TABLE}_meta`"))
        .execute(&pool)
        .await
        .unwrap();
}

//! kv's PostgreSQL batches against the same SQL written by hand with sqlx,
//! in one run against one server.
//!
//! ```text
//! cargo bench -p anykv-postgres --bench batch
//! KV_BENCH_QUICK=1 cargo bench -p anykv-postgres --bench batch
//! KV_TEST_POSTGRES_URL=postgres://... cargo bench ...    # your own server
//! ```
//!
//! For 1, 10, 100 and 1000 keys of 1 KiB it times `batch_set`, `batch_get`
//! and `batch_delete` through `PostgresStore` against exactly the statements
//! kv sends (the UNNEST upsert, `= ANY($1)`, the counting DELETE), run by
//! hand on a pool of the same size; then one batch of 100 against 100 single
//! calls. Rounds are interleaved; the median is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use bytes::Bytes;
use kv_backend_postgres::PostgresStore;
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::{Stock, batch_against_single_calls, calls, quick, race, report_row};
use sqlx::PgPool;

const VALUE_BYTES: usize = 1024;
const TABLE: &str = "kv_bench";

const UPSERT: &str = "INSERT INTO \"kv_bench\" (key, value, expires_at, version) \
    SELECT u.k, u.v, now() + u.ttl * interval '1 millisecond', txid_current() \
    FROM UNNEST($1::text[], $2::bytea[], $3::int8[]) AS u(k, v, ttl) \
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, \
    version = EXCLUDED.version";
const SELECT: &str = "SELECT key, value FROM \"kv_bench\" \
    WHERE key = ANY($1) AND (expires_at IS NULL OR expires_at > now())";
const DELETE: &str = "WITH d AS (DELETE FROM \"kv_bench\" WHERE key = ANY($1) RETURNING expires_at) \
    SELECT count(*) FROM d WHERE (expires_at IS NULL OR expires_at > now())";

fn main() {
    let server =
        kv_testkit::server_blocking(kv_testkit::Kind::Postgres).expect("a PostgreSQL server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(server.url(), quick()));
}

async fn run(url: &str, quick: bool) {
    let store = PostgresStore::builder()
        .url(url)
        .table(TABLE)
        .max_connections(4)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let pool: PgPool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap();
    let rounds = if quick { 5 } else { 21 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);

    println!(
        "kv-backend-postgres batch benchmark: values {VALUE_BYTES} B, median of {rounds} interleaved rounds"
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
        let values: Vec<&[u8]> = entries.iter().map(|e| &e.value[..]).collect();
        let ttls: Vec<Option<i64>> = vec![None; size];
        // `batch_set` takes its entries by value: build them before timing.
        let stock = Stock::new(entries.clone(), calls(rounds, ops));

        let [kv, hand] = race(
            rounds,
            ops,
            [
                &|| Box::pin(async { store.batch_set(stock.take()).await.unwrap() }),
                &|| {
                    Box::pin(async {
                        sqlx::query(UPSERT)
                            .bind(&names)
                            .bind(&values)
                            .bind(&ttls)
                            .execute(&pool)
                            .await
                            .unwrap();
                    })
                },
            ],
        )
        .await;
        report_row("batch_set", size, ops, kv, hand);

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
                        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(SELECT)
                            .bind(&names)
                            .fetch_all(&pool)
                            .await
                            .unwrap();
                        // Answer in input order, as batch_get does.
                        let mut found: std::collections::HashMap<String, Vec<u8>> =
                            rows.into_iter().collect();
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
                        let _: i64 = sqlx::query_scalar(DELETE)
                            .bind(&names)
                            .fetch_one(&pool)
                            .await
                            .unwrap();
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
    batch_against_single_calls(&store, &keys, &value, rounds, if quick { 5 } else { 20 }).await;
    sqlx::query(&format!("DROP TABLE \"{TABLE}\""))
        .execute(&pool)
        .await
        .unwrap();
}

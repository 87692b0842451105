//! How near the bulk writer comes to what PostgreSQL can ingest: binary
//! `COPY` of the same rows by hand (the ceiling) against kv's `BulkWriter`,
//! in one run against one server.
//!
//! ```text
//! cargo bench -p anykv-postgres --bench bulk
//! KV_BENCH_QUICK=1 cargo bench -p anykv-postgres --bench bulk
//! ```
//!
//! Each contender loads the same N fresh rows (keys `bulk:0000000`..., 100 B
//! values, no TTL) into an empty table of kv's shape (`key text COLLATE "C"
//! PRIMARY KEY, value bytea, expires_at timestamptz, version int8`),
//! truncated before each round outside the timing; rounds are interleaved
//! and the median is reported, as rows/s and as a ratio to the ceiling:
//! - COPY, 1 stream: one `COPY ... FROM STDIN (FORMAT binary)` of all rows;
//! - COPY, 4 streams: four of a quarter each, at once;
//! - kv: `BulkWriter` with its defaults (chunks of 1,000, 4 at once: each
//!   chunk one `batch_set`);
//! - kv, chunks of 10,000;
//! - by hand, staged: per chunk of 1,000, 4 at once, one transaction of
//!   binary `COPY` into a temporary table and one `INSERT ... SELECT ... ON
//!   CONFLICT DO UPDATE` from it;
//! - by hand, direct: per chunk of 1,000, 4 at once, one transaction of
//!   `SELECT txid_current()` and binary `COPY` straight into the table (what
//!   kv's `batch_set` now does for 500 entries or more; see `src/copy.rs`),
//!   and the same with a `SELECT` of the chunk's keys first;
//! - kv again, every key already in the table: the COPY fails, the upsert
//!   writes, and the next 16 chunks go to the upsert directly;
//! - kv with `copy_batches(false)` (every chunk the UNNEST upsert, as before
//!   the COPY path), on new keys and on keys already there.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kv_backend_postgres::PostgresStore;
use kv_core::{BulkWriter, Entry, Key, KvStore, KvStoreExt};
use kv_testkit::bench::quick;
use sqlx::PgPool;

const VALUE_BYTES: usize = 100;
const CONCURRENCY: usize = 4;
const CEILING: &str = "kv_bulk_ceiling";
const STORE: &str = "kv_bulk_store";
const UPSERT: &str = "kv_bulk_upsert";
const STAGED: &str = "kv_bulk_staged";
const DIRECT: &str = "kv_bulk_direct";

fn main() {
    let server =
        kv_testkit::server_blocking(kv_testkit::Kind::Postgres).expect("a PostgreSQL server");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(server.url(), quick()));
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("bulk:{i:07}")).collect()
}

/// The binary COPY stream of `names` (PostgreSQL's `PGCOPY` format): the
/// header, a tuple of four fields per row (expires_at NULL, version 1), the
/// trailer.
fn copy_data(names: &[String], value: &[u8]) -> Vec<u8> {
    copy_data_at(names, value, 1)
}

fn copy_data_at(names: &[String], value: &[u8], version: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(names.len() * (value.len() + 48) + 32);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension
    for name in names {
        out.extend_from_slice(&4i16.to_be_bytes());
        out.extend_from_slice(&(name.len() as i32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as i32).to_be_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(&(-1i32).to_be_bytes()); // expires_at NULL
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&version.to_be_bytes());
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

async fn create(pool: &PgPool, table: &str) {
    sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE TABLE \"{table}\" (key text COLLATE \"C\" PRIMARY KEY, value bytea NOT NULL, \
         expires_at timestamptz, version int8 NOT NULL DEFAULT 0)"
    ))
    .execute(pool)
    .await
    .unwrap();
}

async fn truncate(pool: &PgPool, table: &str) {
    sqlx::query(&format!("TRUNCATE \"{table}\""))
        .execute(pool)
        .await
        .unwrap();
}

async fn copy_stream(pool: &PgPool, table: &str, data: &[u8]) -> u64 {
    let mut conn = pool.acquire().await.unwrap();
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY \"{table}\" (key, value, expires_at, version) FROM STDIN (FORMAT binary)"
        ))
        .await
        .unwrap();
    for part in data.chunks(1 << 20) {
        copy.send(part).await.unwrap();
    }
    copy.finish().await.unwrap()
}

/// One chunk the staged way: a transaction of COPY into a temporary table
/// and one upsert from it.
async fn staged_chunk(pool: &PgPool, data: &[u8]) -> u64 {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS kv_stage (key text COLLATE \"C\", value bytea, \
         expires_at timestamptz, version int8) ON COMMIT DELETE ROWS",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let mut copy = tx
        .copy_in_raw("COPY kv_stage (key, value, expires_at, version) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    copy.send(data).await.unwrap();
    copy.finish().await.unwrap();
    let done = sqlx::query(&format!(
        "INSERT INTO \"{STAGED}\" (key, value, expires_at, version) \
         SELECT key, value, expires_at, version FROM kv_stage \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, \
         expires_at = EXCLUDED.expires_at, version = EXCLUDED.version"
    ))
    .execute(&mut *tx)
    .await
    .unwrap()
    .rows_affected();
    tx.commit().await.unwrap();
    done
}

/// One chunk straight into the table: a transaction of `SELECT
/// txid_current()` (the version kv's upsert gives) and one binary COPY; with
/// `probe`, a `SELECT` of the chunk's keys first (a COPY fails on a key
/// that exists, so a real path must fall back to the upsert then).
async fn direct_chunk(pool: &PgPool, names: &[String], value: &[u8], probe: bool) -> u64 {
    let mut tx = pool.begin().await.unwrap();
    if probe {
        let found: Option<i32> = sqlx::query_scalar(&format!(
            "SELECT 1 FROM \"{DIRECT}\" WHERE key = ANY($1) LIMIT 1"
        ))
        .bind(names)
        .fetch_optional(&mut *tx)
        .await
        .unwrap();
        assert!(found.is_none());
    }
    let version: i64 = sqlx::query_scalar("SELECT txid_current()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let data = copy_data_at(names, value, version);
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY \"{DIRECT}\" (key, value, expires_at, version) FROM STDIN (FORMAT binary)"
        ))
        .await
        .unwrap();
    copy.send(data).await.unwrap();
    let done = copy.finish().await.unwrap();
    tx.commit().await.unwrap();
    done
}

async fn run(url: &str, quick: bool) {
    let rows = if quick { 20_000 } else { 100_000 };
    let rounds = if quick { 3 } else { 7 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(CONCURRENCY as u32)
        .connect(url)
        .await
        .unwrap();
    for table in [CEILING, STAGED, DIRECT] {
        create(&pool, table).await;
    }
    let store: Arc<dyn KvStore> = PostgresStore::builder()
        .url(url)
        .table(STORE)
        .max_connections(CONCURRENCY as u32)
        .purge_interval(None)
        .connect()
        .await
        .unwrap()
        .into_dyn();
    let upsert: Arc<dyn KvStore> = PostgresStore::builder()
        .url(url)
        .table(UPSERT)
        .max_connections(CONCURRENCY as u32)
        .purge_interval(None)
        .copy_batches(false)
        .connect()
        .await
        .unwrap()
        .into_dyn();
    let all = names(rows);
    let whole = copy_data(&all, &value);
    let quarters: Vec<Vec<u8>> = all
        .chunks(rows.div_ceil(4))
        .map(|part| copy_data(part, &value))
        .collect();
    let chunks: Vec<Vec<u8>> = all
        .chunks(1000)
        .map(|part| copy_data(part, &value))
        .collect();
    let entries: Vec<Entry> = all
        .iter()
        .map(|n| Entry::new(Key::new(n.as_str()).unwrap(), value.clone()))
        .collect();

    println!(
        "kv-backend-postgres bulk against COPY: {rows} rows of {VALUE_BYTES} B into an empty table, \
         median of {rounds} interleaved rounds"
    );
    println!();
    const N: usize = 10;
    let labels: [&str; N] = [
        "COPY binary, 1 stream (the ceiling)",
        "COPY binary, 4 streams",
        "kv BulkWriter, defaults (chunks of 1,000, 4 at once)",
        "kv BulkWriter, chunks of 10,000",
        "by hand: per chunk of 1,000, COPY into a temp table + one upsert, 4 at once",
        "by hand: per chunk of 1,000, SELECT txid + COPY straight into the table, 4 at once",
        "by hand: as above with a SELECT of the chunk's keys first",
        "kv BulkWriter, defaults, every key already there (overwrites)",
        "kv BulkWriter, defaults, copy_batches(false): the upsert alone (before)",
        "kv BulkWriter, copy_batches(false), every key already there (before)",
    ];
    let name_chunks: Vec<&[String]> = all.chunks(1000).collect();
    let mut times: [Vec<Duration>; N] = Default::default();
    for round in 0..rounds {
        for i in 0..N {
            let c = (i + round) % N;
            let table = match c {
                0 | 1 => CEILING,
                2 | 3 | 7 => STORE,
                8 | 9 => UPSERT,
                4 => STAGED,
                _ => DIRECT,
            };
            truncate(&pool, table).await;
            if c == 7 || c == 9 {
                let report = BulkWriter::new(if c == 7 { &store } else { &upsert }.clone())
                    .write_iter(entries.iter().cloned())
                    .await;
                assert!(report.is_complete(), "{report:?}");
            }
            let started = Instant::now();
            let loaded = match c {
                0 => copy_stream(&pool, CEILING, &whole).await,
                1 => futures::future::join_all(
                    quarters.iter().map(|q| copy_stream(&pool, CEILING, q)),
                )
                .await
                .into_iter()
                .sum(),
                2 | 3 | 7 | 8 | 9 => {
                    let chunk = if c == 3 { 10_000 } else { 1000 };
                    let target = if c >= 8 { &upsert } else { &store };
                    let report = BulkWriter::new(target.clone())
                        .chunk_size(chunk)
                        .concurrency(CONCURRENCY)
                        .write_iter(entries.iter().cloned())
                        .await;
                    assert!(report.is_complete(), "{report:?}");
                    report.keys_written
                }
                5 | 6 => {
                    futures::stream::iter(name_chunks.iter())
                        .map(|names| direct_chunk(&pool, names, &value, c == 6))
                        .buffer_unordered(CONCURRENCY)
                        .fold(0, |sum, n| async move { sum + n })
                        .await
                }
                _ => {
                    futures::stream::iter(chunks.iter())
                        .map(|data| staged_chunk(&pool, data))
                        .buffer_unordered(CONCURRENCY)
                        .fold(0, |sum, n| async move { sum + n })
                        .await
                }
            };
            times[c].push(started.elapsed());
            assert_eq!(loaded, rows as u64, "{}", labels[c]);
        }
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let medians: Vec<Duration> = times.iter_mut().map(median).collect();
    println!("| path | rows/s | ratio to the ceiling |");
    println!("|---|---:|---:|");
    for (label, time) in labels.iter().zip(&medians) {
        println!(
            "| {label} | {:.0} | {:.2} |",
            rows as f64 / time.as_secs_f64(),
            medians[0].as_secs_f64() / time.as_secs_f64()
        );
    }
    truncate(&pool, CEILING).await;
    truncate(&pool, STAGED).await;
    truncate(&pool, DIRECT).await;
    store.clear("bulk:").await.unwrap();
    upsert.clear("bulk:").await.unwrap();
}

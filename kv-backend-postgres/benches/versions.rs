//! kv's versions, counters and transactions on PostgreSQL against the same
//! SQL written by hand with sqlx, in one run against one server.
//!
//! ```text
//! cargo bench -p anykv-postgres --bench versions
//! KV_BENCH_QUICK=1 cargo bench -p anykv-postgres --bench versions
//! ```
//!
//! - `increment`: `Kv::increment` against kv's upsert `RETURNING` run by hand;
//! - `versioned update`: `get_versioned` then `write_if` at that version,
//!   against a `SELECT value, version` then an `UPDATE ... WHERE version`;
//! - `2-key transaction`: `transact` checking two versions and writing both
//!   keys, against the same transaction by hand (placeholders, `SELECT ...
//!   FOR UPDATE` in key order, the checks, the upsert, `COMMIT`).
//!
//! Rounds are interleaved; the median round is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use bytes::Bytes;
use kv_backend_postgres::PostgresStore;
use kv_core::{Key, KvStore, SetOptions};
use kv_testkit::bench::{
    kv_transaction, kv_versioned_update, quick, race, report_op, versions_header,
};
use sqlx::PgPool;

const TABLE: &str = "kv_bench_versions";

const INCREMENT: &str = "INSERT INTO \"kv_bench_versions\" AS cur (key, value, expires_at, version) \
    VALUES ($1, convert_to($2::int8::text, 'UTF8'), NULL, txid_current()) \
    ON CONFLICT (key) DO UPDATE SET \
    value = CASE WHEN (cur.expires_at IS NULL OR cur.expires_at > now()) THEN convert_to(((CASE WHEN \
    convert_from(cur.value, 'UTF8') ~ '^(0|-?[1-9][0-9]{0,18})$' THEN CASE WHEN \
    convert_from(cur.value, 'UTF8')::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 \
    THEN convert_from(cur.value, 'UTF8')::int8 END END) + $2::int8)::text, 'UTF8') ELSE EXCLUDED.value END, \
    expires_at = CASE WHEN (cur.expires_at IS NULL OR cur.expires_at > now()) THEN cur.expires_at \
    ELSE EXCLUDED.expires_at END, version = EXCLUDED.version RETURNING value";
const READ: &str = "SELECT value, version FROM \"kv_bench_versions\" \
    WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())";
const UPDATE: &str = "UPDATE \"kv_bench_versions\" SET value = $2, expires_at = NULL, version = txid_current() \
    WHERE key = $1 AND version = $3 AND (expires_at IS NULL OR expires_at > now())";
const PLACEHOLDERS: &str = "INSERT INTO \"kv_bench_versions\" (key, value, expires_at, version) \
    SELECT k, '\\x'::bytea, '-infinity'::timestamptz, 0 FROM UNNEST($1::text[]) AS k \
    ON CONFLICT (key) DO NOTHING";
const LOCK: &str = "SELECT key, version, (expires_at IS NULL OR expires_at > now()) \
    FROM \"kv_bench_versions\" WHERE key = ANY($1) ORDER BY key FOR UPDATE";
const UPSERT: &str = "INSERT INTO \"kv_bench_versions\" (key, value, expires_at, version) \
    SELECT u.k, u.v, now() + u.ttl * interval '1 millisecond', txid_current() \
    FROM UNNEST($1::text[], $2::bytea[], $3::int8[]) AS u(k, v, ttl) \
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, \
    version = EXCLUDED.version";

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
    let ops = if quick { 100 } else { 300 };
    versions_header("kv-backend-postgres", rounds);

    let (kv_counter, hand_counter) = (key("counter:kv"), key("counter:hand"));
    let [kv, hand] = race(
        rounds,
        ops,
        [
            &|| {
                Box::pin(async {
                    store
                        .increment(&kv_counter, 1, SetOptions::default())
                        .await
                        .unwrap();
                })
            },
            &|| {
                Box::pin(async {
                    let stored: Vec<u8> = sqlx::query_scalar(INCREMENT)
                        .bind(hand_counter.as_str())
                        .bind(1i64)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    let _: i64 = std::str::from_utf8(&stored).unwrap().parse().unwrap();
                })
            },
        ],
    )
    .await;
    report_op("increment", ops, kv, hand);

    let value = Bytes::from(vec![b'x'; 100]);
    let (kv_doc, hand_doc) = (key("doc:kv"), key("doc:hand"));
    for k in [&kv_doc, &hand_doc] {
        store
            .set(k, value.clone(), SetOptions::default())
            .await
            .unwrap();
    }
    let [kv, hand] = race(
        rounds,
        ops,
        [&|| Box::pin(kv_versioned_update(&store, &kv_doc)), &|| {
            Box::pin(async {
                let (old, version): (Vec<u8>, i64) = sqlx::query_as(READ)
                    .bind(hand_doc.as_str())
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                let done = sqlx::query(UPDATE)
                    .bind(hand_doc.as_str())
                    .bind(&old[..])
                    .bind(version)
                    .execute(&pool)
                    .await
                    .unwrap();
                assert_eq!(done.rows_affected(), 1);
            })
        }],
    )
    .await;
    report_op(
        "versioned update (read, then write at the version)",
        ops,
        kv,
        hand,
    );

    let kv_pair = [key("pair:kv:a"), key("pair:kv:b")];
    let hand_pair = [key("pair:hand:a"), key("pair:hand:b")];
    for k in kv_pair.iter().chain(&hand_pair) {
        store
            .set(k, value.clone(), SetOptions::default())
            .await
            .unwrap();
    }
    let [kv, hand] = race(
        rounds,
        ops,
        [
            &|| Box::pin(kv_transaction(&store, &kv_pair, &value)),
            &|| {
                Box::pin(async {
                    let names: Vec<&str> = hand_pair.iter().map(Key::as_str).collect();
                    let read: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT key, version FROM \"kv_bench_versions\" WHERE key = ANY($1) \
                         AND (expires_at IS NULL OR expires_at > now())",
                    )
                    .bind(&names)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                    let mut tx = pool.begin().await.unwrap();
                    sqlx::query(PLACEHOLDERS)
                        .bind(&names)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    let locked: Vec<(String, i64, bool)> = sqlx::query_as(LOCK)
                        .bind(&names)
                        .fetch_all(&mut *tx)
                        .await
                        .unwrap();
                    let held = locked.iter().all(|(k, v, live)| {
                        *live && read.iter().any(|(rk, rv)| rk == k && rv == v)
                    });
                    assert!(held);
                    let values: Vec<&[u8]> = vec![&value[..]; 2];
                    let ttls: Vec<Option<i64>> = vec![None; 2];
                    sqlx::query(UPSERT)
                        .bind(&names)
                        .bind(&values)
                        .bind(&ttls)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                })
            },
        ],
    )
    .await;
    report_op(
        "2-key transaction (read both versions, check, write both)",
        ops,
        kv,
        hand,
    );

    sqlx::query(&format!("DROP TABLE \"{TABLE}\""))
        .execute(&pool)
        .await
        .unwrap();
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

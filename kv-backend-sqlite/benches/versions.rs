//! kv's versions, counters and transactions on SQLite against the same
//! SQL written by hand with sqlx, in one run, on one file.
//!
//! ```text
//! cargo bench -p anykv-sqlite --bench versions
//! KV_BENCH_QUICK=1 cargo bench -p anykv-sqlite --bench versions
//! ```
//!
//! - `increment`: `increment` against `BEGIN IMMEDIATE`, a read of the
//!   counter, the sum written, `COMMIT`;
//! - `versioned update`: `get_versioned` then `write_if` at that version,
//!   against a `SELECT value, version` then an `UPDATE ... WHERE version`;
//! - `2-key transaction`: `transact` checking two versions and writing both
//!   keys, against the same transaction by hand (`BEGIN IMMEDIATE`, the
//!   checked rows read, the checks, the two-row upsert, `COMMIT`).
//!
//! Both sides write with `synchronous = FULL`. Rounds are interleaved; the
//! median round is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

mod common;

use bytes::Bytes;
use common::{Bench, now};
use kv_core::{Key, KvStore, SetOptions};
use kv_testkit::bench::{
    kv_transaction, kv_versioned_update, quick, race, report_op, versions_header,
};

const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";
const UPSERT: &str = "INSERT INTO \"kv_store\" (key, value, expires_at, version) VALUES (?1, ?2, ?3, ?4) \
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, \
    version = excluded.version";
const UPSERT_2: &str = "INSERT INTO \"kv_store\" (key, value, expires_at, version) \
    VALUES (?2, ?3, ?4, ?1), (?5, ?6, ?7, ?1) \
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, \
    version = excluded.version";

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(quick()));
}

async fn run(quick: bool) {
    let bench = Bench::open().await;
    let (store, writer, readers) = (&bench.store, &bench.writer, &bench.readers);
    let rounds = if quick { 5 } else { 21 };
    let ops = if quick { 100 } else { 300 };
    let version = || bench.version();
    versions_header("kv-backend-sqlite", rounds);

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
                    let v = version();
                    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.unwrap();
                    let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(
                        "SELECT CAST(value AS BLOB), expires_at FROM \"kv_store\" WHERE key = ?1",
                    )
                    .bind(hand_counter.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .unwrap();
                    let old: i64 = row.map_or(0, |(v, _)| {
                        std::str::from_utf8(&v).unwrap().parse().unwrap()
                    });
                    sqlx::query(UPSERT)
                        .bind(hand_counter.as_str())
                        .bind((old + 1).to_string().into_bytes())
                        .bind(None::<i64>)
                        .bind(v)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
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
        [&|| Box::pin(kv_versioned_update(store, &kv_doc)), &|| {
            Box::pin(async {
                let (old, at): (Vec<u8>, i64) = sqlx::query_as(&format!(
                    "SELECT CAST(value AS BLOB), version FROM \"kv_store\" WHERE key = ?1 AND {LIVE}"
                ))
                .bind(hand_doc.as_str())
                .bind(now())
                .fetch_one(readers)
                .await
                .unwrap();
                let done = sqlx::query(&format!(
                    "UPDATE \"kv_store\" SET value = ?3, expires_at = ?4, version = ?5 \
                     WHERE key = ?1 AND version = ?6 AND {LIVE}"
                ))
                .bind(hand_doc.as_str())
                .bind(now())
                .bind(&old[..])
                .bind(None::<i64>)
                .bind(version())
                .bind(at)
                .execute(writer)
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
    let names: Vec<&str> = hand_pair.iter().map(Key::as_str).collect();
    let json = serde_json::to_string(&names).unwrap();
    let [kv, hand] = race(
        rounds,
        ops,
        [
            &|| Box::pin(kv_transaction(store, &kv_pair, &value)),
            &|| {
                Box::pin(async {
                    let read: Vec<(String, i64)> = sqlx::query_as(&format!(
                        "SELECT key, version FROM \"kv_store\" \
                         WHERE key IN (SELECT value FROM json_each(?1)) AND {LIVE}"
                    ))
                    .bind(&json)
                    .bind(now())
                    .fetch_all(readers)
                    .await
                    .unwrap();
                    let v = version();
                    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.unwrap();
                    let locked: Vec<(String, i64, bool)> = sqlx::query_as(&format!(
                        "SELECT key, version, {LIVE} FROM \"kv_store\" \
                         WHERE key IN (SELECT value FROM json_each(?1))"
                    ))
                    .bind(&json)
                    .bind(now())
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
                    let held = locked.iter().all(|(k, v, live)| {
                        *live && read.iter().any(|(rk, rv)| rk == k && rv == v)
                    });
                    assert!(held && locked.len() == 2);
                    sqlx::query(UPSERT_2)
                        .bind(v)
                        .bind(names[0])
                        .bind(&value[..])
                        .bind(None::<i64>)
                        .bind(names[1])
                        .bind(&value[..])
                        .bind(None::<i64>)
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
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

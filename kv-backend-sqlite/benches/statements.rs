//! How kv's SQLite statements were chosen: the same work two ways, timed
//! against each other on one file (interleaved rounds, medians), with the
//! durable default (`synchronous = FULL`).
//!
//! ```text
//! cargo bench -p anykv-sqlite --bench statements
//! ```
//!
//! - reads of 10, 100 and 1000 keys: one JSON array parameter read with
//!   `key IN (SELECT value FROM json_each(?))` (what kv sends) against an
//!   `IN (?, ?, ...)` list of one parameter per key;
//! - writes of 10, 100 and 256 rows: one multi-row upsert (what kv sends)
//!   against one single-row upsert per row in one `BEGIN IMMEDIATE`
//!   transaction (the classic prepared-statement loop).

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

mod common;
use common::{Bench, now};
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::race;
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let bench = Bench::open().await;
        let (writer, readers) = (&bench.writer, &bench.readers);
        let value = bytes::Bytes::from(vec![b'x'; 1024]);
        println!("| size | reads: json_each keys/s | reads: IN (?, ...) keys/s | json/in | writes: one multi-row upsert keys/s | writes: single-row upserts in one txn keys/s | multi/singles |");
        for size in [10usize, 100, 1000] {
            let keys: Vec<Key> = (0..size).map(|i| Key::new(format!("k{i:05}")).unwrap()).collect();
            bench.store.batch_set(keys.iter().map(|k| Entry::new(k.clone(), value.clone())).collect()).await.unwrap();
            let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
            let in_list = format!("SELECT key, CAST(value AS BLOB) FROM \"kv_store\" WHERE key IN ({}) AND (expires_at IS NULL OR expires_at > ?1)",
                (0..size).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(", "));
            let ops = (3000 / size).max(5);
            let [json, inl] = race(11, ops, [
                &|| Box::pin(async {
                    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT key, CAST(value AS BLOB) FROM \"kv_store\" WHERE key IN (SELECT value FROM json_each(?1)) AND (expires_at IS NULL OR expires_at > ?2)")
                        .bind(serde_json::to_string(&names).unwrap()).bind(now()).fetch_all(readers).await.unwrap();
                    assert_eq!(rows.len(), size);
                }),
                &|| Box::pin(async {
                    let mut q = sqlx::query_as(&in_list).bind(now());
                    for n in &names { q = q.bind(*n); }
                    let rows: Vec<(String, Vec<u8>)> = q.fetch_all(readers).await.unwrap();
                    assert_eq!(rows.len(), size);
                }),
            ]).await;
            let wsize = size.min(256);
            let multi = format!("INSERT INTO \"kv_store\" (key, value, expires_at, version) VALUES {} ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = excluded.version",
                (0..wsize).map(|r| format!("(?{}, ?{}, ?{}, ?1)", 3 * r + 2, 3 * r + 3, 3 * r + 4)).collect::<Vec<_>>().join(", "));
            let single = "INSERT INTO \"kv_store\" (key, value, expires_at, version) VALUES (?2, ?3, ?4, ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = excluded.version";
            let wnames = &names[..wsize];
            let [m, s] = race(11, (ops / 4).max(5), [
                &|| Box::pin(async {
                    let v = bench.version();
                    let mut q = sqlx::query(&multi).bind(v);
                    for n in wnames { q = q.bind(*n).bind(&value[..]).bind(None::<i64>); }
                    q.execute(writer).await.unwrap();
                }),
                &|| Box::pin(async {
                    let v = bench.version();
                    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.unwrap();
                    for n in wnames {
                        sqlx::query(single).bind(v).bind(*n).bind(&value[..]).bind(None::<i64>).execute(&mut *tx).await.unwrap();
                    }
                    tx.commit().await.unwrap();
                }),
            ]).await;
            let rate = |n: usize, ops: usize, t: std::time::Duration| (n * ops) as f64 / t.as_secs_f64();
            println!("| {size} | {:.0} | {:.0} | {:.3} | {:.0} ({wsize} rows) | {:.0} | {:.3} |",
                rate(size, ops, json), rate(size, ops, inl), json.as_secs_f64() / inl.as_secs_f64(),
                rate(wsize, (ops / 4).max(5), m), rate(wsize, (ops / 4).max(5), s), m.as_secs_f64() / s.as_secs_f64());
        }
    });
}

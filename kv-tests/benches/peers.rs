//! kv against Apache OpenDAL, its closest Rust peer, on the same Redis,
//! PostgreSQL and etcd servers, in one process, one run.
//!
//! ```text
//! cargo bench -p kv-tests --features redis,postgres,etcd,mongo --bench peers
//! KV_BENCH_QUICK=1 cargo bench -p kv-tests --features redis,postgres,etcd,mongo --bench peers
//! ```
//!
//! Workloads, 1 KiB values unless said (ratio = OpenDAL time / kv time:
//! above 1, kv is faster):
//! - one `set` / one `get` (OpenDAL `write` / `read`), sequential calls;
//! - 100 writes: kv's `batch_set` of 100 against OpenDAL's 100 `write`s at
//!   once (it has no batch write); 100 reads likewise (`batch_get`);
//! - bulk: 100,000 entries of 100 B (20,000 quick): kv's `BulkWriter` with
//!   its defaults against OpenDAL's `write`s 64 at once;
//! - list 10,000 keys under a prefix: kv's `list_stream` against OpenDAL's
//!   `list`, where OpenDAL can list (etcd; its Redis and PostgreSQL
//!   services cannot).
//!
//! What each side does per call (read from OpenDAL 0.59.5's source):
//! OpenDAL's Redis and etcd services hand out connections from a pool
//! (10 for Redis, 64 for etcd) that checks each connection it hands out
//! with a `PING` (Redis) or a `Status` call (etcd): a second round trip per
//! call. Its PostgreSQL service uses a sqlx pool (10 connections), like
//! kv's (10). kv's Redis store is one multiplexed connection; its etcd
//! store one channel.
//!
//! Interleaved rounds (`kv_testkit::bench::race`); the median round is
//! reported. The bulk and list rows are the median of 3 runs each. Each
//! side has keys of its own (OpenDAL's root is `/od`: kv's etcd values
//! carry their expiry, which OpenDAL's raw values do not), and removes them.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use kv::{BulkWriter, Entry, Key, KvStore, KvStoreExt};
use kv_testkit::bench::{Stock, calls, quick, race};
use opendal::Operator;

const VALUE_BYTES: usize = 1024;
const BULK_VALUE_BYTES: usize = 100;
const OPENDAL_BULK_CONCURRENCY: usize = 64;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(quick()));
}

async fn run(quick: bool) {
    let redis = kv_testkit::server_blocking(kv_testkit::Kind::Redis).expect("Redis");
    let postgres = kv_testkit::server_blocking(kv_testkit::Kind::Postgres).expect("PostgreSQL");
    let etcd = kv_testkit::server_blocking(kv_testkit::Kind::Etcd).expect("etcd");
    let rounds = if quick { 5 } else { 21 };
    println!(
        "kv against OpenDAL 0.59.5, one process, median of {rounds} interleaved rounds; \
         ratio = OpenDAL time / kv time (above 1: kv is faster)"
    );
    println!();
    println!(
        "| server | one set | one get | 100 writes (OpenDAL concurrent) | 100 reads (concurrent) | bulk x 100 B | list 10k keys |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");

    let op = Operator::new(
        opendal::services::Redis::default()
            .endpoint(redis.url())
            .root("/od"),
    )
    .unwrap();
    let store = kv::connect_store(&redis.kv_url()).await.unwrap();
    compare("Redis", store, op, rounds, quick).await;

    sqlx_table(postgres.url()).await;
    let op = Operator::new(
        opendal::services::Postgresql::default()
            .connection_string(postgres.url())
            .table("opendal_peers")
            .key_field("key")
            .value_field("value")
            .root("/od"),
    )
    .unwrap();
    let store = kv::connect_store(&postgres.kv_url()).await.unwrap();
    compare("PostgreSQL", store, op, rounds, quick).await;
    drop_table(postgres.url()).await;

    let op = Operator::new(
        opendal::services::Etcd::default()
            .endpoints(etcd.url())
            .root("/od"),
    )
    .unwrap();
    let store = kv::connect_store(&etcd.kv_url()).await.unwrap();
    compare("etcd", store, op, rounds, quick).await;
}

/// OpenDAL's PostgreSQL service needs its table made beforehand.
async fn sqlx_table(url: &str) {
    use kv::postgres::sqlx;
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS opendal_peers (key text PRIMARY KEY, value bytea NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
}

async fn drop_table(url: &str) {
    use kv::postgres::sqlx;
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query("DROP TABLE opendal_peers")
        .execute(&pool)
        .await
        .unwrap();
}

fn keys(prefix: &str, n: usize) -> Vec<Key> {
    (0..n)
        .map(|i| Key::new(format!("{prefix}{i:06}")).unwrap())
        .collect()
}

async fn compare(server: &str, store: Arc<dyn KvStore>, op: Operator, rounds: usize, quick: bool) {
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let ops = if quick { 200 } else { 1000 };
    let one = keys("peers/one/", 1);
    let path = one[0].as_str().to_owned();
    let mut cells = Vec::new();

    let [kv_t, od_t] = race(
        rounds,
        ops,
        [
            &|| {
                Box::pin(async {
                    store
                        .set(&one[0], value.clone(), Default::default())
                        .await
                        .unwrap()
                })
            },
            &|| Box::pin(async { drop(op.write(&path, value.clone()).await.unwrap()) }),
        ],
    )
    .await;
    cells.push(ratio(od_t, kv_t));

    let [kv_t, od_t] = race(
        rounds,
        ops,
        [
            &|| Box::pin(async { assert!(store.get(&one[0]).await.unwrap().is_some()) }),
            &|| Box::pin(async { assert_eq!(op.read(&path).await.unwrap().len(), VALUE_BYTES) }),
        ],
    )
    .await;
    cells.push(ratio(od_t, kv_t));

    let hundred = keys("peers/batch/", 100);
    let paths: Vec<String> = hundred.iter().map(|k| k.as_str().to_owned()).collect();
    let batch_ops = (ops / 10).max(20);
    let entries = Stock::new(
        hundred
            .iter()
            .map(|k| Entry::new(k.clone(), value.clone()))
            .collect::<Vec<Entry>>(),
        calls(rounds, batch_ops),
    );
    let [kv_t, od_t] = race(
        rounds,
        batch_ops,
        [
            &|| Box::pin(async { store.batch_set(entries.take()).await.unwrap() }),
            &|| {
                Box::pin(async {
                    futures::future::try_join_all(paths.iter().map(|p| op.write(p, value.clone())))
                        .await
                        .unwrap();
                })
            },
        ],
    )
    .await;
    cells.push(ratio(od_t, kv_t));

    let [kv_t, od_t] = race(
        rounds,
        batch_ops,
        [
            &|| Box::pin(async { assert_eq!(store.batch_get(&hundred).await.unwrap().len(), 100) }),
            &|| {
                Box::pin(async {
                    let got = futures::future::try_join_all(paths.iter().map(|p| op.read(p)))
                        .await
                        .unwrap();
                    assert_eq!(got.len(), 100);
                })
            },
        ],
    )
    .await;
    cells.push(ratio(od_t, kv_t));

    let bulk_n = if quick { 20_000 } else { 100_000 };
    cells.push(bulk(&store, &op, bulk_n).await);
    cells.push(list(&store, &op, 10_000).await);
    println!("| {server} | {} |", cells.join(" | "));

    store.clear("peers/").await.unwrap();
    let written: Vec<&String> = std::iter::once(&path).chain(&paths).collect();
    delete_all(&op, written).await;
}

/// Deletes what OpenDAL wrote, 64 at once (not timed).
async fn delete_all(op: &Operator, paths: impl IntoIterator<Item = &String>) {
    futures::stream::iter(paths)
        .map(|p| op.delete(p))
        .buffer_unordered(OPENDAL_BULK_CONCURRENCY)
        .try_for_each(|()| async { Ok(()) })
        .await
        .unwrap();
}

fn ratio(opendal: Duration, kv: Duration) -> String {
    format!("{:.2}", opendal.as_secs_f64() / kv.as_secs_f64())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// `n` entries of 100 B: kv's `BulkWriter` (defaults) against OpenDAL's
/// `write`s, 64 at once; each side loads fresh keys, 3 runs, median.
async fn bulk(store: &Arc<dyn KvStore>, op: &Operator, n: usize) -> String {
    let value = Bytes::from(vec![b'b'; BULK_VALUE_BYTES]);
    let (mut kv_times, mut od_times) = (Vec::new(), Vec::new());
    for run in 0..3 {
        let keys = keys(&format!("peers/bulk{run}/"), n);
        let started = Instant::now();
        let report = BulkWriter::new(store.clone())
            .write_iter(keys.iter().map(|k| Entry::new(k.clone(), value.clone())))
            .await;
        assert!(report.is_complete(), "{report:?}");
        kv_times.push(started.elapsed());

        let paths: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
        let started = Instant::now();
        futures::stream::iter(paths.iter())
            .map(|p| op.write(p, value.clone()))
            .buffer_unordered(OPENDAL_BULK_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await
            .unwrap();
        od_times.push(started.elapsed());
        delete_all(op, &paths).await;
        store.clear(&format!("peers/bulk{run}/")).await.unwrap();
    }
    ratio(median(od_times), median(kv_times))
}

/// Lists `n` keys under a prefix both ways (3 runs, median); OpenDAL's
/// Redis and PostgreSQL services cannot list.
async fn list(store: &Arc<dyn KvStore>, op: &Operator, n: usize) -> String {
    if !op.info().capability().list {
        return "OpenDAL: unsupported".to_owned();
    }
    let keys = keys("peers/list/", n);
    let value = Bytes::from_static(b"v");
    let paths: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    futures::stream::iter(paths.iter())
        .map(|p| op.write(p, value.clone()))
        .buffer_unordered(OPENDAL_BULK_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
        .unwrap();
    for chunk in keys.chunks(store.capabilities().max_batch_ops.unwrap_or(1000).min(1000)) {
        store
            .batch_set(
                chunk
                    .iter()
                    .map(|k| Entry::new(k.clone(), value.clone()))
                    .collect(),
            )
            .await
            .unwrap();
    }
    let (mut kv_times, mut od_times) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let started = Instant::now();
        let listed: Vec<Key> = store
            .list_stream("peers/list/")
            .try_collect()
            .await
            .unwrap();
        assert_eq!(listed.len(), n);
        kv_times.push(started.elapsed());
        let started = Instant::now();
        let listed = op.list("peers/list/").await.unwrap();
        assert!(listed.len() >= n, "OpenDAL listed {}", listed.len());
        od_times.push(started.elapsed());
    }
    delete_all(op, &paths).await;
    ratio(median(od_times), median(kv_times))
}

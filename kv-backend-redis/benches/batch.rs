//! kv's Redis batches against the same work done by hand with redis-rs, in
//! one run against one server.
//!
//! ```text
//! cargo bench -p anykv-redis --bench batch          # full run
//! KV_BENCH_QUICK=1 cargo bench -p anykv-redis --bench batch
//! KV_TEST_REDIS_URL=redis://host:6379 cargo bench ...    # your own server
//! cargo bench -p anykv-redis --bench batch -- plain      # only the store without the index
//! ```
//!
//! For each batch size (1, 10, 100, 1000 keys, 1 KiB values) it times:
//! - kv: `batch_set`, `batch_get`, `batch_delete` through `RedisStore`;
//! - (a) by hand: exactly the commands kv sends (MULTI, MSET (SET for one
//!   key), one ZADD to the index (with its encoding member), one HSET of
//!   the keys' versions, EXEC; MGET; MULTI, UNLINK, ZREM, HDEL, EXEC),
//!   built the usual way with redis-rs's builder: kv's overhead;
//! - (b) plain: MSET / MGET / DEL without an index or versions: their
//!   cost;
//!
//! and batch-100 against 100 single `set`/`get` calls; then a store
//! without the listing index (`list_index(false)`) against plain MSET /
//! MGET / DEL by hand, with an A/A column. All contenders share
//! one connection (kv's). Rounds of each
//! contender are interleaved and the median round is reported, as keys per
//! second and as ratios (kv time / other time; 1.00 = same speed).

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use kv_backend_redis::RedisConnection;
use kv_backend_redis::{ENCODING_MEMBER, RedisStore};
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::{
    Stock, batch_against_single_calls, calls, keys_per_sec, quick, race, ratio,
};

const VALUE_BYTES: usize = 1024;
const INDEX: &[u8] = b"\0kv:index\0";
const VERSIONS: &[u8] = b"\0kv:versions\0";

/// A 16-byte version like kv's (a fixed seed and a counter).
fn version(i: usize) -> [u8; 16] {
    let mut token = [7u8; 16];
    token[8..].copy_from_slice(&(i as u64).to_be_bytes());
    token
}

struct Setup {
    store: RedisStore,
    conn: RedisConnection,
}

fn main() {
    let quick = quick();
    let server = kv_testkit::server_blocking(kv_testkit::Kind::Redis).expect("a Redis server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(server.url(), quick));
}

async fn run(url: &str, quick: bool) {
    let rounds = if quick { 5 } else { 31 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    // `-- plain`: only the store without the index.
    if std::env::args().any(|a| a == "plain") {
        without_index(url, rounds, quick, &value).await;
        return;
    }
    let store = RedisStore::builder()
        .url(url)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    // The hand-written contenders use kv's own connection: one socket for
    // all, so no contender gets a luckier one.
    let conn = store.connection();
    let setup = Setup { store, conn };

    println!(
        "kv-backend-redis batch benchmark: {url}, values {VALUE_BYTES} B, median of {rounds} interleaved rounds"
    );
    println!();
    println!(
        "| op | batch | kv keys/s | (a) by hand keys/s | (b) no index keys/s | kv/(a) | kv/(b) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for size in [1usize, 10, 100, 1000] {
        let ops = (if quick { 2_000 } else { 10_000 } / size).clamp(5, 500);
        let keys: Vec<Key> = (0..size)
            .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
            .collect();
        let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
        let entries = Stock::new(
            keys.iter()
                .map(|k| Entry::new(k.clone(), value.clone()))
                .collect::<Vec<Entry>>(),
            calls(rounds, ops),
        );

        // batch_set
        let [kv, hand, plain] = race(
            rounds,
            ops,
            [
                &|| Box::pin(async { setup.store.batch_set(entries.take()).await.unwrap() }),
                &|| {
                    Box::pin(async {
                        let mut pipe = redis::pipe();
                        pipe.atomic();
                        if size == 1 {
                            pipe.cmd("SET").arg(names[0]).arg(&value[..]).ignore();
                        } else {
                            let mset = pipe.cmd("MSET");
                            for name in &names {
                                mset.arg(*name).arg(&value[..]);
                            }
                            pipe.ignore();
                        }
                        let zadd = pipe.cmd("ZADD").arg(INDEX).arg(0).arg(ENCODING_MEMBER);
                        for name in &names {
                            zadd.arg(0).arg(*name);
                        }
                        pipe.ignore();
                        // A version per key: 16 bytes, as kv makes them.
                        let hset = pipe.cmd("HSET").arg(VERSIONS);
                        for (i, name) in names.iter().enumerate() {
                            hset.arg(*name).arg(&version(i)[..]);
                        }
                        pipe.ignore();
                        let () = pipe.query_async(&mut setup.conn.clone()).await.unwrap();
                    })
                },
                &|| {
                    Box::pin(async {
                        let mut mset = redis::cmd("MSET");
                        for name in &names {
                            mset.arg(*name).arg(&value[..]);
                        }
                        let () = mset.query_async(&mut setup.conn.clone()).await.unwrap();
                    })
                },
            ],
        )
        .await;
        report("batch_set", size, ops, kv, hand, plain);

        // batch_get (the same MGET by hand and without an index), and the
        // hand-written MGET against itself: an A/A row, this machine's noise.
        let mget_by_hand = || {
            Box::pin(async {
                let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(&names)
                    .query_async(&mut setup.conn.clone())
                    .await
                    .unwrap();
                assert_eq!(got.len(), size);
            })
        };
        let [kv, hand, again] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        assert_eq!(setup.store.batch_get(&keys).await.unwrap().len(), size)
                    })
                },
                &|| mget_by_hand(),
                &|| mget_by_hand(),
            ],
        )
        .await;
        report("batch_get", size, ops, kv, hand, hand);
        report("batch_get (A/A: (a) vs (a))", size, ops, hand, again, again);

        // batch_delete: each op deletes keys that exist, so refill outside
        // the timing is not possible per op; delete absent keys after the
        // first op instead, the same for every contender.
        let [kv, hand, plain] = race(
            rounds,
            ops,
            [
                &|| {
                    Box::pin(async {
                        setup.store.batch_delete(&keys).await.unwrap();
                    })
                },
                &|| {
                    Box::pin(async {
                        let mut pipe = redis::pipe();
                        pipe.atomic();
                        pipe.cmd("UNLINK").arg(&names);
                        pipe.cmd("ZREM").arg(INDEX).arg(&names).ignore();
                        pipe.cmd("HDEL").arg(VERSIONS).arg(&names).ignore();
                        let (_,): (u64,) = pipe.query_async(&mut setup.conn.clone()).await.unwrap();
                    })
                },
                &|| {
                    Box::pin(async {
                        let _: u64 = redis::cmd("DEL")
                            .arg(&names)
                            .query_async(&mut setup.conn.clone())
                            .await
                            .unwrap();
                    })
                },
            ],
        )
        .await;
        report("batch_delete", size, ops, kv, hand, plain);
    }

    // One batch of 100 against 100 single calls, through kv.
    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
        .collect();
    batch_against_single_calls(
        &setup.store,
        &keys,
        &value,
        rounds,
        if quick { 20 } else { 100 },
    )
    .await;
    setup.store.batch_delete(&keys).await.unwrap();
    let _: u64 = redis::cmd("DEL")
        .arg(INDEX)
        .query_async(&mut setup.conn.clone())
        .await
        .unwrap();

    without_index(url, rounds, quick, &value).await;
}

/// A store without the listing index (`list_index(false)`, its own prefix)
/// against the plain commands by hand on the same connection: MSET, MGET,
/// DEL (kv sends UNLINK: the same work for values this small). Each op's
/// hand-written contender also runs against itself: an A/A column, this
/// machine's noise.
async fn without_index(url: &str, rounds: usize, quick: bool, value: &Bytes) {
    let store = RedisStore::builder()
        .url(url)
        .key_prefix("plain:")
        .list_index(false)
        .connect()
        .await
        .unwrap();
    let conn = store.connection();
    println!();
    println!("Without the listing index (`list_index(false)`), against plain commands by hand:");
    println!();
    println!("| op | batch | kv keys/s | by hand keys/s | kv/hand | A/A (hand/hand) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for size in [1usize, 10, 100, 1000] {
        let ops = (if quick { 2_000 } else { 10_000 } / size).clamp(5, 500);
        let keys: Vec<Key> = (0..size)
            .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
            .collect();
        let names: Vec<String> = keys.iter().map(|k| format!("plain:{k}")).collect();
        let entries = Stock::new(
            keys.iter()
                .map(|k| Entry::new(k.clone(), value.clone()))
                .collect::<Vec<Entry>>(),
            calls(rounds, ops),
        );
        let mset = || {
            Box::pin(async {
                let mut mset = redis::cmd(if size == 1 { "SET" } else { "MSET" });
                for name in &names {
                    mset.arg(name).arg(&value[..]);
                }
                let () = mset.query_async(&mut conn.clone()).await.unwrap();
            })
        };
        let [kv, hand, again] = race(
            rounds,
            ops,
            [
                &|| Box::pin(async { store.batch_set(entries.take()).await.unwrap() }),
                &|| mset(),
                &|| mset(),
            ],
        )
        .await;
        report_plain("batch_set", size, ops, kv, hand, again);

        let mget = || {
            Box::pin(async {
                let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(&names)
                    .query_async(&mut conn.clone())
                    .await
                    .unwrap();
                assert_eq!(got.len(), size);
            })
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
                &|| mget(),
                &|| mget(),
            ],
        )
        .await;
        report_plain("batch_get", size, ops, kv, hand, again);

        // As above: the first op deletes, the rest find nothing, the same
        // for every contender.
        let del = || {
            Box::pin(async {
                let _: u64 = redis::cmd("DEL")
                    .arg(&names)
                    .query_async(&mut conn.clone())
                    .await
                    .unwrap();
            })
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
                &|| del(),
                &|| del(),
            ],
        )
        .await;
        report_plain("batch_delete", size, ops, kv, hand, again);
    }
}

fn report_plain(op: &str, size: usize, ops: usize, kv: Duration, hand: Duration, again: Duration) {
    println!(
        "| {op} | {size} | {:.0} | {:.0} | {:.3} | {:.3} |",
        keys_per_sec(size, ops, kv),
        keys_per_sec(size, ops, hand),
        ratio(kv, hand),
        ratio(hand, again),
    );
}

fn report(op: &str, size: usize, ops: usize, kv: Duration, hand: Duration, plain: Duration) {
    println!(
        "| {op} | {size} | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} |",
        keys_per_sec(size, ops, kv),
        keys_per_sec(size, ops, hand),
        keys_per_sec(size, ops, plain),
        ratio(kv, hand),
        ratio(kv, plain),
    );
}

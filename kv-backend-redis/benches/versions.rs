//! kv's versions, counters and transactions on Redis against the same
//! commands written by hand with redis-rs, in one run against one server.
//!
//! ```text
//! cargo bench -p anykv-redis --bench versions
//! KV_BENCH_QUICK=1 cargo bench -p anykv-redis --bench versions
//! ```
//!
//! By hand, each row runs what kv runs, written the way a careful user
//! would with the driver: Lua scripts (loaded once, sent with EVALSHA)
//! that check and write, keeping kv's index and version hash; reads in
//! MULTI/EXEC.
//!
//! - `increment`: `Kv::increment` against a script around INCRBY (and,
//!   as a floor, INCRBY alone: no index, no versions);
//! - `versioned update`: `get_versioned` then `write_if`, against MULTI GET
//!   HGET EXEC then a check-and-set script;
//! - `2-key transaction`: `batch_get_versioned` then `transact` checking
//!   both versions and writing both, against MULTI MGET HMGET EXEC then a
//!   script checking both versions and writing both.
//!
//! All contenders share kv's connection. Rounds are interleaved; the median
//! round is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use bytes::Bytes;
use kv_backend_redis::RedisStore;
use kv_core::{Key, KvStore, SetOptions};
use kv_testkit::bench::{
    kv_transaction, kv_versioned_update, quick, race, ratio, report_op, versions_header,
};
use redis::Script;

const INDEX: &[u8] = b"\0kv:index\0";
const VERSIONS: &[u8] = b"\0kv:versions\0";

/// INCRBY with kv's bookkeeping: the index, a new version, the sum as text.
const INCREMENT: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return redis.call('GET', KEYS[1])
";

/// Writes every key `KEYS[3..]` (members `ARGV[2k-1]`) if each is at the
/// version `ARGV[2k]`; the new value and version are the last two ARGV.
const CHECK_AND_SET: &str = r"
local n = #KEYS - 2
for i = 1, n do
  if redis.call('EXISTS', KEYS[2 + i]) == 0 then return 0 end
  if (redis.call('HGET', KEYS[2], ARGV[2 * i - 1]) or '') ~= ARGV[2 * i] then return 0 end
end
for i = 1, n do
  redis.call('SET', KEYS[2 + i], ARGV[2 * n + 1])
  redis.call('ZADD', KEYS[1], 0, ARGV[2 * i - 1])
  redis.call('HSET', KEYS[2], ARGV[2 * i - 1], ARGV[2 * n + 2])
end
return 1
";

fn main() {
    let server = kv_testkit::server_blocking(kv_testkit::Kind::Redis).expect("a Redis server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(server.url(), quick()));
}

/// A fresh 16-byte version, as kv makes them.
fn version(n: u64) -> [u8; 16] {
    let mut token = [9u8; 16];
    token[8..].copy_from_slice(&n.to_be_bytes());
    token
}

async fn run(url: &str, quick: bool) {
    let store = RedisStore::builder()
        .url(url)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let conn = store.connection();
    let rounds = if quick { 5 } else { 31 };
    let ops = if quick { 300 } else { 1_000 };
    let increment = Script::new(INCREMENT);
    let check_and_set = Script::new(CHECK_AND_SET);
    let counter = std::cell::Cell::new(0u64);
    let next_version = || {
        counter.set(counter.get() + 1);
        version(counter.get())
    };
    versions_header("kv-backend-redis", rounds);

    let (kv_counter, hand_counter, plain_counter) = (
        key("vbench:counter:kv"),
        key("vbench:counter:hand"),
        key("vbench:counter:plain"),
    );
    let [kv, hand, plain] = race(
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
                    let text: Vec<u8> = increment
                        .key(hand_counter.as_str())
                        .key(INDEX)
                        .key(VERSIONS)
                        .arg(hand_counter.as_str())
                        .arg(1)
                        .arg(&next_version()[..])
                        .invoke_async(&mut conn.clone())
                        .await
                        .unwrap();
                    let _: i64 = std::str::from_utf8(&text).unwrap().parse().unwrap();
                })
            },
            &|| {
                Box::pin(async {
                    let _: i64 = redis::cmd("INCRBY")
                        .arg(plain_counter.as_str())
                        .arg(1)
                        .query_async(&mut conn.clone())
                        .await
                        .unwrap();
                })
            },
        ],
    )
    .await;
    report_op("increment", ops, kv, hand);
    println!(
        "| increment against INCRBY alone (no index, no versions) | | {:.0} | {:.3} |",
        ops as f64 / plain.as_secs_f64(),
        ratio(kv, plain)
    );

    let value = Bytes::from(vec![b'x'; 100]);
    let (kv_doc, hand_doc) = (key("vbench:doc:kv"), key("vbench:doc:hand"));
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
                let (old, at): (Vec<u8>, Vec<u8>) = redis::pipe()
                    .atomic()
                    .cmd("GET")
                    .arg(hand_doc.as_str())
                    .cmd("HGET")
                    .arg(VERSIONS)
                    .arg(hand_doc.as_str())
                    .query_async(&mut conn.clone())
                    .await
                    .unwrap();
                let done: i64 = check_and_set
                    .key(INDEX)
                    .key(VERSIONS)
                    .key(hand_doc.as_str())
                    .arg(hand_doc.as_str())
                    .arg(at)
                    .arg(old)
                    .arg(&next_version()[..])
                    .invoke_async(&mut conn.clone())
                    .await
                    .unwrap();
                assert_eq!(done, 1);
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

    let kv_pair = [key("vbench:pair:kv:a"), key("vbench:pair:kv:b")];
    let hand_pair = [key("vbench:pair:hand:a"), key("vbench:pair:hand:b")];
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
                    let (_values, versions): (Vec<Option<Vec<u8>>>, Vec<Vec<u8>>) = redis::pipe()
                        .atomic()
                        .cmd("MGET")
                        .arg(&names)
                        .cmd("HMGET")
                        .arg(VERSIONS)
                        .arg(&names)
                        .query_async(&mut conn.clone())
                        .await
                        .unwrap();
                    let mut call = check_and_set.prepare_invoke();
                    call.key(INDEX).key(VERSIONS);
                    for name in &names {
                        call.key(*name);
                    }
                    for (name, at) in names.iter().zip(&versions) {
                        call.arg(*name).arg(&at[..]);
                    }
                    call.arg(&value[..]).arg(&next_version()[..]);
                    let done: i64 = call.invoke_async(&mut conn.clone()).await.unwrap();
                    assert_eq!(done, 1);
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
    let all: Vec<Key> = [kv_counter, hand_counter, plain_counter, kv_doc, hand_doc]
        .into_iter()
        .chain(kv_pair)
        .chain(hand_pair)
        .collect();
    store.batch_delete(&all).await.unwrap();
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

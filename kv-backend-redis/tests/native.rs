//! Each operation is the native command the README promises, counted by the
//! server itself (INFO commandstats): a batch is one MGET or one MULTI/EXEC,
//! never a loop of single calls. Its own test binary, so its own server and
//! no other test's traffic in the counts.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::HashMap;

use kv_backend_redis::RedisConnection;
use kv_backend_redis::RedisStore;
use kv_core::{Entry, Key, KvStore, ListOptions, SetOptions, WriteOp};

async fn stats(conn: &mut RedisConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// Runs `op` and returns how many times each command ran meanwhile,
/// leaving out the INFO calls themselves.
async fn count<F: std::future::Future<Output = ()>>(
    conn: &mut RedisConnection,
    op: F,
) -> HashMap<String, u64> {
    let before = stats(conn).await;
    op.await;
    let after = stats(conn).await;
    after
        .into_iter()
        .filter(|(name, _)| name != "info")
        .filter_map(|(name, calls)| {
            let delta = calls - before.get(&name).copied().unwrap_or(0);
            (delta > 0).then_some((name, delta))
        })
        .collect()
}

/// Entries of `keys`, the first three with a TTL of a minute.
fn mixed(keys: &[Key]) -> Vec<Entry> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let e = Entry::new(k.clone(), "t");
            if i < 3 {
                e.with_ttl(std::time::Duration::from_secs(60))
            } else {
                e
            }
        })
        .collect()
}

fn calls(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
    pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
}

/// The tests of this binary count the server's commands: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn every_operation_maps_to_its_native_commands() {
    let _serial = SERIAL.lock().await;
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let store = RedisStore::builder()
        .url(server.url())
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let mut conn = store.connection();
    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("native:{i:03}")).unwrap())
        .collect();
    let entries: Vec<Entry> = keys.iter().map(|k| Entry::new(k.clone(), "v")).collect();

    let seen = count(&mut conn, async {
        store.batch_set(entries.clone()).await.unwrap()
    })
    .await;
    assert_eq!(
        seen,
        calls(&[
            ("multi", 1),
            ("mset", 1),
            ("zadd", 1),
            ("hset", 1),
            ("exec", 1)
        ]),
        "batch_set: the versions are one HSET"
    );

    // With TTLs: SET PX per expiring entry, MSET for the rest.
    let seen = count(&mut conn, async {
        store.batch_set(mixed(&keys[..10])).await.unwrap()
    })
    .await;
    assert_eq!(
        seen,
        calls(&[
            ("multi", 1),
            ("mset", 1),
            ("set", 3),
            ("zadd", 2),
            ("hset", 1),
            ("exec", 1)
        ]),
        "batch_set with TTLs"
    );

    let seen = count(&mut conn, async {
        assert_eq!(store.batch_get(&keys).await.unwrap().len(), 100);
    })
    .await;
    assert_eq!(seen, calls(&[("mget", 1)]), "batch_get");

    let seen = count(&mut conn, async {
        assert_eq!(store.batch_get_with_ttl(&keys).await.unwrap().len(), 100);
    })
    .await;
    assert_eq!(
        seen,
        calls(&[("multi", 1), ("mget", 1), ("pttl", 100), ("exec", 1)]),
        "batch_get_with_ttl: one transaction"
    );

    let seen = count(&mut conn, async {
        let ops = vec![
            WriteOp::Put(Entry::new(keys[0].clone(), "w")),
            WriteOp::Delete(keys[1].clone()),
        ];
        store.write_batch(ops).await.unwrap();
    })
    .await;
    assert_eq!(
        seen,
        calls(&[
            ("multi", 1),
            ("set", 1),
            ("zadd", 1),
            ("hset", 1),
            ("unlink", 1),
            ("zrem", 1),
            ("hdel", 1),
            ("exec", 1)
        ]),
        "write_batch"
    );

    let seen = count(&mut conn, async {
        assert_eq!(store.batch_get_versioned(&keys).await.unwrap().len(), 100);
    })
    .await;
    assert_eq!(
        seen,
        calls(&[("multi", 1), ("mget", 1), ("hmget", 1), ("exec", 1)]),
        "batch_get_versioned: one transaction"
    );

    // Scripts are loaded on first use (EVALSHA, NOSCRIPT, SCRIPT LOAD,
    // EVALSHA); warm both up, then each call is one EVALSHA.
    store
        .list("native:", ListOptions::default().limit(1))
        .await
        .unwrap();
    store
        .compare_and_swap(&keys[3], Some("nope".into()), None, SetOptions::default())
        .await
        .unwrap();
    let seen = count(&mut conn, async {
        assert_eq!(
            store
                .list("native:", ListOptions::default().limit(10))
                .await
                .unwrap()
                .keys
                .len(),
            10
        );
    })
    .await;
    assert_eq!(
        seen.get("evalsha"),
        Some(&1),
        "list is one script call: {seen:?}"
    );
    assert_eq!(
        seen.get("script|load"),
        None,
        "scripts are loaded once: {seen:?}"
    );

    let seen = count(&mut conn, async {
        let swapped = store.compare_and_swap(
            &keys[2],
            Some("t".into()),
            Some("x".into()),
            SetOptions::default(),
        );
        assert!(swapped.await.unwrap());
    })
    .await;
    assert_eq!(
        seen.get("evalsha"),
        Some(&1),
        "CAS is one script call: {seen:?}"
    );
    assert_eq!(
        seen.get("script|load"),
        None,
        "scripts are loaded once: {seen:?}"
    );

    // Warm the transaction and counter scripts up; then each call is one
    // EVALSHA.
    let counter = Key::new("native:counter").unwrap();
    store
        .increment(&counter, 1, SetOptions::default())
        .await
        .unwrap();
    let warm = kv_core::Transaction::new().check_present(keys[4].clone());
    assert!(store.transact(&warm).await.unwrap().is_committed());
    let seen = count(&mut conn, async {
        let n = store.increment(&counter, 1, SetOptions::default());
        assert_eq!(n.await.unwrap(), 2);
    })
    .await;
    assert_eq!(
        (
            seen.get("evalsha"),
            seen.get("script|load"),
            seen.get("multi")
        ),
        (Some(&1), None, None),
        "increment is one script call: {seen:?}"
    );
    let seen = count(&mut conn, async {
        let txn = kv_core::Transaction::new()
            .check_present(keys[4].clone())
            .check_present(keys[5].clone())
            .put(Entry::new(keys[4].clone(), "a"))
            .delete(keys[5].clone());
        assert!(store.transact(&txn).await.unwrap().is_committed());
    })
    .await;
    assert_eq!(
        (
            seen.get("evalsha"),
            seen.get("script|load"),
            seen.get("multi")
        ),
        (Some(&1), None, None),
        "transact is one script call: {seen:?}"
    );
    let seen = count(&mut conn, async {
        let written = store.write_if(
            &keys[4],
            kv_core::Condition::Present,
            Some("b".into()),
            SetOptions::default(),
        );
        assert!(written.await.unwrap());
    })
    .await;
    assert_eq!(
        (
            seen.get("evalsha"),
            seen.get("script|load"),
            seen.get("multi")
        ),
        (Some(&1), None, None),
        "write_if is one script call: {seen:?}"
    );
    store.delete(&counter).await.unwrap();

    let seen = count(&mut conn, async {
        assert_eq!(store.batch_delete(&keys).await.unwrap(), 98)
    })
    .await;
    assert_eq!(
        seen,
        calls(&[
            ("multi", 1),
            ("unlink", 1),
            ("zrem", 1),
            ("hdel", 1),
            ("exec", 1)
        ]),
        "batch_delete"
    );

    let seen = count(&mut conn, async {
        assert!(store.get(&keys[0]).await.unwrap().is_none())
    })
    .await;
    assert_eq!(seen, calls(&[("get", 1)]), "get");
}

/// Without the listing index a batch is its data commands alone: a batch
/// without TTLs is one bare MSET (atomic by itself), a delete one UNLINK,
/// and only a batch of several commands is a MULTI/EXEC; no ZADD, HSET or
/// schedule anywhere.
#[tokio::test]
async fn without_the_index_a_batch_is_its_data_commands() {
    let _serial = SERIAL.lock().await;
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let store = RedisStore::builder()
        .url(server.url())
        .key_prefix("plain:")
        .list_index(false)
        .connect()
        .await
        .unwrap();
    let mut conn = store.connection();
    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("{i:03}")).unwrap())
        .collect();
    let entries: Vec<Entry> = keys.iter().map(|k| Entry::new(k.clone(), "v")).collect();
    let seen = count(&mut conn, async {
        store.batch_set(entries.clone()).await.unwrap()
    })
    .await;
    assert_eq!(seen, calls(&[("mset", 1)]), "batch_set");

    let seen = count(&mut conn, async {
        store.batch_set(mixed(&keys[..10])).await.unwrap()
    })
    .await;
    assert_eq!(
        seen,
        calls(&[("multi", 1), ("mset", 1), ("set", 3), ("exec", 1)]),
        "batch_set with TTLs: SET PX, Redis's own expiry"
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg("plain:000")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&pttl), "PTTL {pttl}");

    let seen = count(&mut conn, async {
        assert_eq!(store.batch_get(&keys).await.unwrap().len(), 100);
    })
    .await;
    assert_eq!(seen, calls(&[("mget", 1)]), "batch_get");

    let seen = count(&mut conn, async {
        let ops = vec![
            WriteOp::Put(Entry::new(keys[0].clone(), "w")),
            WriteOp::Delete(keys[1].clone()),
        ];
        store.write_batch(ops).await.unwrap();
    })
    .await;
    assert_eq!(
        seen,
        calls(&[("multi", 1), ("set", 1), ("unlink", 1), ("exec", 1)]),
        "write_batch"
    );

    let seen = count(&mut conn, async {
        assert_eq!(store.batch_delete(&keys).await.unwrap(), 99);
    })
    .await;
    assert_eq!(seen, calls(&[("unlink", 1)]), "batch_delete");

    // Warm the scripts, then each is one EVALSHA touching the data key only.
    store
        .increment(&keys[5], 1, SetOptions::default())
        .await
        .unwrap();
    store
        .compare_and_swap(&keys[5], Some("nope".into()), None, SetOptions::default())
        .await
        .unwrap();
    let seen = count(&mut conn, async {
        assert_eq!(
            store
                .increment(&keys[5], 2, SetOptions::default())
                .await
                .unwrap(),
            3
        );
        assert!(
            store
                .compare_and_swap(
                    &keys[5],
                    Some("3".into()),
                    Some("x".into()),
                    SetOptions::default()
                )
                .await
                .unwrap()
        );
    })
    .await;
    assert_eq!(seen.get("evalsha"), Some(&2), "{seen:?}");
    for name in ["zadd", "hset", "zrem", "hdel"] {
        assert_eq!(seen.get(name), None, "{name} in {seen:?}");
    }
    let derived: u64 = redis::cmd("EXISTS")
        .arg(&b"\0kv:index\0plain:"[..])
        .arg(&b"\0kv:expiries\0plain:"[..])
        .arg(&b"\0kv:versions\0plain:"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(derived, 0, "no index, schedule or versions");
}

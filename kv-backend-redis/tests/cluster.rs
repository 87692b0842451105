//! The Redis backend on a Redis Cluster (three primaries, three replicas,
//! started by kv-testkit): the whole conformance suite three times, once spread
//! over 16 buckets (batches atomic per bucket, so the atomicity cases are
//! gated off by the capabilities) and once under a hash-tagged prefix (one
//! slot: atomic like a single server), and spread without the listing
//! index; then what is particular to a cluster.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::BTreeSet;
use std::sync::Arc;

use kv_backend_redis::{RedisStore, redis};
use kv_core::{Entry, ErrorKind, Key, KvStore};

async fn store(prefix: &str) -> Option<Arc<dyn KvStore>> {
    indexed(prefix, true).await
}

async fn indexed(prefix: &str, index: bool) -> Option<Arc<dyn KvStore>> {
    let cluster = kv_testkit::redis_cluster().await?;
    let store = RedisStore::builder()
        .url(cluster.url())
        .key_prefix(prefix)
        .purge_interval(Some(std::time::Duration::from_millis(500)))
        .list_index(index)
        .connect()
        .await
        .expect("connect to the test Redis Cluster");
    Some(store.into_dyn())
}

/// Spread over 16 buckets on three primaries.
mod spread {
    kv_conformance::suite!(|| super::store("spread*[1]?:"));
}

/// One hash tag: every key in one slot, batches atomic.
mod tagged {
    kv_conformance::suite!(|| super::store("{tagged}:"));
}

/// Spread over 16 buckets without the listing index: a batch is one bare
/// command or MULTI/EXEC per bucket it touches.
mod spread_without_index {
    kv_conformance::suite!(|| super::indexed("plain*[1]?:", false));
}

async fn connect(prefix: &str, buckets: usize) -> Option<RedisStore> {
    let cluster = kv_testkit::redis_cluster().await?;
    Some(
        RedisStore::builder()
            .url(cluster.url())
            .key_prefix(prefix)
            .cluster_buckets(buckets)
            .purge_interval(None)
            .connect()
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn a_spread_store_says_its_batches_are_not_atomic_and_a_tagged_one_says_they_are() {
    let Some(spread) = connect("caps:", 16).await else {
        return;
    };
    let Some(tagged) = connect("{caps}:", 16).await else {
        return;
    };
    assert!(spread.is_cluster());
    assert_eq!(spread.bucket_count(), 16);
    assert!(!spread.capabilities().atomic_batch);
    assert!(!spread.capabilities().snapshot_batch_get);
    assert_eq!(tagged.bucket_count(), 1);
    assert!(tagged.capabilities().atomic_batch);
    assert!(tagged.capabilities().snapshot_batch_get);
}

/// The keys of a spread store land on every primary (so the store scales
/// out), and every key's Redis name carries its bucket's tag.
#[tokio::test]
async fn a_spread_store_puts_keys_on_every_primary() {
    let Some(cluster) = kv_testkit::redis_cluster().await else {
        return;
    };
    let Some(store) = connect("spread-check:", 16).await else {
        return;
    };
    let entries: Vec<Entry> = (0..300)
        .map(|i| Entry::new(Key::new(format!("k{i:03}")).unwrap(), "v"))
        .collect();
    store.batch_set(entries).await.unwrap();
    // Which primary serves each key: CLUSTER KEYSLOT, then the slot map.
    let mut conn = store.connection();
    let slots: Vec<(i64, i64, Vec<redis::Value>)> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async::<Vec<redis::Value>>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|range| {
            let mut parts: Vec<redis::Value> = redis::from_redis_value(range).unwrap();
            let start: i64 = redis::from_redis_value(parts.remove(0)).unwrap();
            let end: i64 = redis::from_redis_value(parts.remove(0)).unwrap();
            (start, end, parts)
        })
        .collect();
    let mut primaries = BTreeSet::new();
    for i in 0..300 {
        let name = format!(
            "{{spread-check:#{:02}}}k{i:03}",
            bucket_of(&format!("k{i:03}"))
        );
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(exists, 1, "{name} is not where the bucket layout says");
        let range = slots.iter().position(|(s, e, _)| *s <= slot && slot <= *e);
        primaries.insert(range.unwrap());
    }
    println!(
        "300 keys in 16 buckets over {} slot ranges of a {}-node cluster",
        primaries.len(),
        cluster.nodes().len()
    );
    assert_eq!(primaries.len(), 3, "the buckets do not reach every primary");
    let keys: Vec<Key> = (0..300)
        .map(|i| Key::new(format!("k{i:03}")).unwrap())
        .collect();
    assert_eq!(store.batch_delete(&keys).await.unwrap(), 300);
}

/// The bucket of a key, as the store computes it (FNV-1a modulo 16).
fn bucket_of(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % 16
}

#[tokio::test]
async fn data_written_with_one_bucket_count_is_refused_with_another() {
    let Some(first) = connect("buckets-guard:", 16).await else {
        return;
    };
    first
        .set(&Key::new("k").unwrap(), "v".into(), Default::default())
        .await
        .unwrap();
    let cluster = kv_testkit::redis_cluster().await.unwrap();
    let err = RedisStore::builder()
        .url(cluster.url())
        .key_prefix("buckets-guard:")
        .cluster_buckets(8)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("cluster_buckets = 16"), "{err}");
    first.delete(&Key::new("k").unwrap()).await.unwrap();
}

#[tokio::test]
async fn reindex_is_unsupported_on_a_cluster() {
    let Some(store) = connect("reindex:", 16).await else {
        return;
    };
    let err = store.reindex().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

#[tokio::test]
async fn kv_connect_takes_a_cluster_url() {
    let Some(cluster) = kv_testkit::redis_cluster().await else {
        return;
    };
    let store = RedisStore::connect(cluster.url()).await.unwrap();
    assert!(store.is_cluster());
    let key = Key::new("connect/url").unwrap();
    store
        .set(&key, "1".into(), Default::default())
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"1"[..]));
    store.delete(&key).await.unwrap();
}

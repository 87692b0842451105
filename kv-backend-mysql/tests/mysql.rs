//! What only the MySQL backend has: its tables, the purge, byte order,
//! the server's packet limit, statement counts and URLs. Against the
//! shared test server from kv-testkit.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use bytes::Bytes;
use kv_backend_mysql::MysqlStore;
use kv_core::{Entry, ErrorKind, Key, KvStore, ListOptions, SetOptions, WriteOp};

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

async fn store(table: &str) -> Option<MysqlStore> {
    let server = kv_testkit::mysql().await?;
    let store = MysqlStore::builder()
        .url(server.url())
        .table(table)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    store.clear_table().await;
    Some(store)
}

trait Clear {
    async fn clear_table(&self);
}

impl Clear for MysqlStore {
    async fn clear_table(&self) {
        sqlx::query(&format!("DELETE FROM `{}`", self.table()))
            .execute(self.pool())
            .await
            .unwrap();
    }
}

async fn rows(store: &MysqlStore) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{}`", store.table()))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn purge_deletes_expired_rows_in_chunks_and_keeps_live_ones() {
    let Some(server) = kv_testkit::mysql().await else {
        return;
    };
    // Chunks of 7 rows: 30 expired rows take five statements.
    let store = MysqlStore::from_config(kv_backend_mysql::MysqlConfig {
        url: server.url().to_owned(),
        table: "kv_purge".into(),
        purge_interval_ms: None,
        purge_chunk: 7,
        ..Default::default()
    })
    .await
    .unwrap();
    store.clear_table().await;
    let short: Vec<Entry> = (0..30)
        .map(|i| Entry::new(key(&format!("short:{i}")), "x").with_ttl(Duration::from_millis(50)))
        .collect();
    store.batch_set(short).await.unwrap();
    store
        .set(&key("live"), "y".into(), SetOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    // Expired rows are invisible before the purge, and still in the table.
    assert_eq!(store.get(&key("short:1")).await.unwrap(), None);
    assert_eq!(rows(&store).await, 31);
    assert_eq!(store.purge_expired().await.unwrap(), 30);
    assert_eq!(rows(&store).await, 1);
    assert_eq!(
        store.get(&key("live")).await.unwrap().as_deref(),
        Some(&b"y"[..])
    );
}

#[tokio::test]
async fn keys_and_values_compare_as_bytes() {
    let Some(store) = store("kv_bytes").await else {
        return;
    };
    // Trailing spaces, case and accents are different keys, listed in byte
    // order (a text collation would pad, fold or reorder them).
    let names = ["a", "a ", "A", "b", "é", "e", "a\u{7f}", "ab"];
    for name in names {
        store
            .set(
                &key(name),
                Bytes::from(name.to_owned()),
                SetOptions::default(),
            )
            .await
            .unwrap();
    }
    let mut sorted: Vec<&str> = names.to_vec();
    sorted.sort_unstable();
    let page = store.list("", ListOptions::default()).await.unwrap();
    let listed: Vec<&str> = page.keys.iter().map(Key::as_str).collect();
    assert_eq!(listed, sorted);
    assert_eq!(
        store.get(&key("a ")).await.unwrap().as_deref(),
        Some(&b"a "[..])
    );
    // A value differing by a trailing space does not match a swap.
    store
        .set(&key("v"), "x ".into(), SetOptions::default())
        .await
        .unwrap();
    let swapped = store
        .compare_and_swap(
            &key("v"),
            Some("x".into()),
            Some("y".into()),
            SetOptions::default(),
        )
        .await
        .unwrap();
    assert!(!swapped);
    let swapped = store
        .compare_and_swap(
            &key("v"),
            Some("x ".into()),
            Some("y".into()),
            SetOptions::default(),
        )
        .await
        .unwrap();
    assert!(swapped);
    // `%` and `_` in a prefix are bytes, not wildcards.
    store
        .set(&key("p%1"), "1".into(), SetOptions::default())
        .await
        .unwrap();
    store
        .set(&key("px1"), "1".into(), SetOptions::default())
        .await
        .unwrap();
    let page = store.list("p%", ListOptions::default()).await.unwrap();
    assert_eq!(page.keys, vec![key("p%1")]);
    let page = store.list("p_", ListOptions::default()).await.unwrap();
    assert!(page.keys.is_empty());
}

#[tokio::test]
async fn a_batch_over_max_allowed_packet_is_batch_too_large_and_writes_nothing() {
    let Some(store) = store("kv_packet").await else {
        return;
    };
    let packet = store.max_packet();
    let max_value = store.capabilities().max_value_bytes;
    assert!(
        max_value < packet && max_value + 4096 > packet,
        "{max_value} {packet}"
    );
    // Values that each fit, together over the packet.
    let value = Bytes::from(vec![7u8; packet / 4]);
    let entries: Vec<Entry> = (0..5)
        .map(|i| Entry::new(key(&format!("big:{i}")), value.clone()))
        .collect();
    let err = store.batch_set(entries.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BatchTooLarge, "{err}");
    assert!(err.to_string().contains("max_allowed_packet"), "{err}");
    let ops: Vec<WriteOp> = entries.iter().cloned().map(WriteOp::Put).collect();
    let err = store.write_batch(ops).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BatchTooLarge, "{err}");
    assert_eq!(rows(&store).await, 0);
    // A value over the limit alone is ValueTooLarge; one at it is written.
    let err = store
        .set(
            &key("one"),
            Bytes::from(vec![1u8; max_value + 1]),
            SetOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{err}");
    store
        .batch_set(vec![Entry::new(
            key("one"),
            Bytes::from(vec![1u8; max_value]),
        )])
        .await
        .unwrap();
    assert_eq!(
        store.get(&key("one")).await.unwrap().unwrap().len(),
        max_value
    );
    // Two packets' worth in halves goes through.
    store.batch_set(entries[..2].to_vec()).await.unwrap();
    assert_eq!(rows(&store).await, 3);
}

/// The statements the server ran for one call on the store's only
/// connection (its session's `Com_stmt_execute`).
async fn statements_of<F: std::future::Future>(store: &MysqlStore, call: F) -> i64 {
    async fn executed(store: &MysqlStore) -> i64 {
        let (_, n): (String, String) =
            sqlx::query_as("SHOW SESSION STATUS LIKE 'Com_stmt_execute'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        n.parse().unwrap()
    }
    let before = executed(store).await;
    let after_nothing = executed(store).await;
    call.await;
    let after = executed(store).await;
    after - after_nothing - (after_nothing - before)
}

#[tokio::test]
async fn each_batch_is_one_statement() {
    let Some(server) = kv_testkit::mysql().await else {
        return;
    };
    let store = MysqlStore::builder()
        .url(server.url())
        .table("kv_statements")
        .max_connections(1)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    store.clear_table().await;
    // The first write reserves a block of versions (two more statements).
    store
        .set(&key("warm"), "1".into(), SetOptions::default())
        .await
        .unwrap();
    let keys: Vec<Key> = (0..100).map(|i| key(&format!("s:{i:03}"))).collect();
    let entries: Vec<Entry> = keys.iter().map(|k| Entry::new(k.clone(), "v")).collect();
    let n = statements_of(&store, async { store.batch_set(entries).await.unwrap() }).await;
    assert_eq!(n, 1, "batch_set");
    let n = statements_of(&store, async {
        assert_eq!(
            store
                .batch_get(&keys)
                .await
                .unwrap()
                .iter()
                .flatten()
                .count(),
            100
        );
    })
    .await;
    assert_eq!(n, 1, "batch_get");
    let n = statements_of(&store, async {
        assert_eq!(store.batch_delete(&keys[..50]).await.unwrap(), 50);
    })
    .await;
    assert_eq!(n, 1, "batch_delete");
    let ops: Vec<WriteOp> = keys[..50]
        .iter()
        .map(|k| WriteOp::Put(Entry::new(k.clone(), "w")))
        .chain(keys[50..].iter().cloned().map(WriteOp::Delete))
        .collect();
    // One transaction: the delete and the upsert.
    let n = statements_of(&store, async { store.write_batch(ops).await.unwrap() }).await;
    assert_eq!(n, 2, "write_batch");
    assert_eq!(
        store
            .batch_get(&keys)
            .await
            .unwrap()
            .iter()
            .flatten()
            .count(),
        50
    );
}

#[tokio::test]
async fn two_stores_on_one_table_never_share_a_version() {
    let Some(a) = store("kv_two_stores").await else {
        return;
    };
    let b = store("kv_two_stores").await.unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..20 {
        let k = key(&format!("k{i}"));
        let (writer, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        writer
            .set(&k, "v".into(), SetOptions::default())
            .await
            .unwrap();
        let v = other.get_versioned(&k).await.unwrap().unwrap().version;
        assert!(seen.insert(v), "version repeated at {i}");
    }
}

#[tokio::test]
async fn hostile_names_and_foreign_tables_are_config_errors() {
    let Some(server) = kv_testkit::mysql().await else {
        return;
    };
    for bad in ["kv`; DROP TABLE x; --", "a b", "1x"] {
        let err = MysqlStore::builder()
            .url(server.url())
            .table(bad)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
    }
    let admin = sqlx::MySqlPool::connect(server.url()).await.unwrap();
    sqlx::query("DROP TABLE IF EXISTS kv_foreign")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE kv_foreign (k VARCHAR(100) PRIMARY KEY, v TEXT)")
        .execute(&admin)
        .await
        .unwrap();
    let err = MysqlStore::builder()
        .url(server.url())
        .table("kv_foreign")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("not a kv table"), "{err}");
    let err = MysqlStore::builder()
        .url(server.url())
        .table("kv_missing_table")
        .create_table(false)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn urls_refusals_and_debug() {
    let Some(server) = kv_testkit::mysql().await else {
        return;
    };
    let mariadb = server.url().replace("mysql://", "MariaDB://");
    let store = MysqlStore::connect(&mariadb).await.unwrap();
    store.health().await.unwrap();
    for bad in ["mysql:/nohost", "postgres://h/db", "mysql://h:notaport/db"] {
        let err = MysqlStore::connect(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
    }
    let refused = format!("mysql://u:hunter2@{}/kv", kv_testkit::closed_port());
    let err = MysqlStore::connect(&refused).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    let debug = format!("{store:?}");
    assert!(debug.contains("kv_store"), "{debug}");
}

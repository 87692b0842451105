//! PostgreSQL-specific behaviour: the purge, table handling, chunked
//! batches, errors.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use bytes::Bytes;
use kv_backend_postgres::PostgresStore;
use kv_core::{Entry, ErrorKind, Key, KvStore, KvStoreExt, ListOptions, SetOptions};

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// A table name of its own for each test.
fn table(tag: &str) -> String {
    format!("kvt_{tag}_{}", std::process::id())
}

async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\""))
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn drop_table(pool: &sqlx::PgPool, table: &str) {
    sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .execute(pool)
        .await
        .unwrap();
}

/// A login role of this process allowed only `grants` on `table` (made by
/// `admin`), and the URL that connects as it.
async fn role_with(
    admin: &PostgresStore,
    url: &str,
    table: &str,
    tag: &str,
    grants: &str,
) -> (String, String) {
    let role = format!("{tag}{}", std::process::id());
    for sql in [
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT {grants} ON \"{table}\" TO {role}"),
    ] {
        sqlx::query(&sql).execute(admin.pool()).await.unwrap();
    }
    let url = url.replacen("postgres://postgres", &format!("postgres://{role}"), 1);
    (role, url)
}

#[tokio::test]
async fn purge_deletes_expired_rows_in_chunks_and_keeps_live_ones() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let name = table("purge");
    let store = PostgresStore::builder()
        .url(server.url())
        .table(&name)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let mut batch: Vec<Entry> = (0..2500)
        .map(|i| Entry::new(key(&format!("dead{i:04}")), "x").with_ttl(Duration::from_millis(200)))
        .collect();
    batch.extend((0..10).map(|i| Entry::new(key(&format!("live{i}")), "y")));
    store.batch_set(batch).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        count(store.pool(), &name).await,
        2510,
        "expired rows stay until purged"
    );
    assert_eq!(
        store
            .list("", ListOptions::default())
            .await
            .unwrap()
            .keys
            .len(),
        10
    );
    assert_eq!(store.purge_expired().await.unwrap(), 2500);
    assert_eq!(count(store.pool(), &name).await, 10);
    drop_table(store.pool(), &name).await;
}

#[tokio::test]
async fn background_purge_runs_on_its_interval() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let name = table("bgpurge");
    let store = PostgresStore::builder()
        .url(server.url())
        .table(&name)
        .purge_interval(Some(Duration::from_millis(100)))
        .connect()
        .await
        .unwrap();
    store
        .set(
            &key("gone"),
            "v".into(),
            SetOptions::ttl(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    store
        .set(&key("kept"), "v".into(), SetOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count(store.pool(), &name).await, 1);
    drop_table(store.pool(), &name).await;
}

#[tokio::test]
async fn two_tables_are_independent_stores() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let (a_name, b_name) = (table("iso_a"), table("iso_b"));
    let a = PostgresStore::builder()
        .url(server.url())
        .table(&a_name)
        .connect()
        .await
        .unwrap();
    let b = PostgresStore::builder()
        .url(server.url())
        .table(&b_name)
        .connect()
        .await
        .unwrap();
    a.set(&key("k"), "from a".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(b.get(&key("k")).await.unwrap(), None);
    b.set(&key("k"), "from b".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        a.get(&key("k")).await.unwrap(),
        Some(Bytes::from_static(b"from a"))
    );
    assert_eq!(a.clear("").await.unwrap(), 1);
    assert_eq!(
        b.get(&key("k")).await.unwrap(),
        Some(Bytes::from_static(b"from b"))
    );
    drop_table(a.pool(), &a_name).await;
    drop_table(a.pool(), &b_name).await;
}

#[tokio::test]
async fn hostile_table_and_schema_names_are_rejected_before_any_sql() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    for bad in [
        "kv; DROP TABLE kv_store; --",
        "kv\"x",
        "a b",
        "1kv",
        "kv.store",
        "",
    ] {
        let err = PostgresStore::builder()
            .url(server.url())
            .table(bad)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}: {err}");
    }
    let err = PostgresStore::builder()
        .url(server.url())
        .schema("public; --")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connects_create_the_table_once() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let name = table("race");
    let url = server.url().to_owned();
    let connects = (0..8).map(|_| {
        let (url, name) = (url.clone(), name.clone());
        tokio::spawn(async move {
            PostgresStore::builder()
                .url(url)
                .table(name)
                .max_connections(1)
                .connect()
                .await
        })
    });
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(
            connect
                .await
                .unwrap()
                .expect("every concurrent connect succeeds"),
        );
    }
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = $1")
        .bind(&name)
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    assert_eq!(tables, 1);
    drop_table(stores[0].pool(), &name).await;
}

#[tokio::test]
async fn a_table_of_another_shape_is_a_config_error() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(server.url()).await.unwrap();
    let name = table("shape");
    // A key column in the default collation would list in locale order.
    sqlx::query(&format!("CREATE TABLE \"{name}\" (key text PRIMARY KEY, value bytea NOT NULL, expires_at timestamptz)"))
        .execute(&pool)
        .await
        .unwrap();
    let err = PostgresStore::builder()
        .pool(pool.clone())
        .table(&name)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("COLLATE \"C\""), "{err}");
    drop_table(&pool, &name).await;

    let missing = PostgresStore::builder()
        .pool(pool.clone())
        .table(table("missing"))
        .create_table(false)
        .connect();
    assert_eq!(missing.await.unwrap_err().kind(), ErrorKind::Config);
}

/// A kv table made before versions existed gets its version column when
/// the store may create tables (its rows update and version like any);
/// without that right, connecting is a `Config` error naming the fix, and
/// the table is left as it was.
#[tokio::test]
async fn a_table_from_before_versions_is_upgraded_or_refused() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(server.url()).await.unwrap();
    let name = table("preversion");
    sqlx::query(&format!(
        "CREATE TABLE \"{name}\" (key text COLLATE \"C\" PRIMARY KEY, value bytea NOT NULL, \
         expires_at timestamptz)"
    ))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{name}\" VALUES ('old', '\\x3431', NULL)"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let refused = PostgresStore::builder()
        .pool(pool.clone())
        .table(&name)
        .create_table(false)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Config);
    assert!(
        refused.to_string().contains("ADD COLUMN version"),
        "{refused}"
    );
    let columns: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = $1")
            .bind(&name)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(columns, 3, "a refused table is not altered");

    let store = PostgresStore::builder()
        .pool(pool.clone())
        .table(&name)
        .connect()
        .await
        .unwrap();
    let old = key("old");
    let read = store.get_versioned(&old).await.unwrap().unwrap();
    assert_eq!(read.value, "41");
    assert_eq!(
        store
            .increment(&old, 1, SetOptions::default())
            .await
            .unwrap(),
        42
    );
    let now = store.get_versioned(&old).await.unwrap().unwrap();
    assert_ne!(now.version, read.version);
    drop_table(&pool, &name).await;
}

#[tokio::test]
async fn an_existing_pool_and_a_schema_can_be_used() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(server.url()).await.unwrap();
    let schema = format!("kvt_schema_{}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&pool)
        .await
        .unwrap();
    let store = PostgresStore::builder()
        .pool(pool.clone())
        .schema(&schema)
        .table("kv")
        .connect()
        .await
        .unwrap();
    assert_eq!(store.table(), format!("{schema}.kv"));
    store
        .set(&key("k"), "v".into(), SetOptions::default())
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{schema}\".kv"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_batch_larger_than_one_statement_is_written_in_one_transaction() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let name = table("big");
    let store = PostgresStore::builder()
        .url(server.url())
        .table(&name)
        .connect()
        .await
        .unwrap();
    // 80 values of 1 MiB: over the 64 MiB a statement carries, so two chunks.
    let value = Bytes::from(vec![7u8; 1024 * 1024]);
    let batch: Vec<Entry> = (0..80)
        .map(|i| Entry::new(key(&format!("big{i:02}")), value.clone()))
        .collect();
    store.batch_set(batch).await.unwrap();
    assert_eq!(count(store.pool(), &name).await, 80);
    let got = store
        .batch_get(&[key("big00"), key("big79")])
        .await
        .unwrap();
    assert!(got.iter().all(|v| v.as_ref() == Some(&value)));
    drop_table(store.pool(), &name).await;
}

#[tokio::test]
async fn refused_connections_are_temporary_and_hide_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://kv:hunter2@127.0.0.1:{port}/kv");
    let err = PostgresStore::builder()
        .url(&url)
        .acquire_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[tokio::test]
async fn bad_urls_are_config_errors() {
    for url in ["mysql://h/db", "postgres://h:notaport/db", "not a url", ""] {
        let err = PostgresStore::connect(url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
    }
}

#[tokio::test]
async fn debug_shows_the_table_not_the_password() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let url = server
        .url()
        .replacen("postgres://postgres@", "postgres://postgres:hunter2@", 1);
    let store = PostgresStore::builder()
        .url(&url)
        .table(table("debug"))
        .connect()
        .await
        .unwrap();
    let shown = format!("{store:?}");
    assert!(
        shown.contains("kvt_debug") && !shown.contains("hunter2"),
        "{shown}"
    );
    drop_table(store.pool(), &store.table()).await;
}

/// A background purge that always fails (a role without `DELETE` on the
/// table) is no longer silent: `purge_status` counts the failures and keeps
/// the last error, while the store serves what the role may do. A zero
/// interval is a `Config` error, not a panic in the spawned task.
#[tokio::test]
async fn a_purge_that_always_fails_is_counted_and_its_error_kept() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let name = table("nodelete");
    let admin = PostgresStore::builder()
        .url(server.url())
        .table(&name)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let (role, url) = role_with(
        &admin,
        server.url(),
        &name,
        "kvnodelete",
        "SELECT, INSERT, UPDATE",
    )
    .await;
    let store = PostgresStore::builder()
        .url(&url)
        .table(&name)
        .create_table(false)
        .purge_interval(Some(Duration::from_millis(20)))
        .connect()
        .await
        .unwrap();
    store
        .set(&key("kept"), "v".into(), SetOptions::default())
        .await
        .unwrap();
    let status = kv_testkit::poll_until(
        Duration::from_secs(5),
        || store.purge_status().unwrap(),
        |status| status.failures >= 2,
    )
    .await;
    assert!(status.failures >= 2, "{status:?}");
    let (kind, message) = status.last_error.clone().unwrap();
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
    let err = store.purge_expired().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    drop(store);
    for sql in [
        format!("DROP TABLE IF EXISTS \"{name}\""),
        format!("DROP ROLE IF EXISTS {role}"),
    ] {
        sqlx::query(&sql).execute(admin.pool()).await.unwrap();
    }

    let err = PostgresStore::builder()
        .url(server.url())
        .table(&name)
        .purge_interval(Some(Duration::ZERO))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(admin.purge_status(), None);
}

/// A `batch_set` of 500 entries or more goes in by binary COPY when its
/// keys are new: values, TTLs by the server's clock and one version per
/// batch as the upsert gives them. When one key exists (live or expired)
/// the COPY fails whole and the upsert writes the batch: last write wins,
/// nothing lost, nothing doubled.
#[tokio::test]
async fn large_batches_of_new_keys_go_in_by_copy_and_fall_back_on_existing_keys() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let name = table("copy");
    let store = PostgresStore::builder()
        .url(server.url())
        .table(&name)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let ttl = Duration::from_secs(600);
    let batch = |tag: &str| -> Vec<Entry> {
        (0..1000)
            .map(|i| {
                let entry = Entry::new(key(&format!("c{i:04}")), format!("{tag}{i}"));
                if i % 2 == 0 {
                    entry.with_ttl(ttl)
                } else {
                    entry
                }
            })
            .collect()
    };
    // New keys, in reverse order with a duplicate: the last write wins.
    let mut first = batch("a");
    first.reverse();
    first.push(Entry::new(key("c0001"), "dup"));
    store.batch_set(first).await.unwrap();
    assert_eq!(count(store.pool(), &name).await, 1000);
    let keys: Vec<Key> = (0..1000).map(|i| key(&format!("c{i:04}"))).collect();
    let read = store.batch_get_with_ttl(&keys).await.unwrap();
    for (i, entry) in read.iter().enumerate() {
        let entry = entry.as_ref().unwrap();
        let want = if i == 1 {
            "dup".to_owned()
        } else {
            format!("a{i}")
        };
        assert_eq!(entry.value, Bytes::from(want), "c{i:04}");
        match entry.ttl {
            Some(left) => {
                assert_eq!(i % 2, 0, "c{i:04} has a TTL");
                assert!(
                    left <= ttl && left > ttl - Duration::from_secs(30),
                    "{left:?}"
                );
            }
            None => assert_eq!(i % 2, 1, "c{i:04} lost its TTL"),
        }
    }
    let versions = store.batch_get_versioned(&keys).await.unwrap();
    let version = versions[0].as_ref().unwrap().version.clone();
    assert!(
        versions
            .iter()
            .all(|v| v.as_ref().unwrap().version == version)
    );
    assert!(
        store
            .write_if(
                &keys[0],
                kv_core::Condition::Version(version),
                Some("v".into()),
                SetOptions::default()
            )
            .await
            .unwrap()
    );

    // One key live, one expired, the rest new: the COPY meets them and the
    // upsert writes all 1,002 entries.
    store
        .set(
            &key("c1000"),
            "old".into(),
            SetOptions::ttl(Duration::from_millis(1)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut second: Vec<Entry> = (500..1502)
        .map(|i| Entry::new(key(&format!("c{i:04}")), format!("b{i}")))
        .collect();
    second.push(Entry::new(key("c0500"), "last"));
    store.batch_set(second).await.unwrap();
    assert_eq!(count(store.pool(), &name).await, 1502);
    let got = store
        .batch_get(&[key("c0499"), key("c0500"), key("c1000"), key("c1501")])
        .await
        .unwrap();
    let want = ["a499", "last", "b1000", "b1501"].map(|v| Some(Bytes::from(v)));
    assert_eq!(got, want);
    assert_eq!(
        store.batch_get_with_ttl(&[key("c0502")]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .ttl,
        None
    );

    // The gate skips COPY for a while after a conflict; batches of new keys
    // still land exactly.
    for round in 0..20 {
        let fresh: Vec<Entry> = (0..600)
            .map(|i| Entry::new(key(&format!("r{round:02}/{i:04}")), "n"))
            .collect();
        store.batch_set(fresh).await.unwrap();
    }
    assert_eq!(count(store.pool(), &name).await, 1502 + 20 * 600);
    drop_table(store.pool(), &name).await;
}

/// The COPY path is taken, and the upsert after a conflict: `COPY` needs
/// only `INSERT`, `INSERT ... ON CONFLICT DO UPDATE` needs `UPDATE` too. A
/// role without `UPDATE` loads 600 new keys through kv; the same batch with
/// `copy_batches(false)`, one of 499 (under the threshold), and one that
/// meets an existing key (the COPY fails, the upsert runs) are refused,
/// and the refused ones write nothing.
#[tokio::test]
async fn a_batch_of_new_keys_goes_by_copy_and_one_meeting_a_key_by_the_upsert() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let name = table("copyrole");
    let admin = PostgresStore::builder()
        .url(server.url())
        .table(&name)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let (role, url) = role_with(&admin, server.url(), &name, "kvnoupdate", "SELECT, INSERT").await;
    let connect = |copy: bool| {
        PostgresStore::builder()
            .url(&url)
            .table(&name)
            .create_table(false)
            .purge_interval(None)
            .copy_batches(copy)
            .connect()
    };
    let batch = |tag: &str, n: usize| -> Vec<Entry> {
        (0..n)
            .map(|i| Entry::new(key(&format!("{tag}{i:04}")), "v"))
            .collect()
    };
    let store = connect(true).await.unwrap();
    store.batch_set(batch("copied", 600)).await.unwrap();
    assert_eq!(count(admin.pool(), &name).await, 600);

    let refused = [
        connect(false)
            .await
            .unwrap()
            .batch_set(batch("nocopy", 600))
            .await,
        store.batch_set(batch("small", 499)).await,
        store
            .batch_set([batch("meets", 599), batch("copied", 1)].concat())
            .await,
    ];
    for result in refused {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    }
    assert_eq!(
        count(admin.pool(), &name).await,
        600,
        "a refused batch wrote"
    );
    drop(store);
    for sql in [
        format!("DROP TABLE IF EXISTS \"{name}\""),
        format!("DROP ROLE IF EXISTS {role}"),
    ] {
        sqlx::query(&sql).execute(admin.pool()).await.unwrap();
    }
}

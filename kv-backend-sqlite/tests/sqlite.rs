//! SQLite-specific behaviour: persistence and versions across reopen,
//! several stores and processes on one file, a write lock held elsewhere,
//! the purge, and the files and tables a store refuses.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use kv_backend_sqlite::SqliteStore;
use kv_core::{Condition, ErrorKind, Key, KvStore, ListOptions, SetOptions};
use sqlx::Connection;

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

#[tokio::test]
async fn reopening_keeps_data_ttls_and_never_repeats_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let (first, recreated);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .set(&key("plain"), "p".into(), SetOptions::default())
            .await
            .unwrap();
        store
            .set(
                &key("long"),
                "l".into(),
                SetOptions::ttl(Duration::from_millis(1500)),
            )
            .await
            .unwrap();
        store
            .set(
                &key("short"),
                "s".into(),
                SetOptions::ttl(Duration::from_millis(100)),
            )
            .await
            .unwrap();
        first = store.get_versioned(&key("plain")).await.unwrap().unwrap();
        store.delete(&key("plain")).await.unwrap();
        store
            .set(&key("plain"), "p".into(), SetOptions::default())
            .await
            .unwrap();
        recreated = store.get_versioned(&key("plain")).await.unwrap().unwrap();
        assert_ne!(first.version, recreated.version);
    } // closed
    tokio::time::sleep(Duration::from_millis(200)).await;
    let store = SqliteStore::open(&path).await.unwrap();
    let got = store
        .batch_get(&[key("plain"), key("long"), key("short")])
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            Some(Bytes::from_static(b"p")),
            Some(Bytes::from_static(b"l")),
            None
        ]
    );
    let reread = store.get_versioned(&key("plain")).await.unwrap().unwrap();
    assert_eq!(reread.version, recreated.version, "the version survived");
    assert!(
        !store
            .write_if(
                &key("plain"),
                Condition::Version(first.version.clone()),
                Some("stale".into()),
                SetOptions::default()
            )
            .await
            .unwrap(),
        "a version from before the delete guards nothing"
    );
    store
        .set(&key("plain"), "p".into(), SetOptions::default())
        .await
        .unwrap();
    let after = store.get_versioned(&key("plain")).await.unwrap().unwrap();
    assert!(after.version != first.version && after.version != recreated.version);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        store.get(&key("long")).await.unwrap(),
        None,
        "the TTL survived"
    );
    assert_eq!(
        store.list("", ListOptions::default()).await.unwrap().keys,
        ["plain"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_count_exactly_and_share_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let mut tasks = Vec::new();
    for (i, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for n in 0..100 {
                store
                    .increment(&key("hits"), 1, SetOptions::default())
                    .await
                    .unwrap();
                let own = key(&format!("own:{i}:{n}"));
                store
                    .set(&own, "x".into(), SetOptions::default())
                    .await
                    .unwrap();
                versions.push(store.get_versioned(&own).await.unwrap().unwrap().version);
            }
            versions
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for version in task.await.unwrap() {
            assert!(seen.insert(version), "two writes got the same version");
        }
    }
    assert_eq!(a.get(&key("hits")).await.unwrap(), Some(Bytes::from("400")));
    assert_eq!(b.get(&key("hits")).await.unwrap(), Some(Bytes::from("400")));
}

/// Not a test of its own: the other process of
/// `two_processes_on_one_file_count_exactly`.
#[test]
#[ignore = "run by two_processes_on_one_file_count_exactly in a child process"]
fn incrementing_child() {
    let Ok(path) = std::env::var("KV_SQLITE_SHARED_DB") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        for _ in 0..300 {
            store
                .increment(&key("hits"), 1, SetOptions::default())
                .await
                .unwrap();
        }
    });
}

#[tokio::test]
async fn two_processes_on_one_file_count_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "incrementing_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env("KV_SQLITE_SHARED_DB", &path)
        .spawn()
        .unwrap();
    for _ in 0..300 {
        store
            .increment(&key("hits"), 1, SetOptions::default())
            .await
            .unwrap();
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the other process failed");
    assert_eq!(
        store.get(&key("hits")).await.unwrap(),
        Some(Bytes::from("600"))
    );
}

#[tokio::test]
async fn a_write_lock_held_past_the_busy_timeout_is_a_temporary_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let store = SqliteStore::builder()
        .path(&path)
        .busy_timeout(Duration::from_millis(200))
        .open()
        .await
        .unwrap();
    store
        .set(&key("k"), "before".into(), SetOptions::default())
        .await
        .unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let err = store
        .set(&key("k"), "after".into(), SetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    // Reads go on beside the writer (WAL).
    assert_eq!(
        store.get(&key("k")).await.unwrap(),
        Some(Bytes::from("before"))
    );
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    store
        .set(&key("k"), "after".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.get(&key("k")).await.unwrap(),
        Some(Bytes::from("after"))
    );
}

#[tokio::test]
async fn the_purge_deletes_expired_rows_only() {
    let store = SqliteStore::builder()
        .memory()
        .purge_interval(None)
        .open()
        .await
        .unwrap();
    for i in 0..2500 {
        store
            .set(
                &key(&format!("gone{i}")),
                "x".into(),
                SetOptions::ttl(Duration::from_millis(50)),
            )
            .await
            .unwrap();
    }
    store
        .set(
            &key("kept"),
            "x".into(),
            SetOptions::ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 2500);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM kv_store")
        .fetch_one(store.readers())
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert!(store.exists(&key("kept")).await.unwrap());
}

#[tokio::test]
async fn files_and_tables_it_cannot_use_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = SqliteStore::builder()
        .path(dir.path().join("missing.db"))
        .create_if_missing(false)
        .open()
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config, "{missing}");

    let not_a_db = dir.path().join("notes.txt");
    std::fs::write(&not_a_db, vec![b'x'; 4096]).unwrap();
    let err = SqliteStore::open(&not_a_db).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(
        std::fs::read(&not_a_db).unwrap(),
        vec![b'x'; 4096],
        "untouched"
    );

    let path = dir.path().join("kv.db");
    let hostile = SqliteStore::builder()
        .path(&path)
        .table("kv\"; DROP TABLE x; --")
        .open()
        .await
        .unwrap_err();
    assert_eq!(hostile.kind(), ErrorKind::Config);
    let absent = SqliteStore::builder()
        .path(&path)
        .table("never_created")
        .create_table(false)
        .open()
        .await
        .unwrap_err();
    assert_eq!(absent.kind(), ErrorKind::Config, "{absent}");

    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE other (id INTEGER PRIMARY KEY, name TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    let shape = SqliteStore::builder()
        .path(&path)
        .table("other")
        .open()
        .await
        .unwrap_err();
    assert_eq!(shape.kind(), ErrorKind::Config, "{shape}");
    assert!(shape.to_string().contains("not a kv table"), "{shape}");
}

/// A row another program wrote with a value of another SQLite type reads
/// as the bytes of its text, never as a decode error or `None`.
#[tokio::test]
async fn values_another_program_stored_as_text_or_numbers_read_as_their_bytes() {
    let store = SqliteStore::builder()
        .memory()
        .purge_interval(None)
        .open()
        .await
        .unwrap();
    for (key, value) in [("text", "'hello'"), ("int", "42"), ("real", "1.5")] {
        sqlx::query(&format!(
            "INSERT INTO kv_store (key, value, expires_at, version) VALUES ('{key}', {value}, NULL, 1)"
        ))
        .execute(store.writer())
        .await
        .unwrap();
    }
    assert_eq!(
        store.get(&key("text")).await.unwrap(),
        Some(Bytes::from("hello"))
    );
    let all = store
        .batch_get(&[key("int"), key("real"), key("none")])
        .await
        .unwrap();
    assert_eq!(
        all,
        [Some(Bytes::from("42")), Some(Bytes::from("1.5")), None]
    );
    assert_eq!(
        store
            .increment(&key("int"), 1, SetOptions::default())
            .await
            .unwrap(),
        43,
        "an integer another program stored is a counter"
    );
    let err = store
        .increment(&key("real"), 1, SetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotACounter);
}

#[tokio::test]
async fn a_url_opens_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("url.db");
    let store = SqliteStore::open_url(&format!("sqlite://{}?table=t1&sync=false", path.display()))
        .await
        .unwrap();
    store
        .set(&key("k"), "v".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.table(), "t1");
    assert_eq!(store.path(), Some(path.as_path()));
    let memory = SqliteStore::open_url("sqlite::memory:").await.unwrap();
    assert_eq!(memory.path(), None);
    assert!(!memory.capabilities().persistent);
    assert!(store.capabilities().persistent);
}

//! `kv::connect` dispatches by scheme and explains what is missing.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use kv::ErrorKind;

#[tokio::test]
async fn memory_url_gives_a_working_client() {
    for url in ["memory://", "memory:", "MEMORY://", "memory://label"] {
        let kv = kv::connect(url).await.unwrap();
        kv.set("k", &1).await.unwrap();
        assert_eq!(kv.get::<i32>("k").await.unwrap(), Some(1), "{url}");
    }
}

#[tokio::test]
async fn each_memory_connect_is_a_new_store() {
    let a = kv::connect("memory://").await.unwrap();
    let b = kv::connect("memory://").await.unwrap();
    a.set("k", &1).await.unwrap();
    assert_eq!(b.get::<i32>("k").await.unwrap(), None);
}

#[tokio::test]
async fn unknown_scheme_is_config_error_listing_known_ones() {
    let err = kv::connect("cassandra://db:9042").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string()
            .contains("unknown URL scheme `cassandra://`"),
        "{err}"
    );
    assert!(err.to_string().contains("redis"), "{err}");
}

#[tokio::test]
async fn missing_scheme_is_config_error() {
    for url in ["", "localhost:6379x", "no-scheme-here", "://x"] {
        let err = kv::connect(url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
    }
}

#[tokio::test]
async fn backend_without_its_feature_names_the_feature() {
    let mut cases = vec![];
    if cfg!(not(feature = "mongo")) {
        cases.extend([("mongodb://h", "mongo"), ("mongodb+srv://h", "mongo")]);
    }
    if cfg!(not(feature = "etcd")) {
        cases.extend([
            ("etcd://127.0.0.1:2379", "etcd"),
            ("etcds://h:2379", "etcd"),
        ]);
    }
    if cfg!(not(feature = "rocksdb")) {
        cases.push(("rocksdb:///tmp/x", "rocksdb"));
    }
    if cfg!(not(feature = "sqlite")) {
        cases.extend([
            ("sqlite:///tmp/x.db", "sqlite"),
            ("sqlite::memory:", "sqlite"),
        ]);
    }
    if cfg!(not(feature = "mysql")) {
        cases.extend([("mysql://u@h/db", "mysql"), ("mariadb://h/db", "mysql")]);
    }
    if cfg!(not(feature = "postgres")) {
        cases.extend([
            ("postgres://u@h/db", "postgres"),
            ("postgresql://h/db", "postgres"),
        ]);
    }
    if cfg!(not(feature = "redis")) {
        cases.extend([("redis://127.0.0.1:6379", "redis"), ("rediss://h", "redis")]);
    }
    for (url, feature) in cases {
        let err = kv::connect(url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        assert!(
            err.to_string()
                .contains(&format!("cargo feature `{feature}`")),
            "{url}: {err}"
        );
    }
}

#[tokio::test]
async fn errors_never_echo_credentials() {
    let err = kv::connect("redis://admin:hunter2@db:6379")
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    let err = kv::connect("weird://admin:hunter2@db").await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

/// Connects to a test server by its kv URL and makes a batch round trip.
#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "mongo"
))]
async fn server_url_gives_a_working_client(kind: kv_testkit::Kind, backend: &str) {
    let Some(server) = kv_testkit::server(kind).await else {
        return;
    };
    let kv = kv::connect(&server.kv_url())
        .await
        .unwrap()
        .namespace("kv-facade-test")
        .unwrap();
    kv.batch_set([("a", 1), ("b", 2)]).await.unwrap();
    let got = kv.batch_get::<i32, _>(["b", "a", "c"]).await.unwrap();
    assert_eq!(got, [Some(2), Some(1), None]);
    assert_eq!(kv.store().backend(), backend);
    assert_eq!(kv.clear().await.unwrap(), 2);
    // Schemes are case-insensitive, the same for every backend.
    let url = server.kv_url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let upper = format!("{}://{rest}", scheme.to_ascii_uppercase());
    let kv = kv::connect(&upper)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", kv::redact_url(&upper)));
    assert_eq!(kv.store().backend(), backend);
    kv.health().await.unwrap();
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_url_gives_a_working_client() {
    server_url_gives_a_working_client(kv_testkit::Kind::Redis, "redis").await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_url_gives_a_working_client() {
    server_url_gives_a_working_client(kv_testkit::Kind::Postgres, "postgres").await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_url_gives_a_working_client() {
    server_url_gives_a_working_client(kv_testkit::Kind::Mysql, "mysql").await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mariadb_urls_reach_the_same_backend_and_hide_the_password() {
    let Some(server) = kv_testkit::mysql().await else {
        return;
    };
    let url = server.url().replacen("mysql://", "mariadb://", 1);
    let kv = kv::connect(&url).await.unwrap();
    assert_eq!(kv.store().backend(), "mysql");
    let err = kv::connect(&format!(
        "mysql://admin:hunter2@{}/kv",
        kv_testkit::closed_port()
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

#[cfg(feature = "etcd")]
#[tokio::test]
async fn etcd_url_gives_a_working_client() {
    server_url_gives_a_working_client(kv_testkit::Kind::Etcd, "etcd").await;
}

#[cfg(feature = "mongo")]
#[tokio::test]
async fn mongo_url_gives_a_working_client() {
    server_url_gives_a_working_client(kv_testkit::Kind::Mongo, "mongo").await;
}

#[cfg(feature = "mongo")]
#[tokio::test]
async fn mongo_url_errors_never_echo_the_password() {
    for url in [
        "mongodb://admin:hunter2@127.0.0.1:1/db?connectTimeoutMS=200&serverSelectionTimeoutMS=200",
        "mongodb://admin:hunter2@h:1/db?notAnOption=%zz&tls=maybe",
        "MONGODB://admin:hunter2@127.0.0.1:1/a.b",
    ] {
        let err = kv::connect(url).await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_urls_open_a_file_that_persists_or_a_private_memory_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    {
        let kv = kv::connect(&url).await.unwrap();
        kv.batch_set([("a", 1), ("b", 2)]).await.unwrap();
        assert_eq!(kv.store().backend(), "sqlite");
    }
    // Schemes are case-insensitive.
    let kv = kv::connect(&url.replace("sqlite://", "SQLite://"))
        .await
        .unwrap();
    assert_eq!(
        kv.batch_get::<i32, _>(["b", "a", "c"]).await.unwrap(),
        [Some(2), Some(1), None]
    );
    let first = kv::connect("sqlite::memory:").await.unwrap();
    first.set("only-here", &1).await.unwrap();
    let second = kv::connect("sqlite::memory:").await.unwrap();
    assert_eq!(
        second.get::<i32>("only-here").await.unwrap(),
        None,
        "private"
    );
    assert!(!first.store().capabilities().persistent);
    let err = kv::connect("sqlite://relative.db").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[cfg(feature = "rocksdb")]
#[tokio::test]
async fn rocksdb_url_opens_an_embedded_database_that_persists() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocksdb://{}", dir.path().join("db").display());
    {
        let kv = kv::connect(&url).await.unwrap();
        kv.batch_set([("a", 1), ("b", 2)]).await.unwrap();
        assert_eq!(kv.store().backend(), "rocksdb");
    }
    // Schemes are case-insensitive.
    let kv = kv::connect(&url.replace("rocksdb://", "RocksDB://"))
        .await
        .unwrap();
    assert_eq!(
        kv.batch_get::<i32, _>(["b", "a", "c"]).await.unwrap(),
        [Some(2), Some(1), None]
    );
}

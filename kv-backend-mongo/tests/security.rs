//! TLS against a private MongoDB test server serving only TLS: `tls=true`
//! with the server's CA (`tlsCAFile`) works, a CA that did not sign it is
//! refused within the connect timeout. (SCRAM users are tested in
//! `tests/mongo.rs`.)

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::{Duration, Instant};

use kv_backend_mongo::MongoStore;
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

#[tokio::test]
async fn tls_works_with_the_ca_and_refuses_another() {
    let certs = kv_testkit::TestCerts::generate();
    let Some(server) = kv_testkit::private_mongo_tls(&certs).await else {
        return;
    };
    assert!(server.url().contains("tls=true"), "{}", server.url());
    let url = |ca: std::path::PathBuf| format!("{}&tlsCAFile={}", server.url(), ca.display());
    let store = MongoStore::connect(&url(certs.ca())).await.unwrap();
    let key = Key::new("security/a").unwrap();
    store
        .set(&key, "1".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"1"[..]));

    let started = Instant::now();
    let err = MongoStore::builder()
        .url(url(certs.other_ca()))
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    let took = started.elapsed();
    println!(
        "MongoDB with an untrusted CA: {:?} after {took:?}: {err}",
        err.kind()
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_temporary(), "{err}");
}

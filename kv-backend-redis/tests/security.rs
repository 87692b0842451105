//! TLS and a password together against a private Redis serving only
//! `tls-port`: `rediss://` with the server's CA works, a CA that did not
//! sign it is refused at once, a wrong password over TLS is
//! PermissionDenied. No password appears in any error or `Debug` output.
//! (Plain-text passwords and ACL users are tested in `tests/redis.rs`.)

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::{Duration, Instant};

use kv_backend_redis::RedisStore;
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

const PASSWORD: &str = "redis-s3cret-4Kw";
const WRONG: &str = "not-the-pw-2Vb";

fn assert_hidden(text: &str) {
    for secret in [PASSWORD, WRONG] {
        assert!(!text.contains(secret), "a password shows in: {text}");
    }
}

#[tokio::test]
async fn rediss_works_with_the_ca_and_refuses_another() {
    let certs = kv_testkit::TestCerts::generate();
    let Some(server) = kv_testkit::private_redis_secured(Some(PASSWORD), Some(&certs)).await else {
        return;
    };
    assert!(server.url().starts_with("rediss://"), "{}", server.url());
    let connect = |url: String, ca: std::path::PathBuf| {
        RedisStore::builder()
            .url(url)
            .tls_ca_file(ca.display().to_string())
            .purge_interval(None)
            .connect()
    };
    let store = connect(server.url().to_owned(), certs.ca()).await.unwrap();
    let key = Key::new("security/a").unwrap();
    store
        .set(&key, "1".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_hidden(&format!("{store:?}"));

    let started = Instant::now();
    let err = connect(server.url().to_owned(), certs.other_ca())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    println!("Redis with an untrusted CA: {:?} {err}", err.kind());
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_temporary(), "{err}");
    assert_hidden(&format!("{err} {err:?}"));

    let err = connect(server.url().replace(PASSWORD, WRONG), certs.ca())
        .await
        .unwrap_err();
    println!(
        "Redis over TLS with a wrong password: {:?} {err}",
        err.kind()
    );
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_temporary(), "{err}");
    assert_hidden(&format!("{err} {err:?}"));
}

//! Passwords and TLS against private MariaDB servers: a password user with
//! the right, a wrong and no password, and `ssl-mode=verify_identity` with
//! the server's CA and with a CA that did not sign it. No password appears
//! in any error or `Debug` output.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::{Duration, Instant};

use kv_backend_mysql::MysqlStore;
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

const PASSWORD: &str = "my-s3cret-4Kp";
const WRONG: &str = "not-the-pw-8Wq";

async fn round_trip(store: &MysqlStore) {
    let key = Key::new("security/a").unwrap();
    store
        .set(&key, "1".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"1"[..]));
    store.delete(&key).await.unwrap();
}

fn assert_hidden(text: &str) {
    for secret in [PASSWORD, WRONG] {
        assert!(!text.contains(secret), "a password shows in: {text}");
    }
}

#[tokio::test]
async fn the_right_password_works_and_a_wrong_one_or_none_is_permission_denied() {
    let Some(server) = kv_testkit::private_mysql_secured(Some(PASSWORD), None).await else {
        return;
    };
    let store = MysqlStore::connect(server.url()).await.unwrap();
    round_trip(&store).await;
    assert_hidden(&format!("{store:?}"));

    let wrong = server.url().replace(PASSWORD, WRONG);
    let err = MysqlStore::connect(&wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_temporary(), "{err}");
    assert_hidden(&format!("{err} {err:?}"));
    let none = server.url().replace(&format!(":{PASSWORD}"), "");
    let err = MysqlStore::connect(&none).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    println!("MySQL password user: right password works, wrong or none is PermissionDenied: {err}");
}

#[tokio::test]
async fn verify_identity_tls_works_with_the_ca_and_refuses_another() {
    let certs = kv_testkit::TestCerts::generate();
    let Some(server) = kv_testkit::private_mysql_secured(Some(PASSWORD), Some(&certs)).await else {
        return;
    };
    let url = |ca: &std::path::Path| {
        format!(
            "{}?ssl-mode=verify_identity&ssl-ca={}",
            server.url(),
            ca.display()
        )
    };
    let store = MysqlStore::connect(&url(&certs.ca())).await.unwrap();
    round_trip(&store).await;
    let (_, cipher): (String, String) = sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(!cipher.is_empty(), "the connection is not encrypted");

    // The user must use TLS: without it the server refuses them.
    let plain = format!("{}?ssl-mode=disabled", server.url());
    let err = MysqlStore::connect(&plain).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    let started = Instant::now();
    let err = MysqlStore::connect(&url(&certs.other_ca()))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    println!("MySQL with an untrusted CA: {:?} {err}", err.kind());
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_temporary(), "{err}");
    assert_hidden(&format!("{err} {err:?}"));
}

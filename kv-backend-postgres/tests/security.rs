//! Passwords and TLS against private PostgreSQL servers: `scram-sha-256`
//! with the right and a wrong password, `sslmode=verify-full` with the
//! server's CA and with a CA that did not sign it. No password appears in
//! any error or `Debug` output.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::{Duration, Instant};

use kv_backend_postgres::PostgresStore;
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

const PASSWORD: &str = "pg-s3cret-7Hq";
const WRONG: &str = "not-the-pw-9Zx";

async fn round_trip(store: &PostgresStore) {
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
async fn scram_with_the_right_password_works_and_a_wrong_one_is_permission_denied() {
    let Some(server) = kv_testkit::private_postgres_secured(Some(PASSWORD), None).await else {
        return;
    };
    let store = PostgresStore::connect(server.url()).await.unwrap();
    round_trip(&store).await;
    assert_hidden(&format!("{store:?}"));

    let wrong = server.url().replace(PASSWORD, WRONG);
    let err = PostgresStore::connect(&wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_temporary(), "{err}");
    assert_hidden(&format!("{err} {err:?}"));
    let none = server.url().replace(&format!(":{PASSWORD}"), "");
    let err = PostgresStore::connect(&none).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    println!(
        "PostgreSQL scram-sha-256: right password works, wrong or none is PermissionDenied: {err}"
    );
}

#[tokio::test]
async fn verify_full_tls_works_with_the_ca_and_refuses_another() {
    let certs = kv_testkit::TestCerts::generate();
    let Some(server) = kv_testkit::private_postgres_secured(Some(PASSWORD), Some(&certs)).await
    else {
        return;
    };
    let url = |ca: &std::path::Path| {
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            server.url(),
            ca.display()
        )
    };
    let store = PostgresStore::connect(&url(&certs.ca())).await.unwrap();
    round_trip(&store).await;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(ssl, "the connection is not encrypted");

    let started = Instant::now();
    let err = PostgresStore::connect(&url(&certs.other_ca()))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    println!("PostgreSQL with an untrusted CA: {:?} {err}", err.kind());
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_temporary(), "{err}");
    assert_hidden(&format!("{err} {err:?}"));
}

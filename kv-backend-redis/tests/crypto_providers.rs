//! A process with both of rustls' crypto providers compiled in (`ring`
//! and `aws-lc-rs`, the default of hyper-rustls, tonic and the AWS SDK) and
//! none installed: rustls cannot choose, and `ClientConfig::builder()`,
//! which redis-rs calls for `rediss://`, panics. The backend installs
//! `ring` when no provider is installed, so `rediss://` connects. A binary
//! of its own: the installed provider is process-wide.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use kv_backend_redis::RedisStore;
use kv_core::{Key, KvStore, SetOptions};
use rustls::crypto::CryptoProvider;

#[tokio::test]
async fn rediss_connects_when_both_providers_are_compiled_in() {
    // Both providers exist in this binary (this would not compile without).
    let _ring = rustls::crypto::ring::default_provider();
    let _aws = rustls::crypto::aws_lc_rs::default_provider();
    assert!(CryptoProvider::get_default().is_none());

    let certs = kv_testkit::TestCerts::generate();
    let Some(server) = kv_testkit::private_redis_secured(None, Some(&certs)).await else {
        return;
    };
    assert!(server.url().starts_with("rediss://"), "{}", server.url());
    let store = RedisStore::builder()
        .url(server.url())
        .tls_ca_file(certs.ca().display().to_string())
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let key = Key::new("providers/a").unwrap();
    store
        .set(&key, "1".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"1"[..]));
    assert!(CryptoProvider::get_default().is_some());
}

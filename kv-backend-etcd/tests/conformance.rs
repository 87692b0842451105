//! The whole conformance suite against a live etcd from kv-testkit: once
//! without a key prefix and with the server's default limits, once under a
//! prefix full of glob and LIKE characters (which must stay literal) with
//! `max_txn_ops` 16, so the batch-size rules also run at a small limit.

use std::sync::Arc;

use kv_backend_etcd::{EtcdConfig, EtcdStore};
use kv_core::KvStore;

async fn store(prefix: &str, max_txn_ops: usize) -> Option<Arc<dyn KvStore>> {
    let server = kv_testkit::etcd().await?;
    let config = EtcdConfig {
        key_prefix: prefix.to_owned(),
        max_txn_ops,
        ..EtcdConfig::from_url(&server.kv_url()).expect("the test server's URL")
    };
    let store = EtcdStore::from_config(config)
        .await
        .expect("connect to the test etcd");
    Some(store.into_dyn())
}

mod unprefixed {
    kv_conformance::suite!(|| super::store("", 128));
}

/// Under a prefix with glob and LIKE characters, at 16 operations per Txn.
mod prefixed_small_txns {
    kv_conformance::suite!(|| super::store("app*[1]?%_/", 16));
}

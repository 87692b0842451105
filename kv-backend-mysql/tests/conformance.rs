//! The whole conformance suite against a live MySQL / MariaDB from
//! kv-testkit: once with the background purge off (so expiry is proven by
//! the read-side filter alone) and once with it running every 500 ms on
//! another table.

use std::sync::Arc;
use std::time::Duration;

use kv_backend_mysql::MysqlStore;
use kv_core::KvStore;

async fn store(table: &str, purge: Option<Duration>) -> Option<Arc<dyn KvStore>> {
    let server = kv_testkit::mysql().await?;
    let store = MysqlStore::builder()
        .url(server.url())
        .table(table)
        .max_connections(4)
        .purge_interval(purge)
        .connect()
        .await
        .expect("connect to the test MySQL");
    Some(store.into_dyn())
}

/// Expired rows stay in the table: only the read filter hides them.
mod without_purge {
    kv_conformance::suite!(|| super::store("kv_store", None));
}

/// Another table, with the purge deleting expired rows underneath.
mod with_purge {
    kv_conformance::suite!(|| super::store(
        "kv_conformance_2",
        Some(std::time::Duration::from_millis(500))
    ));
}

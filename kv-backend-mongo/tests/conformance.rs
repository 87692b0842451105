//! The whole conformance suite against the testkit's MongoDB: once on a
//! replica set (batches in transactions, `atomic_batch`), once on a
//! standalone server (no transactions) with at most 50 statements per
//! command, so every batch of more than 50 keys (the 10,000-key batch, the
//! bulk loads' chunks of 1,000) spans several commands there. (7 made the
//! 50,000-key bulk case send 21,000 commands and outlast its 3 minutes on
//! the 2-core CI machine.)
//!
//! On the test server, SecantusDB, the two large cases (a bulk load of
//! 50,000 entries, an export of 20,000 keys) run at a fifth of their size
//! (`kv_conformance::scale_large_cases(20)`): at full size they took about
//! six minutes of this suite on the 2-core CI machine. Against a real
//! mongod (`KV_TEST_MONGO_URL` or Docker) they run at full size.
//!
//! Each case gets a collection of its own. Cases never see each other's
//! keys anyway (each works under its own prefix); the test server's range
//! scans cost the size of the whole collection (see the README), and one
//! collection shared with the 50,000-key bulk case made every listing of
//! every other case slow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use kv_backend_mongo::{MongoConfig, MongoStore};
use kv_core::KvStore;

async fn store(
    server: Option<&'static kv_testkit::TestServer>,
    collection: &str,
    max_statements: usize,
) -> Option<Arc<dyn KvStore>> {
    static CASE: AtomicU32 = AtomicU32::new(0);
    let collection = format!(
        "{collection}_{}_{}",
        std::process::id(),
        CASE.fetch_add(1, Ordering::Relaxed)
    );
    let config = MongoConfig {
        collection: Some(collection),
        max_statements_per_command: max_statements,
        ..MongoConfig::from_url(server?.url()).expect("the test server's URL")
    };
    let store = MongoStore::from_config(config)
        .await
        .expect("connect to the test MongoDB");
    if is_secantus(&store).await {
        kv_conformance::scale_large_cases(20);
    }
    Some(store.into_dyn())
}

/// Whether the server is SecantusDB (its `serverStatus` says so).
async fn is_secantus(store: &MongoStore) -> bool {
    let status = store
        .client()
        .database("admin")
        .run_command(mongodb::bson::doc! {"serverStatus": 1})
        .await
        .expect("serverStatus");
    status.contains_key("secantus")
}

mod replica_set {
    kv_conformance::suite!(|| async {
        super::store(kv_testkit::mongo().await, "conformance", 100_000).await
    });
}

/// No transactions: `atomic_batch` false, batches of several commands.
mod standalone {
    kv_conformance::suite!(|| async {
        super::store(kv_testkit::mongo_standalone().await, "conformance", 50).await
    });
}

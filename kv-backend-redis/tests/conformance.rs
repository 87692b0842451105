//! The whole conformance suite against a live Redis from kv-testkit: once
//! without a key prefix and with the index purge off (so listing proves its
//! own filtering of expired keys), once with a glob-character prefix and the
//! purge running every 500 ms underneath; without the listing index; and
//! wrapped in every layer.

use std::sync::Arc;
use std::time::Duration;

use kv_backend_redis::RedisStore;
use kv_core::KvStore;

async fn store(prefix: &str, purge: Option<Duration>) -> Option<Arc<dyn KvStore>> {
    indexed(prefix, purge, true).await
}

async fn indexed(prefix: &str, purge: Option<Duration>, index: bool) -> Option<Arc<dyn KvStore>> {
    let server = kv_testkit::redis().await?;
    let store = RedisStore::builder()
        .url(server.url())
        .key_prefix(prefix)
        .purge_interval(purge)
        .list_index(index)
        .connect()
        .await
        .expect("connect to the test Redis");
    Some(store.into_dyn())
}

mod unprefixed {
    kv_conformance::suite!(|| super::store("", None));
}

/// With a key prefix (containing glob characters, which must stay literal).
mod prefixed {
    kv_conformance::suite!(|| super::store(
        "app*[1]?:",
        Some(std::time::Duration::from_millis(500))
    ));
}

/// Without the listing index (`list_index = false`): the list cases are
/// skipped by capability and `list_without_support_is_unsupported` checks
/// the refusals.
mod without_index {
    kv_conformance::suite!(|| super::indexed("noindex:", None, false));
}

/// Every layer at once, in the documented order, is invisible to the
/// contract on a real server too.
mod layered {
    use std::sync::Arc;
    use std::time::Duration;

    use kv_core::{
        ConcurrencyLimitLayer, KvStore, Layer, MetricsLayer, RetryLayer, TimeoutLayer, TracingLayer,
    };

    async fn store() -> Option<Arc<dyn KvStore>> {
        let store = super::store("layered:", None).await?;
        let store = ConcurrencyLimitLayer::new(16).layer(store);
        let store = TimeoutLayer::new(Duration::from_secs(30)).layer(store);
        let store = RetryLayer::new().layer(store);
        let store = MetricsLayer::new().layer(store);
        Some(TracingLayer::new().layer(store))
    }

    kv_conformance::suite!(store);
}

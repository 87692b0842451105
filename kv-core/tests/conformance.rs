//! The whole conformance suite against `MemoryStore`: as `Arc<dyn KvStore>`,
//! as `Box<dyn KvStore>`, as the concrete type, with batch and value limits,
//! without TTL, without listing, and through a namespace (`PrefixStore`).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::sync::Arc;

use kv_core::{KvStore, MemoryStore, PrefixStore};

mod arc_dyn {
    use super::*;
    kv_conformance::suite!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn KvStore> });
}

mod box_dyn {
    use super::*;
    kv_conformance::suite!(|| async { Box::new(MemoryStore::new()) as Box<dyn KvStore> });
}

mod concrete {
    use super::*;
    kv_conformance::suite!(|| async { Arc::new(MemoryStore::new()) });
}

/// Limits like etcd's: 128 ops a batch, 1.5 MiB values.
mod limited {
    use super::*;
    kv_conformance::suite!(|| async {
        let store = MemoryStore::builder()
            .max_batch_ops(Some(128))
            .max_value_bytes(1536 * 1024)
            .build();
        Arc::new(store) as Arc<dyn KvStore>
    });
}

/// A backend without TTL: every TTL must be `Unsupported`.
mod without_ttl {
    use super::*;
    kv_conformance::suite!(|| async {
        Arc::new(MemoryStore::builder().ttl(false).build()) as Arc<dyn KvStore>
    });
}

/// A store that cannot list (as Redis without its index): `list` and what
/// is built on it must be `Unsupported`, everything else unchanged.
mod without_listing {
    use super::*;
    kv_conformance::suite!(|| async {
        Arc::new(MemoryStore::builder().listing(false).build()) as Arc<dyn KvStore>
    });
}

/// The namespace layer keeps the whole contract.
mod prefixed {
    use super::*;
    kv_conformance::suite!(|| async {
        let root: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        Arc::new(PrefixStore::new(root, "tenant-7:").expect("valid prefix")) as Arc<dyn KvStore>
    });
}

/// Every layer at once, in the documented order, is invisible to the
/// contract.
mod layered {
    use std::time::Duration;

    use kv_core::{ConcurrencyLimitLayer, Layer, RetryLayer, TimeoutLayer};

    use super::*;

    kv_conformance::suite!(|| async {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let store = ConcurrencyLimitLayer::new(16).layer(store);
        let store = TimeoutLayer::new(Duration::from_secs(30)).layer(store);
        let store = RetryLayer::new().layer(store);
        #[cfg(feature = "metrics")]
        let store = kv_core::MetricsLayer::new().layer(store);
        #[cfg(feature = "tracing")]
        let store = kv_core::TracingLayer::new().with_keys(true).layer(store);
        store
    });
}

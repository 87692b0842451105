//! The `KvStoreExt` helpers over the store.

use std::sync::Arc;

use kv_core::{Entry, KvStore, KvStoreExt};

use crate::support::{Space, b, list_all, put};

/// `batch_exists` is aligned with its input.
pub async fn batch_exists_is_aligned(store: Arc<dyn KvStore>) {
    let s = Space::new("ext-exists");
    put(&*store, &s.key("a"), "1").await;
    put(&*store, &s.key("c"), "").await;
    let got = store
        .batch_exists(&s.keys(&["a", "b", "c", "a"]))
        .await
        .unwrap();
    assert_eq!(got, [true, false, true, true]);
    s.cleanup(&*store).await;
}

/// `clear(prefix)` removes every key with the prefix, in batches within the
/// backend's limit, and nothing else.
pub async fn clear_removes_only_the_prefix(store: Arc<dyn KvStore>) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks clear
    }
    let s = Space::new("ext-clear");
    let chunk = store.capabilities().max_batch_ops.unwrap_or(1000).min(1000);
    let names: Vec<String> = (0..2500).map(|i| format!("in/{i:04}")).collect();
    for part in names.chunks(chunk) {
        store
            .batch_set(part.iter().map(|n| Entry::new(s.key(n), b("v"))).collect())
            .await
            .unwrap();
    }
    put(&*store, &s.key("in"), "bare prefix is not under in/").await;
    put(&*store, &s.key("out/1"), "v").await;
    assert_eq!(store.clear(&s.raw("in/")).await.unwrap(), 2500);
    assert_eq!(
        s.names(&list_all(&*store, s.prefix(), 100).await),
        ["in", "out/1"]
    );
    s.cleanup(&*store).await;
}

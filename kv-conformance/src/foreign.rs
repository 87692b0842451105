//! Values written through a backend's own client (its escape hatch:
//! RocksDB's `db()`, etcd's `client()`, MongoDB's `collection()`) in a
//! form kv cannot read. Every backend agrees on what such a value is: a
//! **present key whose value cannot be read**.
//!
//! - `get`, `batch_get` (and `batch_get_with_ttl`) fail with
//!   [`ErrorKind::Backend`] naming the key, never `None`;
//! - `exists` is `true` and `list` lists the key;
//! - `delete` and `batch_delete` remove it and count it as live, and
//!   `clear` of its prefix removes it, so one foreign value never blocks
//!   its own removal or a prefix's.
//!
//! Not part of [`suite!`](crate::suite): a backend with an escape hatch
//! calls [`foreign_values_are_present_keys`] from its own tests with a
//! function that writes a foreign value through it.

use std::future::Future;

use kv_core::{ErrorKind, Key, KvStore, KvStoreExt};

use crate::support::{Space, list_all, put};

/// The rules above, for a backend whose `write_foreign(key)` stores a value
/// kv cannot read under `key` (the store's own key: the function adds any
/// prefix the backend keeps).
pub async fn foreign_values_are_present_keys<F, Fut>(store: &dyn KvStore, write_foreign: F)
where
    F: Fn(Key) -> Fut,
    Fut: Future<Output = ()>,
{
    let s = Space::new("foreign");
    put(store, &s.key("a"), "1").await;
    write_foreign(s.key("b")).await;
    put(store, &s.key("c"), "3").await;

    let err = store.get(&s.key("b")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert_eq!(err.key(), Some(s.raw("b").as_str()), "{err}");
    let err = store.batch_get(&s.keys(&["a", "b"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert_eq!(err.key(), Some(s.raw("b").as_str()), "{err}");

    assert!(store.exists(&s.key("b")).await.unwrap());
    assert_eq!(
        s.names(&list_all(store, s.prefix(), 2).await),
        ["a", "b", "c"]
    );

    assert!(store.delete(&s.key("b")).await.unwrap());
    assert!(!store.exists(&s.key("b")).await.unwrap());
    assert!(!store.delete(&s.key("b")).await.unwrap());

    write_foreign(s.key("b")).await;
    write_foreign(s.key("d")).await;
    let removed = store
        .batch_delete(&s.keys(&["b", "d", "missing"]))
        .await
        .unwrap();
    assert_eq!(removed, 2);

    write_foreign(s.key("b")).await;
    assert_eq!(store.clear(s.prefix()).await.unwrap(), 3);
    assert!(list_all(store, s.prefix(), 10).await.is_empty());
    assert_eq!(store.get(&s.key("b")).await.unwrap(), None);
}

//! Single-key operations: get, set, delete, exists, value sizes, health.

use bytes::Bytes;
use kv_core::{ErrorKind, KvStore, SetOptions};

use crate::support::{Space, assert_kind, b, get, put};

/// A key never written reads as `None`, does not exist, and deleting it
/// returns `false`.
pub async fn missing_key_is_none_absent_and_not_deleted(store: &dyn KvStore) {
    let s = Space::new("missing");
    let k = s.key("never-written");
    assert_eq!(get(store, &k).await, None);
    assert!(!store.exists(&k).await.unwrap());
    assert!(!store.delete(&k).await.unwrap());
}

/// A value written is read back byte for byte.
pub async fn set_then_get_round_trips(store: &dyn KvStore) {
    let s = Space::new("roundtrip");
    let k = s.key("a");
    put(store, &k, "value-1").await;
    assert_eq!(get(store, &k).await, Some(b("value-1")));
    s.cleanup(store).await;
}

/// A second set replaces the first value.
pub async fn set_overwrites_existing_value(store: &dyn KvStore) {
    let s = Space::new("overwrite");
    let k = s.key("a");
    put(store, &k, "first").await;
    put(store, &k, "second, longer than the first").await;
    assert_eq!(
        get(store, &k).await,
        Some(b("second, longer than the first"))
    );
    put(store, &k, "3").await;
    assert_eq!(get(store, &k).await, Some(b("3")));
    s.cleanup(store).await;
}

/// Deleting a live key returns `true` and removes it; a second delete
/// returns `false`.
pub async fn delete_returns_whether_a_live_key_existed(store: &dyn KvStore) {
    let s = Space::new("delete");
    let k = s.key("a");
    put(store, &k, "v").await;
    assert!(store.delete(&k).await.unwrap());
    assert_eq!(get(store, &k).await, None);
    assert!(!store.delete(&k).await.unwrap());
    s.cleanup(store).await;
}

/// `exists` follows set and delete.
pub async fn exists_follows_set_and_delete(store: &dyn KvStore) {
    let s = Space::new("exists");
    let k = s.key("a");
    assert!(!store.exists(&k).await.unwrap());
    put(store, &k, "v").await;
    assert!(store.exists(&k).await.unwrap());
    store.delete(&k).await.unwrap();
    assert!(!store.exists(&k).await.unwrap());
    s.cleanup(store).await;
}

/// An empty value is a present value, not an absent key.
pub async fn empty_value_is_present_not_absent(store: &dyn KvStore) {
    let s = Space::new("empty");
    let k = s.key("a");
    store
        .set(&k, Bytes::new(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(get(store, &k).await, Some(Bytes::new()));
    assert!(store.exists(&k).await.unwrap());
    assert_eq!(
        store.batch_get(std::slice::from_ref(&k)).await.unwrap(),
        vec![Some(Bytes::new())]
    );
    assert!(store.delete(&k).await.unwrap());
    s.cleanup(store).await;
}

/// Every byte value 0..=255, including NUL and invalid UTF-8, round trips.
pub async fn binary_value_with_every_byte_round_trips(store: &dyn KvStore) {
    let s = Space::new("binary");
    let k = s.key("a");
    let value: Bytes = (0..=255u8)
        .chain((0..=255u8).rev())
        .collect::<Vec<_>>()
        .into();
    store
        .set(&k, value.clone(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(get(store, &k).await, Some(value));
    s.cleanup(store).await;
}

/// A 1 MiB value (or the backend's maximum, if smaller) round trips.
pub async fn one_mib_value_round_trips(store: &dyn KvStore) {
    let s = Space::new("mib");
    let k = s.key("a");
    let len = (1024 * 1024).min(store.capabilities().max_value_bytes);
    let value: Bytes = (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
    store
        .set(&k, value.clone(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(get(store, &k).await, Some(value));
    s.cleanup(store).await;
}

/// A value one byte over `max_value_bytes` is `ValueTooLarge` and nothing is
/// written; the old value stays.
pub async fn value_over_max_is_rejected_and_old_value_stays(store: &dyn KvStore) {
    let max = store.capabilities().max_value_bytes;
    if max > 1 << 30 {
        return; // too large to allocate in a test; the limit is the server's
    }
    let s = Space::new("toolarge");
    let k = s.key("a");
    put(store, &k, "old").await;
    let too_big = Bytes::from(vec![0u8; max + 1]);
    assert_kind(
        store.set(&k, too_big, SetOptions::default()).await,
        ErrorKind::ValueTooLarge,
    );
    assert_eq!(get(store, &k).await, Some(b("old")));
    s.cleanup(store).await;
}

/// `health` makes a round trip and names the backend.
pub async fn health_reports_backend_and_latency(store: &dyn KvStore) {
    let health = store.health().await.unwrap();
    assert_eq!(health.backend, store.backend());
    assert!(health.latency < std::time::Duration::from_secs(30));
}

/// The capabilities are self-consistent.
pub async fn capabilities_are_consistent(store: &dyn KvStore) {
    let caps = store.capabilities();
    assert!(
        caps.max_value_bytes >= 1024,
        "max_value_bytes {} is too small to be useful",
        caps.max_value_bytes
    );
    if let Some(max) = caps.max_batch_ops {
        assert!(max >= 1);
    }
    assert!(
        caps.listing || !caps.ordered_list,
        "ordered_list promises the order of a listing the store cannot do"
    );
    assert_eq!(caps, store.capabilities(), "capabilities must be stable");
}

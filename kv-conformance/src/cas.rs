//! Compare-and-swap: create, swap, delete, mismatch, and atomicity.

use kv_core::{ErrorKind, KvStore, SetOptions};

use crate::support::{Space, assert_kind, b, get, put};

fn none() -> SetOptions {
    SetOptions::default()
}

/// Without CAS support, CAS is `Unsupported` and changes nothing.
pub async fn cas_without_support_is_unsupported(store: &dyn KvStore) {
    if store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-unsupported");
    let k = s.key("a");
    assert_kind(
        store.compare_and_swap(&k, None, Some(b("v")), none()).await,
        ErrorKind::Unsupported,
    );
    assert_eq!(get(store, &k).await, None);
}

/// Expecting absence creates the key when it is absent.
pub async fn cas_creates_when_absent(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-create");
    let k = s.key("a");
    assert!(
        store
            .compare_and_swap(&k, None, Some(b("v")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("v")));
    s.cleanup(store).await;
}

/// Expecting absence fails when the key exists, and changes nothing.
pub async fn cas_create_fails_when_present(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-present");
    let k = s.key("a");
    put(store, &k, "there").await;
    assert!(
        !store
            .compare_and_swap(&k, None, Some(b("v")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("there")));
    s.cleanup(store).await;
}

/// A matching expected value swaps.
pub async fn cas_swaps_on_match(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-swap");
    let k = s.key("a");
    put(store, &k, "1").await;
    assert!(
        store
            .compare_and_swap(&k, Some(b("1")), Some(b("2")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("2")));
    s.cleanup(store).await;
}

/// A mismatched expected value returns `false` and changes nothing; a
/// prefix or extension of the value is a mismatch.
pub async fn cas_mismatch_changes_nothing(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-mismatch");
    let k = s.key("a");
    put(store, &k, "value").await;
    for wrong in ["other", "valu", "value ", "", "VALUE"] {
        assert!(
            !store
                .compare_and_swap(&k, Some(b(wrong)), Some(b("x")), none())
                .await
                .unwrap()
        );
        assert!(
            !store
                .compare_and_swap(&k, Some(b(wrong)), None, none())
                .await
                .unwrap()
        );
    }
    assert_eq!(get(store, &k).await, Some(b("value")));
    s.cleanup(store).await;
}

/// Expecting a value of an absent key returns `false` and creates nothing.
pub async fn cas_expecting_value_of_absent_key_fails(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-absent");
    let k = s.key("a");
    assert!(
        !store
            .compare_and_swap(&k, Some(b("v")), Some(b("x")), none())
            .await
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(&k, Some(b("")), Some(b("x")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, None);
}

/// `new = None` deletes when the value matches.
pub async fn cas_deletes_when_equal(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-delete");
    let k = s.key("a");
    put(store, &k, "v").await;
    assert!(
        store
            .compare_and_swap(&k, Some(b("v")), None, none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, None);
    assert!(!store.exists(&k).await.unwrap());
    s.cleanup(store).await;
}

/// Expecting absence and writing nothing on an absent key holds (no write).
pub async fn cas_absent_to_absent_holds(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-none");
    let k = s.key("a");
    assert!(
        store
            .compare_and_swap(&k, None, None, none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, None);
    put(store, &k, "v").await;
    assert!(
        !store
            .compare_and_swap(&k, None, None, none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("v")));
    s.cleanup(store).await;
}

/// CAS on an empty value distinguishes it from absence.
pub async fn cas_distinguishes_empty_value_from_absent(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-empty");
    let k = s.key("a");
    put(store, &k, "").await;
    assert!(
        !store
            .compare_and_swap(&k, None, Some(b("x")), none())
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap(&k, Some(b("")), Some(b("x")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("x")));
    s.cleanup(store).await;
}

/// A CAS whose new value is over `max_value_bytes` is `ValueTooLarge` and
/// changes nothing.
pub async fn cas_with_oversize_value_is_rejected(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.cas || caps.max_value_bytes > 1 << 30 {
        return;
    }
    let s = Space::new("cas-big");
    let k = s.key("a");
    put(store, &k, "v").await;
    let big = bytes::Bytes::from(vec![0u8; caps.max_value_bytes + 1]);
    assert_kind(
        store
            .compare_and_swap(&k, Some(b("v")), Some(big), none())
            .await,
        ErrorKind::ValueTooLarge,
    );
    assert_eq!(get(store, &k).await, Some(b("v")));
    s.cleanup(store).await;
}

/// Binary values, including NUL bytes, compare exactly.
pub async fn cas_compares_binary_values_exactly(store: &dyn KvStore) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("cas-binary");
    let k = s.key("a");
    let v1 = bytes::Bytes::from_static(b"\x00\xff\x00");
    store.set(&k, v1.clone(), none()).await.unwrap();
    let near = bytes::Bytes::from_static(b"\x00\xff\x01");
    assert!(
        !store
            .compare_and_swap(&k, Some(near), Some(b("x")), none())
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap(&k, Some(v1), Some(b("y")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("y")));
    s.cleanup(store).await;
}

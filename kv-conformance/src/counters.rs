//! Counters: `increment`.

use std::time::{Duration, Instant};

use kv_core::{ErrorKind, KvStore, SetOptions};

use crate::support::{
    LONG_TTL, SHORT_TTL, Space, assert_kind, b, get, put, wait_past_short_ttl, within_short_ttl,
};

fn none() -> SetOptions {
    SetOptions::default()
}

/// Without counters, `increment` is `Unsupported` and writes nothing.
pub async fn counters_without_support_are_unsupported(store: &dyn KvStore) {
    if store.capabilities().counters {
        return;
    }
    let s = Space::new("ctr-unsupported");
    let k = s.key("n");
    assert_kind(store.increment(&k, 1, none()).await, ErrorKind::Unsupported);
    assert_eq!(get(store, &k).await, None);
}

/// An absent key counts from 0; deltas add, negative ones and zero too;
/// the value is stored as its decimal text.
pub async fn increment_starts_at_zero_and_adds(store: &dyn KvStore) {
    if !store.capabilities().counters {
        return;
    }
    let s = Space::new("ctr-add");
    let k = s.key("n");
    assert_eq!(store.increment(&k, 5, none()).await.unwrap(), 5);
    assert_eq!(store.increment(&k, -7, none()).await.unwrap(), -2);
    assert_eq!(store.increment(&k, 0, none()).await.unwrap(), -2);
    assert_eq!(get(store, &k).await, Some(b("-2")));
    let z = s.key("zero");
    assert_eq!(store.increment(&z, 0, none()).await.unwrap(), 0);
    assert_eq!(
        get(store, &z).await,
        Some(b("0")),
        "a zero increment creates the key"
    );
    put(store, &k, "40").await;
    assert_eq!(store.increment(&k, 2, none()).await.unwrap(), 42);
    s.cleanup(store).await;
}

/// A value that is not a decimal `i64` is `NotACounter` and stays as it
/// was.
pub async fn increment_of_a_non_counter_is_typed_and_changes_nothing(store: &dyn KvStore) {
    if !store.capabilities().counters {
        return;
    }
    let s = Space::new("ctr-not");
    for (i, value) in ["abc", "1.5", "\"7\"", " 7", "", "99999999999999999999"]
        .iter()
        .enumerate()
    {
        let k = s.key(&format!("v{i}"));
        put(store, &k, value).await;
        let result = store.increment(&k, 1, none()).await;
        assert_kind(result, ErrorKind::NotACounter);
        assert_eq!(get(store, &k).await, Some(b(value)), "{value:?} changed");
    }
    s.cleanup(store).await;
}

/// Going past `i64::MAX` or `i64::MIN` is `Overflow` and changes nothing.
pub async fn increment_overflow_is_typed_and_changes_nothing(store: &dyn KvStore) {
    if !store.capabilities().counters {
        return;
    }
    let s = Space::new("ctr-overflow");
    let k = s.key("n");
    assert_eq!(
        store.increment(&k, i64::MAX, none()).await.unwrap(),
        i64::MAX
    );
    assert_kind(store.increment(&k, 1, none()).await, ErrorKind::Overflow);
    assert_eq!(get(store, &k).await, Some(b(&i64::MAX.to_string())));
    let m = s.key("m");
    assert_eq!(
        store.increment(&m, i64::MIN, none()).await.unwrap(),
        i64::MIN
    );
    assert_kind(store.increment(&m, -1, none()).await, ErrorKind::Overflow);
    assert_eq!(get(store, &m).await, Some(b(&i64::MIN.to_string())));
    s.cleanup(store).await;
}

/// The TTL applies when the increment creates the key; later increments
/// keep the key's expiry (a fixed window) or its lack of one; after expiry
/// the count starts again from 0.
pub async fn increment_ttl_applies_on_create_only(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.counters {
        return;
    }
    let s = Space::new("ctr-ttl");
    let forever = s.key("forever");
    assert_eq!(store.increment(&forever, 1, none()).await.unwrap(), 1);
    if !caps.ttl {
        assert_kind(
            store
                .increment(&forever, 1, SetOptions::ttl(SHORT_TTL))
                .await,
            ErrorKind::Unsupported,
        );
        assert_eq!(get(store, &forever).await, Some(b("1")));
        s.cleanup(store).await;
        return;
    }
    assert_eq!(
        store
            .increment(&forever, 1, SetOptions::ttl(SHORT_TTL))
            .await
            .unwrap(),
        2
    );
    let window = s.key("window");
    let started = Instant::now();
    assert_eq!(
        store
            .increment(&window, 1, SetOptions::ttl(SHORT_TTL))
            .await
            .unwrap(),
        1
    );
    let second = store
        .increment(&window, 1, SetOptions::ttl(LONG_TTL))
        .await
        .unwrap();
    if within_short_ttl(started) {
        assert_eq!(second, 2);
        let ttl = store
            .batch_get_with_ttl(std::slice::from_ref(&window))
            .await
            .unwrap()[0]
            .as_ref()
            .and_then(|e| e.ttl);
        if within_short_ttl(started) {
            assert!(
                ttl.is_some_and(|t| t <= SHORT_TTL),
                "the window kept its first TTL, got {ttl:?}"
            );
        }
    }
    wait_past_short_ttl().await;
    assert_eq!(get(store, &window).await, None, "the window expired");
    assert_eq!(
        store.increment(&window, 1, none()).await.unwrap(),
        1,
        "an expired counter starts again"
    );
    let entries = store
        .batch_get_with_ttl(&[forever.clone(), window.clone()])
        .await
        .unwrap();
    assert_eq!(
        entries[0].as_ref().map(|e| e.ttl),
        Some(None),
        "forever kept no TTL"
    );
    assert_eq!(entries[1].as_ref().map(|e| e.ttl), Some(None));
    assert_eq!(get(store, &forever).await, Some(b("2")));
    s.cleanup(store).await;
}

/// A zero TTL fails before any I/O and writes nothing.
pub async fn increment_with_a_zero_ttl_writes_nothing(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.counters {
        return;
    }
    let s = Space::new("ctr-zero-ttl");
    let k = s.key("n");
    let kind = if caps.ttl {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Unsupported
    };
    assert_kind(
        store
            .increment(&k, 1, SetOptions::ttl(Duration::ZERO))
            .await,
        kind,
    );
    assert_eq!(get(store, &k).await, None);
    s.cleanup(store).await;
}

//! Versions and conditional writes: `get_versioned`, `batch_get_versioned`
//! and `write_if`.

use std::time::{Duration, Instant};

use kv_core::{Condition, Entry, ErrorKind, Key, KvStore, SetOptions, Version, WriteOp};

use crate::support::{
    SHORT_TTL, Space, assert_kind, b, get, put, wait_past_short_ttl, within_short_ttl,
};

fn none() -> SetOptions {
    SetOptions::default()
}

/// The version `key` is at now; panics when it is absent.
pub(crate) async fn version_of(store: &dyn KvStore, key: &Key) -> Version {
    store
        .get_versioned(key)
        .await
        .unwrap_or_else(|e| panic!("get_versioned {key:?}: {e}"))
        .unwrap_or_else(|| panic!("{key:?} is absent"))
        .version
}

/// Without versions, versioned reads and conditional writes are
/// `Unsupported` and write nothing.
pub async fn versions_without_support_are_unsupported(store: &dyn KvStore) {
    if store.capabilities().versions {
        return;
    }
    let s = Space::new("ver-unsupported");
    let k = s.key("a");
    assert_kind(store.get_versioned(&k).await, ErrorKind::Unsupported);
    assert_kind(
        store.batch_get_versioned(std::slice::from_ref(&k)).await,
        ErrorKind::Unsupported,
    );
    assert_kind(
        store
            .write_if(&k, Condition::Absent, Some(b("v")), none())
            .await,
        ErrorKind::Unsupported,
    );
    assert_eq!(get(store, &k).await, None);
}

/// A versioned read returns the value with a version, `None` for a
/// missing key; the batch form is aligned with its input, duplicates
/// answered at each position with the same version.
pub async fn versioned_reads_return_values_with_versions(store: &dyn KvStore) {
    if !store.capabilities().versions {
        return;
    }
    let s = Space::new("ver-read");
    let (a, c) = (s.key("a"), s.key("c"));
    put(store, &a, "1").await;
    put(store, &c, "3").await;
    let one = store.get_versioned(&a).await.unwrap().unwrap();
    assert_eq!(one.value, b("1"));
    assert_eq!(store.get_versioned(&s.key("b")).await.unwrap(), None);
    let keys = [a.clone(), s.key("b"), c.clone(), a.clone()];
    let found = store.batch_get_versioned(&keys).await.unwrap();
    assert_eq!(found.len(), 4);
    assert_eq!(found[0].as_ref().map(|f| &f.value), Some(&b("1")));
    assert_eq!(found[1], None);
    assert_eq!(found[2].as_ref().map(|f| &f.value), Some(&b("3")));
    assert_eq!(found[0], found[3]);
    assert_eq!(found[0].as_ref().map(|f| &f.version), Some(&one.version));
    assert!(store.batch_get_versioned(&[]).await.unwrap().is_empty());
    s.cleanup(store).await;
}

/// Every kind of write gives the key a new version, even one writing the
/// same bytes; a key deleted and written again gets none of its earlier
/// versions back.
pub async fn every_write_changes_the_version(store: &dyn KvStore) {
    if !store.capabilities().versions {
        return;
    }
    let s = Space::new("ver-every-write");
    let k = s.key("a");
    let mut seen: Vec<Version> = Vec::new();
    let mut record = |version: Version, what: &str| {
        assert!(
            !seen.contains(&version),
            "{what} left the version at one seen before: {version:?}"
        );
        seen.push(version);
    };
    put(store, &k, "same").await;
    record(version_of(store, &k).await, "set");
    put(store, &k, "same").await;
    record(version_of(store, &k).await, "set of the same bytes");
    store
        .batch_set(vec![Entry::new(k.clone(), "same")])
        .await
        .unwrap();
    record(version_of(store, &k).await, "batch_set");
    store
        .write_batch(vec![WriteOp::Put(Entry::new(k.clone(), "same"))])
        .await
        .unwrap();
    record(version_of(store, &k).await, "write_batch");
    let at = version_of(store, &k).await;
    assert!(
        store
            .write_if(&k, Condition::Version(at), Some(b("same")), none())
            .await
            .unwrap()
    );
    record(version_of(store, &k).await, "write_if");
    if store.capabilities().cas {
        assert!(
            store
                .compare_and_swap(&k, Some(b("same")), Some(b("same")), none())
                .await
                .unwrap()
        );
        record(version_of(store, &k).await, "compare_and_swap");
    }
    assert!(store.delete(&k).await.unwrap());
    put(store, &k, "same").await;
    record(version_of(store, &k).await, "delete then set");
    s.cleanup(store).await;
}

/// `write_if` at a version writes only while the key is still at it; a
/// stale version changes nothing; a delete at a version removes the key.
pub async fn write_if_version_applies_only_at_that_version(store: &dyn KvStore) {
    if !store.capabilities().versions {
        return;
    }
    let s = Space::new("ver-write-if");
    let k = s.key("a");
    put(store, &k, "1").await;
    let v1 = version_of(store, &k).await;
    assert!(
        store
            .write_if(&k, Condition::Version(v1.clone()), Some(b("2")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("2")));
    assert!(
        !store
            .write_if(&k, Condition::Version(v1.clone()), Some(b("3")), none())
            .await
            .unwrap(),
        "a stale version must not write"
    );
    assert!(
        !store
            .write_if(&k, Condition::Version(v1), None, none())
            .await
            .unwrap(),
        "a stale version must not delete"
    );
    assert_eq!(get(store, &k).await, Some(b("2")));
    let v2 = version_of(store, &k).await;
    assert!(
        store
            .write_if(&k, Condition::Version(v2.clone()), None, none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, None);
    assert!(
        !store
            .write_if(&k, Condition::Version(v2), Some(b("4")), none())
            .await
            .unwrap(),
        "a version of a deleted key must not write"
    );
    assert_eq!(get(store, &k).await, None);
    s.cleanup(store).await;
}

/// `Absent` holds only for a missing key, `Present` only for a present
/// one; an empty value is present.
pub async fn write_if_absent_and_present(store: &dyn KvStore) {
    if !store.capabilities().versions {
        return;
    }
    let s = Space::new("ver-absent-present");
    let k = s.key("a");
    assert!(
        !store
            .write_if(&k, Condition::Present, Some(b("x")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, None);
    assert!(
        store
            .write_if(&k, Condition::Absent, Some(b("")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("")));
    assert!(
        !store
            .write_if(&k, Condition::Absent, Some(b("y")), none())
            .await
            .unwrap()
    );
    assert!(
        store
            .write_if(&k, Condition::Present, Some(b("z")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("z")));
    assert!(
        store
            .write_if(&k, Condition::Present, None, none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, None);
    assert!(
        store
            .write_if(&k, Condition::Absent, None, none())
            .await
            .unwrap(),
        "deleting an absent key while requiring absence holds"
    );
    assert_eq!(get(store, &k).await, None);
    s.cleanup(store).await;
}

/// A conditional write keeps its TTL; once it elapses the key is absent
/// for `write_if` and versioned reads.
pub async fn write_if_ttl_and_expiry(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.versions || !caps.ttl {
        return;
    }
    let s = Space::new("ver-ttl");
    let k = s.key("a");
    let started = Instant::now();
    assert!(
        store
            .write_if(
                &k,
                Condition::Absent,
                Some(b("v")),
                SetOptions::ttl(SHORT_TTL)
            )
            .await
            .unwrap()
    );
    let read = store.get_versioned(&k).await.unwrap();
    if within_short_ttl(started) {
        assert_eq!(read.map(|r| r.value), Some(b("v")));
    }
    wait_past_short_ttl().await;
    assert_eq!(store.get_versioned(&k).await.unwrap(), None);
    assert_eq!(
        store
            .batch_get_versioned(std::slice::from_ref(&k))
            .await
            .unwrap(),
        [None]
    );
    assert!(
        !store
            .write_if(&k, Condition::Present, Some(b("late")), none())
            .await
            .unwrap()
    );
    assert!(
        store
            .write_if(&k, Condition::Absent, Some(b("again")), none())
            .await
            .unwrap()
    );
    assert_eq!(get(store, &k).await, Some(b("again")));
    s.cleanup(store).await;
}

/// A conditional write with a value over the limit or a zero TTL fails
/// before any I/O and changes nothing.
pub async fn write_if_with_bad_input_changes_nothing(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.versions {
        return;
    }
    let s = Space::new("ver-bad-input");
    let k = s.key("a");
    put(store, &k, "old").await;
    let v = version_of(store, &k).await;
    if caps.max_value_bytes <= 1 << 30 {
        let big = bytes::Bytes::from(vec![b'x'; caps.max_value_bytes + 1]);
        assert_kind(
            store
                .write_if(&k, Condition::Version(v.clone()), Some(big), none())
                .await,
            ErrorKind::ValueTooLarge,
        );
    }
    let zero = SetOptions::ttl(Duration::ZERO);
    let kind = if caps.ttl {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Unsupported
    };
    assert_kind(
        store
            .write_if(&k, Condition::Version(v.clone()), Some(b("new")), zero)
            .await,
        kind,
    );
    assert_eq!(get(store, &k).await, Some(b("old")));
    assert_eq!(version_of(store, &k).await, v);
    s.cleanup(store).await;
}

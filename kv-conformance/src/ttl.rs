//! TTL: exact expiry for every read, per-entry TTL in batches, overwrite
//! rules, and `Unsupported` where there is no TTL.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_core::{Entry, ErrorKind, Key, KvStore, ListOptions, SetOptions, WriteOp};

use crate::support::{
    LONG_TTL, SHORT_TTL, Space, assert_kind, b, get, list_all, live_keys, put, set_all,
    wait_past_short_ttl, within_short_ttl,
};

fn short() -> SetOptions {
    SetOptions::ttl(SHORT_TTL)
}

/// Backends without TTL reject every TTL with `Unsupported` and write nothing.
pub async fn ttl_on_backend_without_ttl_is_unsupported(store: &dyn KvStore) {
    if store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-unsupported");
    let k = s.key("a");
    assert_kind(store.set(&k, b("v"), short()).await, ErrorKind::Unsupported);
    let entry = Entry::new(s.key("b"), b("v")).with_ttl(SHORT_TTL);
    assert_kind(
        store
            .batch_set(vec![Entry::new(s.key("c"), b("v")), entry.clone()])
            .await,
        ErrorKind::Unsupported,
    );
    assert_kind(
        store.write_batch(vec![WriteOp::Put(entry)]).await,
        ErrorKind::Unsupported,
    );
    assert!(live_keys(store, s.prefix(), 10).await.is_empty());
}

/// A key with a TTL is readable before it expires.
pub async fn ttl_key_is_readable_before_expiry(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-live");
    let k = s.key("a");
    store
        .set(&k, b("v"), SetOptions::ttl(LONG_TTL))
        .await
        .unwrap();
    assert_eq!(get(store, &k).await, Some(b("v")));
    assert!(store.exists(&k).await.unwrap());
    assert_eq!(live_keys(store, s.prefix(), 10).await, vec![k]);
    s.cleanup(store).await;
}

/// After its TTL, a key is gone for `get` and `exists`.
pub async fn expired_key_is_gone_for_get_and_exists(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-get");
    let k = s.key("a");
    store.set(&k, b("v"), short()).await.unwrap();
    wait_past_short_ttl().await;
    assert_eq!(get(store, &k).await, None);
    assert!(!store.exists(&k).await.unwrap());
    s.cleanup(store).await;
}

/// After its TTL, a key is `None` in `batch_get` beside live keys.
pub async fn expired_key_is_gone_for_batch_get(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-bget");
    put(store, &s.key("live"), "L").await;
    store.set(&s.key("dead"), b("D"), short()).await.unwrap();
    wait_past_short_ttl().await;
    let got = store
        .batch_get(&s.keys(&["dead", "live", "dead"]))
        .await
        .unwrap();
    assert_eq!(got, vec![None, Some(b("L")), None]);
    s.cleanup(store).await;
}

/// Expired keys are never listed, and pages stay full around them.
pub async fn expired_keys_are_not_listed_and_pages_stay_full(store: &dyn KvStore) {
    if !store.capabilities().ttl || !store.capabilities().listing {
        return;
    }
    let s = Space::new("ttl-list");
    let mut batch = Vec::new();
    for i in 0..20 {
        let e = Entry::new(s.key(&format!("{i:02}")), b("v"));
        batch.push(if i % 2 == 0 { e.with_ttl(SHORT_TTL) } else { e });
    }
    set_all(store, batch).await;
    wait_past_short_ttl().await;
    let expected: Vec<String> = (0..20)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("{i:02}"))
        .collect();
    for limit in [1, 3, 4, 10, 100] {
        let listed = s.names(&list_all(store, s.prefix(), limit).await);
        assert_eq!(listed, expected, "limit {limit}");
    }
    s.cleanup(store).await;
}

/// Deleting an expired key returns `false`; `batch_delete` does not count it.
pub async fn expired_key_is_not_counted_by_delete(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-del");
    store.set(&s.key("a"), b("v"), short()).await.unwrap();
    store.set(&s.key("b"), b("v"), short()).await.unwrap();
    put(store, &s.key("c"), "v").await;
    wait_past_short_ttl().await;
    assert!(!store.delete(&s.key("a")).await.unwrap());
    assert_eq!(store.batch_delete(&s.keys(&["b", "c"])).await.unwrap(), 1);
    s.cleanup(store).await;
}

/// CAS treats an expired key as absent: expecting the old value fails,
/// expecting absence succeeds.
pub async fn expired_key_is_absent_for_cas(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.ttl || !caps.cas {
        return;
    }
    let s = Space::new("ttl-cas");
    let k = s.key("a");
    store.set(&k, b("old"), short()).await.unwrap();
    wait_past_short_ttl().await;
    let swapped = store.compare_and_swap(&k, Some(b("old")), Some(b("x")), SetOptions::default());
    assert!(!swapped.await.unwrap());
    let created = store.compare_and_swap(&k, None, Some(b("new")), SetOptions::default());
    assert!(created.await.unwrap());
    assert_eq!(get(store, &k).await, Some(b("new")));
    s.cleanup(store).await;
}

/// Entries of one `batch_set` keep their own TTLs.
pub async fn batch_set_entries_keep_their_own_ttl(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-batch");
    let batch = vec![
        Entry::new(s.key("short"), b("s")).with_ttl(SHORT_TTL),
        Entry::new(s.key("long"), b("l")).with_ttl(LONG_TTL),
        Entry::new(s.key("none"), b("n")),
    ];
    store.batch_set(batch).await.unwrap();
    wait_past_short_ttl().await;
    let got = store
        .batch_get(&s.keys(&["short", "long", "none"]))
        .await
        .unwrap();
    assert_eq!(got, vec![None, Some(b("l")), Some(b("n"))]);
    s.cleanup(store).await;
}

/// A `write_batch` put keeps its TTL.
pub async fn write_batch_put_keeps_its_ttl(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-wb");
    let ops = vec![
        WriteOp::Put(Entry::new(s.key("short"), b("s")).with_ttl(SHORT_TTL)),
        WriteOp::Put(Entry::new(s.key("plain"), b("p"))),
    ];
    store.write_batch(ops).await.unwrap();
    wait_past_short_ttl().await;
    assert_eq!(s.names(&live_keys(store, s.prefix(), 10).await), ["plain"]);
    s.cleanup(store).await;
}

/// Overwriting a key without TTL clears its TTL.
pub async fn overwrite_without_ttl_clears_ttl(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-clear");
    let (single, batched, written) = (s.key("single"), s.key("batched"), s.key("written"));
    for k in [&single, &batched, &written] {
        store.set(k, b("old"), short()).await.unwrap();
    }
    put(store, &single, "kept").await;
    store
        .batch_set(vec![Entry::new(batched.clone(), b("kept"))])
        .await
        .unwrap();
    store
        .write_batch(vec![WriteOp::Put(Entry::new(written.clone(), b("kept")))])
        .await
        .unwrap();
    wait_past_short_ttl().await;
    let got = store.batch_get(&[single, batched, written]).await.unwrap();
    assert_eq!(got, vec![Some(b("kept")); 3]);
    s.cleanup(store).await;
}

/// Overwriting with a new TTL replaces the old one, longer or shorter.
pub async fn overwrite_with_new_ttl_replaces_it(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-replace");
    let (longer, shorter) = (s.key("longer"), s.key("shorter"));
    store.set(&longer, b("v1"), short()).await.unwrap();
    store
        .set(&longer, b("v2"), SetOptions::ttl(LONG_TTL))
        .await
        .unwrap();
    store
        .set(&shorter, b("v1"), SetOptions::ttl(LONG_TTL))
        .await
        .unwrap();
    store.set(&shorter, b("v2"), short()).await.unwrap();
    wait_past_short_ttl().await;
    assert_eq!(get(store, &longer).await, Some(b("v2")));
    assert_eq!(get(store, &shorter).await, None);
    s.cleanup(store).await;
}

/// A zero TTL is `InvalidArgument` and writes nothing, in every write.
pub async fn zero_ttl_is_invalid_and_writes_nothing(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-zero");
    let zero = SetOptions::ttl(Duration::ZERO);
    assert_kind(
        store.set(&s.key("a"), b("v"), zero).await,
        ErrorKind::InvalidArgument,
    );
    let batch = vec![
        Entry::new(s.key("b"), b("v")),
        Entry::new(s.key("c"), b("v")).with_ttl(Duration::ZERO),
    ];
    assert_kind(store.batch_set(batch).await, ErrorKind::InvalidArgument);
    assert!(live_keys(store, s.prefix(), 10).await.is_empty());
}

/// CAS honours the TTL of the value it writes.
pub async fn cas_new_value_keeps_its_ttl(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.ttl || !caps.cas {
        return;
    }
    let s = Space::new("ttl-casnew");
    let k = s.key("a");
    let started = Instant::now();
    assert!(
        store
            .compare_and_swap(&k, None, Some(b("v")), short())
            .await
            .unwrap()
    );
    let live = store.exists(&k).await.unwrap();
    if within_short_ttl(started) {
        assert!(live);
    }
    wait_past_short_ttl().await;
    assert_eq!(get(store, &k).await, None);
    s.cleanup(store).await;
}

/// An expired key can be written again, without the old TTL.
pub async fn expired_key_can_be_rewritten(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-rewrite");
    let k = s.key("a");
    store.set(&k, b("old"), short()).await.unwrap();
    wait_past_short_ttl().await;
    put(store, &k, "new").await;
    assert_eq!(get(store, &k).await, Some(b("new")));
    if store.capabilities().listing {
        let page = store
            .list(s.prefix(), ListOptions::default())
            .await
            .unwrap();
        assert_eq!(page.keys, vec![k]);
    }
    assert_eq!(
        store.batch_get(&[s.key("a")]).await.unwrap(),
        vec![Some(Bytes::from_static(b"new"))]
    );
    s.cleanup(store).await;
}

/// `batch_get_with_ttl` returns each key's remaining TTL (within the
/// time the case takes), `None` for a key without one (also after an
/// overwrite without TTL cleared it), and leaves expired keys out.
pub async fn batch_get_with_ttl_reports_remaining_ttl(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-bgt");
    let started = std::time::Instant::now();
    store
        .set(&s.key("long"), b("L"), SetOptions::ttl(LONG_TTL))
        .await
        .unwrap();
    store
        .set(&s.key("cleared"), b("C"), SetOptions::ttl(LONG_TTL))
        .await
        .unwrap();
    put(store, &s.key("cleared"), "C2").await;
    put(store, &s.key("plain"), "P").await;
    store.set(&s.key("dead"), b("D"), short()).await.unwrap();
    wait_past_short_ttl().await;
    let got = store
        .batch_get_with_ttl(&s.keys(&["long", "cleared", "plain", "dead"]))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let ttls: Vec<Option<Option<Duration>>> =
        got.iter().map(|e| e.as_ref().map(|e| e.ttl)).collect();
    assert_eq!(ttls[1..], [Some(None), Some(None), None]);
    let left = ttls[0].flatten().expect("the long key has a TTL");
    // A TTL is stored in whole milliseconds and read back rounded up.
    let slack = Duration::from_millis(2);
    assert!(
        left <= LONG_TTL + slack && left + elapsed + slack >= LONG_TTL,
        "{left:?} left of {LONG_TTL:?} after {elapsed:?}"
    );
    assert_eq!(got[0].as_ref().map(|e| e.value.clone()), Some(b("L")));
    assert_eq!(got[1].as_ref().map(|e| e.value.clone()), Some(b("C2")));
    s.cleanup(store).await;
}

/// Each entry of a batch reads back with its own TTL; writing what
/// `batch_get_with_ttl` returned keeps the expiry the keys had.
pub async fn batch_get_with_ttl_round_trips_through_batch_set(store: &dyn KvStore) {
    if !store.capabilities().ttl {
        return;
    }
    let s = Space::new("ttl-bgt-rt");
    let ttls = [
        Duration::from_secs(30),
        Duration::from_secs(600),
        Duration::from_millis(86_400_123),
    ];
    let mut entries: Vec<Entry> = ttls
        .iter()
        .enumerate()
        .map(|(i, &ttl)| Entry::new(s.key(&format!("k{i}")), b(&i.to_string())).with_ttl(ttl))
        .collect();
    entries.push(Entry::new(s.key("none"), b("n")));
    set_all(store, entries.clone()).await;
    let keys: Vec<Key> = entries.iter().map(|e| e.key.clone()).collect();
    let read = store.batch_get_with_ttl(&keys).await.unwrap();
    let read: Vec<Entry> = read.into_iter().map(|e| e.expect("live")).collect();
    let copies = Space::new("ttl-bgt-rt-copy");
    let copied: Vec<Entry> = s
        .names(&keys)
        .iter()
        .zip(&read)
        .map(|(name, e)| Entry {
            key: copies.key(name),
            ..e.clone()
        })
        .collect();
    store.batch_set(copied.clone()).await.unwrap();
    let keys: Vec<Key> = copied.iter().map(|e| e.key.clone()).collect();
    let again = store.batch_get_with_ttl(&keys).await.unwrap();
    for ((original, first), second) in entries.iter().zip(&read).zip(again) {
        let second = second.expect("the copy is live");
        assert_eq!(second.value, original.value);
        match (original.ttl, first.ttl, second.ttl) {
            (None, None, None) => {}
            (Some(set), Some(left), Some(left_again)) => {
                // Counting down, never up, and not by more than the case took.
                assert!(
                    left <= set + Duration::from_millis(2),
                    "{left:?} of {set:?}"
                );
                assert!(left_again <= left + Duration::from_millis(2));
                assert!(
                    left_again + Duration::from_secs(60) >= set,
                    "{left_again:?} left of {set:?}"
                );
            }
            other => panic!("TTL presence changed: {other:?}"),
        }
    }
    copies.cleanup(store).await;
    s.cleanup(store).await;
}

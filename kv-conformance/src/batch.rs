//! Batches: alignment, empty input, duplicates, validation first, limits.

use std::time::Duration;

use bytes::Bytes;
use kv_core::{Entry, ErrorKind, KvStore, WriteOp};

use crate::support::{Space, assert_kind, b, get, live_keys, put};

fn entries(s: &Space, pairs: &[(&str, &str)]) -> Vec<Entry> {
    pairs
        .iter()
        .map(|(k, v)| Entry::new(s.key(k), b(v)))
        .collect()
}

/// Empty batches succeed with empty results.
pub async fn empty_batches_are_valid(store: &dyn KvStore) {
    assert_eq!(
        store.batch_get(&[]).await.unwrap(),
        Vec::<Option<Bytes>>::new()
    );
    store.batch_set(Vec::new()).await.unwrap();
    assert_eq!(store.batch_delete(&[]).await.unwrap(), 0);
    store.write_batch(Vec::new()).await.unwrap();
    assert!(store.batch_get_with_ttl(&[]).await.unwrap().is_empty());
}

/// `batch_get` answers in input order with `None` for missing keys.
pub async fn batch_get_is_aligned_with_missing_keys(store: &dyn KvStore) {
    let s = Space::new("bg-align");
    put(store, &s.key("b"), "B").await;
    put(store, &s.key("d"), "D").await;
    let got = store
        .batch_get(&s.keys(&["d", "a", "b", "c"]))
        .await
        .unwrap();
    assert_eq!(got, vec![Some(b("D")), None, Some(b("B")), None]);
    s.cleanup(store).await;
}

/// A duplicated key is answered at each of its positions.
pub async fn batch_get_answers_duplicates_at_each_position(store: &dyn KvStore) {
    let s = Space::new("bg-dup");
    put(store, &s.key("a"), "A").await;
    let got = store
        .batch_get(&s.keys(&["a", "x", "a", "a", "x"]))
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![Some(b("A")), None, Some(b("A")), Some(b("A")), None]
    );
    s.cleanup(store).await;
}

/// `batch_get` of only missing keys is all `None`.
pub async fn batch_get_of_missing_keys_is_all_none(store: &dyn KvStore) {
    let s = Space::new("bg-none");
    let got = store.batch_get(&s.keys(&["a", "b", "c"])).await.unwrap();
    assert_eq!(got, vec![None, None, None]);
}

/// `batch_set` writes every entry; `batch_get` reads them back.
pub async fn batch_set_then_batch_get(store: &dyn KvStore) {
    let s = Space::new("bs");
    store
        .batch_set(entries(&s, &[("a", "1"), ("b", "2"), ("c", "3")]))
        .await
        .unwrap();
    let got = store.batch_get(&s.keys(&["c", "b", "a"])).await.unwrap();
    assert_eq!(got, vec![Some(b("3")), Some(b("2")), Some(b("1"))]);
    s.cleanup(store).await;
}

/// `batch_set` overwrites existing keys and creates new ones together.
pub async fn batch_set_overwrites_and_creates(store: &dyn KvStore) {
    let s = Space::new("bs-mixed");
    put(store, &s.key("old"), "before").await;
    store
        .batch_set(entries(&s, &[("old", "after"), ("new", "fresh")]))
        .await
        .unwrap();
    assert_eq!(get(store, &s.key("old")).await, Some(b("after")));
    assert_eq!(get(store, &s.key("new")).await, Some(b("fresh")));
    s.cleanup(store).await;
}

/// Duplicate keys in one `batch_set`: the last entry wins.
pub async fn batch_set_duplicate_keys_last_wins(store: &dyn KvStore) {
    let s = Space::new("bs-dup");
    store
        .batch_set(entries(
            &s,
            &[("a", "1"), ("b", "x"), ("a", "2"), ("a", "3")],
        ))
        .await
        .unwrap();
    assert_eq!(get(store, &s.key("a")).await, Some(b("3")));
    assert_eq!(get(store, &s.key("b")).await, Some(b("x")));
    s.cleanup(store).await;
}

/// One oversize value fails the whole `batch_set` and nothing is written.
pub async fn batch_set_with_one_oversize_value_writes_nothing(store: &dyn KvStore) {
    let max = store.capabilities().max_value_bytes;
    if max > 1 << 30 {
        return;
    }
    let s = Space::new("bs-big");
    put(store, &s.key("keep"), "old").await;
    let mut batch = entries(&s, &[("a", "1"), ("keep", "new")]);
    batch.push(Entry::new(s.key("big"), vec![0u8; max + 1]));
    batch.push(Entry::new(s.key("z"), b("26")));
    assert_kind(store.batch_set(batch).await, ErrorKind::ValueTooLarge);
    assert_eq!(s.names(&live_keys(store, s.prefix(), 10).await), ["keep"]);
    assert_eq!(get(store, &s.key("keep")).await, Some(b("old")));
    s.cleanup(store).await;
}

/// `batch_set_borrowed` keeps `batch_set`'s contract (the last entry for a
/// key wins, each entry its own TTL) and leaves the caller's entries as
/// they were, so the same batch can be sent again.
pub async fn batch_set_borrowed_writes_like_batch_set(store: &dyn KvStore) {
    let s = Space::new("bs-lent");
    put(store, &s.key("old"), "before").await;
    let mut batch = entries(&s, &[("a", "1"), ("old", "after"), ("a", "2")]);
    let ttl = store.capabilities().ttl;
    if ttl {
        batch.push(Entry::new(s.key("t"), b("short-lived")).with_ttl(Duration::from_secs(60)));
    }
    let sent = batch.clone();
    store.batch_set_borrowed(&batch).await.unwrap();
    assert_eq!(batch, sent, "the caller's entries are untouched");
    assert_eq!(get(store, &s.key("a")).await, Some(b("2")));
    assert_eq!(get(store, &s.key("old")).await, Some(b("after")));
    if ttl {
        let got = store.batch_get_with_ttl(&[s.key("t")]).await.unwrap();
        let left = got[0].as_ref().and_then(|e| e.ttl).expect("a TTL");
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
    }
    // Sent again (what a retry does): the same state.
    store.batch_set_borrowed(&batch).await.unwrap();
    assert_eq!(get(store, &s.key("a")).await, Some(b("2")));
    s.cleanup(store).await;
}

/// One invalid entry fails a whole `batch_set_borrowed` before any write.
pub async fn batch_set_borrowed_with_one_invalid_entry_writes_nothing(store: &dyn KvStore) {
    let s = Space::new("bs-lent-bad");
    put(store, &s.key("keep"), "old").await;
    let mut batch = entries(&s, &[("a", "1"), ("keep", "new")]);
    let (bad, kind) = invalid_entry(store, &s);
    batch.push(bad);
    assert_kind(store.batch_set_borrowed(&batch).await, kind);
    assert_eq!(s.names(&live_keys(store, s.prefix(), 10).await), ["keep"]);
    assert_eq!(get(store, &s.key("keep")).await, Some(b("old")));
    s.cleanup(store).await;
}

/// `write_batch_borrowed` applies its operations as if in order (the last
/// one on a key wins) and leaves the caller's operations as they were.
pub async fn write_batch_borrowed_applies_in_order(store: &dyn KvStore) {
    let s = Space::new("wb-lent");
    put(store, &s.key("gone"), "1").await;
    put(store, &s.key("back"), "1").await;
    let ops = vec![
        WriteOp::Put(Entry::new(s.key("a"), b("1"))),
        WriteOp::Delete(s.key("gone")),
        WriteOp::Delete(s.key("back")),
        WriteOp::Put(Entry::new(s.key("back"), b("2"))),
        WriteOp::Put(Entry::new(s.key("tmp"), b("x"))),
        WriteOp::Delete(s.key("tmp")),
        WriteOp::Put(Entry::new(s.key("a"), b("3"))),
    ];
    let sent = ops.clone();
    store.write_batch_borrowed(&ops).await.unwrap();
    assert_eq!(ops, sent, "the caller's operations are untouched");
    assert_eq!(
        s.names(&live_keys(store, s.prefix(), 10).await),
        ["a", "back"]
    );
    assert_eq!(get(store, &s.key("a")).await, Some(b("3")));
    assert_eq!(get(store, &s.key("back")).await, Some(b("2")));
    s.cleanup(store).await;
}

/// One invalid put fails a whole `write_batch_borrowed`: nothing written,
/// nothing deleted.
pub async fn write_batch_borrowed_with_one_invalid_op_changes_nothing(store: &dyn KvStore) {
    let s = Space::new("wb-lent-bad");
    put(store, &s.key("keep"), "old").await;
    let (bad, kind) = invalid_entry(store, &s);
    let ops = vec![
        WriteOp::Delete(s.key("keep")),
        WriteOp::Put(Entry::new(s.key("a"), b("1"))),
        WriteOp::Put(bad),
    ];
    assert_kind(store.write_batch_borrowed(&ops).await, kind);
    assert_eq!(s.names(&live_keys(store, s.prefix(), 10).await), ["keep"]);
    assert_eq!(get(store, &s.key("keep")).await, Some(b("old")));
    s.cleanup(store).await;
}

/// An entry every backend refuses before any I/O, and the error kind it
/// gets: a zero TTL where TTLs exist (`InvalidArgument`), else any TTL
/// (`Unsupported`).
fn invalid_entry(store: &dyn KvStore, s: &Space) -> (Entry, ErrorKind) {
    let entry = Entry::new(s.key("bad"), b("v"));
    if store.capabilities().ttl {
        (entry.with_ttl(Duration::ZERO), ErrorKind::InvalidArgument)
    } else {
        (
            entry.with_ttl(Duration::from_secs(1)),
            ErrorKind::Unsupported,
        )
    }
}

/// `batch_delete` counts only keys that were live, each once.
pub async fn batch_delete_counts_only_live_keys(store: &dyn KvStore) {
    let s = Space::new("bd");
    store
        .batch_set(entries(&s, &[("a", "1"), ("b", "2"), ("c", "3")]))
        .await
        .unwrap();
    let removed = store
        .batch_delete(&s.keys(&["a", "missing", "c", "a", "c"]))
        .await
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(s.names(&live_keys(store, s.prefix(), 10).await), ["b"]);
    assert_eq!(store.batch_delete(&s.keys(&["a", "c"])).await.unwrap(), 0);
    s.cleanup(store).await;
}

/// `write_batch` applies puts and deletes of different keys together.
pub async fn write_batch_mixes_puts_and_deletes(store: &dyn KvStore) {
    let s = Space::new("wb");
    store
        .batch_set(entries(&s, &[("gone", "1"), ("kept", "2")]))
        .await
        .unwrap();
    let ops = vec![
        WriteOp::Put(Entry::new(s.key("new"), b("n"))),
        WriteOp::Delete(s.key("gone")),
        WriteOp::Delete(s.key("never-existed")),
        WriteOp::Put(Entry::new(s.key("kept"), b("updated"))),
    ];
    store.write_batch(ops).await.unwrap();
    assert_eq!(
        s.names(&live_keys(store, s.prefix(), 10).await),
        ["kept", "new"]
    );
    assert_eq!(get(store, &s.key("kept")).await, Some(b("updated")));
    s.cleanup(store).await;
}

/// In `write_batch`, a put then a delete of the same key deletes it.
pub async fn write_batch_put_then_delete_same_key_deletes(store: &dyn KvStore) {
    let s = Space::new("wb-pd");
    put(store, &s.key("a"), "old").await;
    let ops = vec![
        WriteOp::Put(Entry::new(s.key("a"), b("new"))),
        WriteOp::Delete(s.key("a")),
    ];
    store.write_batch(ops).await.unwrap();
    assert_eq!(get(store, &s.key("a")).await, None);
    s.cleanup(store).await;
}

/// In `write_batch`, a delete then a put of the same key leaves the put.
pub async fn write_batch_delete_then_put_same_key_puts(store: &dyn KvStore) {
    let s = Space::new("wb-dp");
    put(store, &s.key("a"), "old").await;
    let ops = vec![
        WriteOp::Delete(s.key("a")),
        WriteOp::Put(Entry::new(s.key("a"), b("v1"))),
        WriteOp::Delete(s.key("a")),
        WriteOp::Put(Entry::new(s.key("a"), b("v2"))),
    ];
    store.write_batch(ops).await.unwrap();
    assert_eq!(get(store, &s.key("a")).await, Some(b("v2")));
    s.cleanup(store).await;
}

/// One oversize value fails the whole `write_batch`: its deletes are not
/// applied either.
pub async fn write_batch_with_one_oversize_value_writes_nothing(store: &dyn KvStore) {
    let max = store.capabilities().max_value_bytes;
    if max > 1 << 30 {
        return;
    }
    let s = Space::new("wb-big");
    put(store, &s.key("victim"), "still here").await;
    let ops = vec![
        WriteOp::Delete(s.key("victim")),
        WriteOp::Put(Entry::new(s.key("a"), b("1"))),
        WriteOp::Put(Entry::new(s.key("big"), vec![1u8; max + 1])),
    ];
    assert_kind(store.write_batch(ops).await, ErrorKind::ValueTooLarge);
    assert_eq!(s.names(&live_keys(store, s.prefix(), 10).await), ["victim"]);
    s.cleanup(store).await;
}

/// 10,000 entries in one `batch_set`: written whole when the backend's
/// `max_batch_ops` allows it, else `BatchTooLarge` with nothing written.
pub async fn batch_of_10000_keys_is_whole_or_too_large(store: &dyn KvStore) {
    let s = Space::new("bs-10k");
    let batch: Vec<Entry> = (0..10_000)
        .map(|i| Entry::new(s.key(&format!("{i:05}")), b(&i.to_string())))
        .collect();
    let fits = store
        .capabilities()
        .max_batch_ops
        .is_none_or(|max| max >= 10_000);
    let result = store.batch_set(batch).await;
    if fits {
        result.unwrap();
        let listed = live_keys(store, s.prefix(), 1000).await;
        assert_eq!(listed.len(), 10_000);
        let probe = s.keys(&["00000", "04999", "09999"]);
        let got = store.batch_get(&probe).await.unwrap();
        assert_eq!(got, vec![Some(b("0")), Some(b("4999")), Some(b("9999"))]);
        assert_eq!(store.batch_delete(&listed).await.unwrap(), 10_000);
    } else {
        assert_kind(result, ErrorKind::BatchTooLarge);
        assert!(live_keys(store, s.prefix(), 100).await.is_empty());
    }
    s.cleanup(store).await;
}

/// A batch one over `max_batch_ops` is `BatchTooLarge` for every batch
/// operation and writes or deletes nothing; a batch at the limit works, and
/// duplicates count once.
pub async fn batches_over_max_ops_fail_whole(store: &dyn KvStore) {
    let Some(max) = store.capabilities().max_batch_ops else {
        return;
    };
    if max > 20_000 {
        return;
    }
    let s = Space::new("maxops");
    let names: Vec<String> = (0..=max).map(|i| format!("{i:06}")).collect();
    let keys: Vec<_> = names.iter().map(|n| s.key(n)).collect();
    let over: Vec<Entry> = keys.iter().map(|k| Entry::new(k.clone(), b("v"))).collect();
    assert_kind(
        store.batch_set(over.clone()).await,
        ErrorKind::BatchTooLarge,
    );
    assert_kind(
        store.batch_set_borrowed(&over).await,
        ErrorKind::BatchTooLarge,
    );
    let ops: Vec<WriteOp> = over.iter().cloned().map(WriteOp::Put).collect();
    assert_kind(
        store.write_batch_borrowed(&ops).await,
        ErrorKind::BatchTooLarge,
    );
    assert_kind(store.write_batch(ops).await, ErrorKind::BatchTooLarge);
    assert!(live_keys(store, s.prefix(), 100).await.is_empty());

    // At the limit, with a duplicate on top: fine.
    let mut at_limit = over[..max].to_vec();
    at_limit.push(over[0].clone());
    store.batch_set(at_limit).await.unwrap();
    assert_kind(store.batch_delete(&keys).await, ErrorKind::BatchTooLarge);
    assert_kind(store.batch_get(&keys).await, ErrorKind::BatchTooLarge);
    assert_kind(
        store.batch_get_with_ttl(&keys).await,
        ErrorKind::BatchTooLarge,
    );
    assert_eq!(live_keys(store, s.prefix(), 1000).await.len(), max);
    assert_eq!(store.batch_delete(&keys[..max]).await.unwrap(), max as u64);
    s.cleanup(store).await;
}

/// `batch_get` of 1,000 keys (within the limit) stays aligned.
pub async fn large_batch_get_stays_aligned(store: &dyn KvStore) {
    let s = Space::new("bg-1000");
    let n = store
        .capabilities()
        .max_batch_ops
        .map_or(1000, |m| m.min(1000));
    let batch: Vec<Entry> = (0..n)
        .filter(|i| i % 3 != 0)
        .map(|i| Entry::new(s.key(&format!("{i:04}")), b(&i.to_string())))
        .collect();
    store.batch_set(batch).await.unwrap();
    let keys: Vec<_> = (0..n).rev().map(|i| s.key(&format!("{i:04}"))).collect();
    let got = store.batch_get(&keys).await.unwrap();
    assert_eq!(got.len(), n);
    for (pos, i) in (0..n).rev().enumerate() {
        let expected = (i % 3 != 0).then(|| b(&i.to_string()));
        assert_eq!(got[pos], expected, "position {pos} (key {i})");
    }
    s.cleanup(store).await;
}

/// `batch_get_with_ttl` answers like `batch_get`: aligned, `None` for a
/// missing key, a duplicate at each position, each entry named by its key.
pub async fn batch_get_with_ttl_is_aligned_like_batch_get(store: &dyn KvStore) {
    let s = Space::new("bgt-align");
    put(store, &s.key("a"), "A").await;
    put(store, &s.key("b"), "").await;
    let keys = s.keys(&["b", "x", "a", "b", "a"]);
    let got = store.batch_get_with_ttl(&keys).await.unwrap();
    let plain = |name: &str, value: &str| Some(Entry::new(s.key(name), b(value)));
    assert_eq!(
        got,
        vec![
            plain("b", ""),
            None,
            plain("a", "A"),
            plain("b", ""),
            plain("a", "A")
        ]
    );
    let values: Vec<Option<Bytes>> = got.into_iter().map(|e| e.map(|e| e.value)).collect();
    assert_eq!(values, store.batch_get(&keys).await.unwrap());
    s.cleanup(store).await;
}

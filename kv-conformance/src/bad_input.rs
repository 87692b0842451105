//! Bad input, as one table: each class with its typed error (or its
//! correct literal behaviour), and afterwards exactly the expected keys in
//! the store, nothing else.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kv_core::{Entry, ErrorKind, Key, KvStore, ListOptions, SetOptions, WriteOp};

use crate::support::{Space, b, list_all, live_keys};

/// What a row expects.
enum Expect {
    /// This typed error.
    Error(ErrorKind),
    /// Success (the table then checks the keys it left).
    Ok,
}

/// Every class of bad input against the store: empty, NUL and over-long
/// keys and prefixes; an oversize value alone, in a batch and in a CAS; a
/// batch over `max_batch_ops`; duplicate keys in `batch_set` and
/// `write_batch`; a zero TTL alone and in a batch; a zero list limit; and
/// wildcard- and SQL-looking keys and prefixes, which are plain text. Each
/// error row is its typed error and writes nothing; after the table the
/// space holds exactly the keys the literal rows wrote, with their values.
pub async fn every_class_of_bad_input_is_typed_and_writes_nothing(store: &dyn KvStore) {
    let caps = store.capabilities();
    let chunk = caps.max_batch_ops.unwrap_or(usize::MAX).max(1);
    let s = Space::new("bad-input");
    let mut want: BTreeMap<String, Bytes> = BTreeMap::new();
    store
        .set(&s.key("keep"), b("keep"), SetOptions::default())
        .await
        .unwrap();
    want.insert("keep".into(), b("keep"));
    let mut rows: Vec<(&str, kv_core::Result<()>, Expect)> = Vec::new();
    let invalid = || Expect::Error(ErrorKind::InvalidKey);

    // Keys that cannot be built: the type refuses them before any store.
    rows.push(("empty key", Key::new("").map(drop), invalid()));
    rows.push(("key with NUL", Key::new(s.raw("a\0b")).map(drop), invalid()));
    rows.push((
        "key of 1025 bytes",
        Key::new("k".repeat(1025)).map(drop),
        invalid(),
    ));
    // One byte over the store's limit (less than 1024 under a namespace):
    // a valid `Key` that this store must refuse.
    let long = s.raw(&"k".repeat((caps.max_key_bytes + 1).saturating_sub(s.prefix().len())));
    let over_the_limit = match Key::new(long) {
        Ok(key) => store.set(&key, b("v"), SetOptions::default()).await,
        Err(e) => Err(e),
    };
    rows.push((
        "key over the store's max_key_bytes",
        over_the_limit,
        invalid(),
    ));
    // Prefixes, checked by list (where the store lists at all).
    let list_error = |kind| {
        if caps.listing {
            Expect::Error(kind)
        } else {
            Expect::Error(ErrorKind::Unsupported)
        }
    };
    rows.push((
        "list prefix with NUL",
        store
            .list(&s.raw("a\0"), ListOptions::default())
            .await
            .map(drop),
        list_error(ErrorKind::InvalidKey),
    ));
    rows.push((
        "list prefix of 1025 bytes",
        store
            .list(&"p".repeat(1025), ListOptions::default())
            .await
            .map(drop),
        list_error(ErrorKind::InvalidKey),
    ));
    rows.push((
        "zero list limit",
        store
            .list(s.prefix(), ListOptions::default().limit(0))
            .await
            .map(drop),
        list_error(ErrorKind::InvalidArgument),
    ));

    // Oversize values (skipped above 1 GiB: no test allocates that much).
    let max = caps.max_value_bytes;
    if max <= 1 << 30 {
        let big = Bytes::from(vec![0u8; max + 1]);
        let too_large = || Expect::Error(ErrorKind::ValueTooLarge);
        rows.push((
            "oversize value",
            store
                .set(&s.key("big"), big.clone(), SetOptions::default())
                .await,
            too_large(),
        ));
        rows.push((
            "oversize value in a batch",
            store
                .batch_set(vec![
                    Entry::new(s.key("small"), "1"),
                    Entry::new(s.key("big"), big.clone()),
                ])
                .await,
            too_large(),
        ));
        rows.push((
            "oversize value in a write_batch",
            store
                .write_batch(vec![
                    WriteOp::Delete(s.key("keep")),
                    WriteOp::Put(Entry::new(s.key("big"), big.clone())),
                ])
                .await,
            too_large(),
        ));
        if caps.cas {
            rows.push((
                "oversize value in a CAS",
                store
                    .compare_and_swap(
                        &s.key("keep"),
                        Some(b("keep")),
                        Some(big),
                        SetOptions::default(),
                    )
                    .await
                    .map(drop),
                too_large(),
            ));
        }
    }

    // A batch over the limit.
    if let Some(limit) = caps.max_batch_ops {
        let entries: Vec<Entry> = (0..=limit)
            .map(|i| Entry::new(s.key(&format!("many/{i}")), "1"))
            .collect();
        let keys: Vec<Key> = entries.iter().map(|e| e.key.clone()).collect();
        let too_many = || Expect::Error(ErrorKind::BatchTooLarge);
        rows.push((
            "batch_set over max_batch_ops",
            store.batch_set(entries).await,
            too_many(),
        ));
        rows.push((
            "batch_get over max_batch_ops",
            store.batch_get(&keys).await.map(drop),
            too_many(),
        ));
        rows.push((
            "batch_delete over max_batch_ops",
            store.batch_delete(&keys).await.map(drop),
            too_many(),
        ));
    }

    // Zero TTL.
    let zero = if caps.ttl {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Unsupported
    };
    rows.push((
        "zero TTL",
        store
            .set(&s.key("zero"), b("v"), SetOptions::ttl(Duration::ZERO))
            .await,
        Expect::Error(zero),
    ));
    rows.push((
        "zero TTL in a batch",
        store
            .batch_set(vec![
                Entry::new(s.key("b"), "v"),
                Entry::new(s.key("zero"), "v").with_ttl(Duration::ZERO),
            ])
            .await,
        Expect::Error(zero),
    ));

    // Duplicates: literal behaviour, the last operation on a key wins.
    rows.push((
        "duplicate keys in batch_set",
        store
            .batch_set(vec![
                Entry::new(s.key("dup"), "1"),
                Entry::new(s.key("dup"), "2"),
            ])
            .await,
        Expect::Ok,
    ));
    want.insert("dup".into(), b("2"));
    rows.push((
        "put then delete of one key in write_batch",
        store
            .write_batch(vec![
                WriteOp::Put(Entry::new(s.key("dup-gone"), "1")),
                WriteOp::Delete(s.key("dup-gone")),
            ])
            .await,
        Expect::Ok,
    ));

    // Wildcard- and SQL-looking keys are plain text.
    let literal = [
        "w/%",
        "w/%a",
        "w/_",
        "w/_a",
        "w/*",
        "w/*a",
        "w/?",
        "w/[ab]",
        "w/.*",
        "w/\\",
        "w/a",
        "w/b",
        "sql/'; DROP TABLE kv_store; --",
        "sql/\" OR 1=1 --",
        "sql/$where",
        "sql/{\"$gt\": \"\"}",
        "sql/a' OR 'a'='a",
    ];
    let entries: Vec<Entry> = literal
        .iter()
        .map(|n| Entry::new(s.key(n), n.to_string()))
        .collect();
    // In batches the store allows (some take fewer than these 17 keys).
    let mut written = Ok(());
    for part in entries.chunks(chunk) {
        written = store.batch_set(part.to_vec()).await;
        if written.is_err() {
            break;
        }
    }
    rows.push(("wildcard- and SQL-looking keys", written, Expect::Ok));
    for n in literal {
        want.insert(n.to_owned(), Bytes::from(n.to_owned()));
    }

    for (what, result, expect) in rows {
        match (expect, result) {
            (Expect::Error(kind), Err(e)) => assert_eq!(e.kind(), kind, "{what}: {e}"),
            (Expect::Error(kind), Ok(())) => panic!("{what}: succeeded, expected {kind:?}"),
            (Expect::Ok, Err(e)) => panic!("{what}: {e}"),
            (Expect::Ok, Ok(())) => {}
        }
    }

    // Wildcard prefixes select only the keys that literally start with them.
    let wildcards = [
        ("w/%", &["w/%", "w/%a"][..]),
        ("w/_", &["w/_", "w/_a"]),
        ("w/*", &["w/*", "w/*a"]),
        ("w/?", &["w/?"]),
        ("w/[", &["w/[ab]"]),
        ("w/.", &["w/.*"]),
        ("w/\\", &["w/\\"]),
        ("sql/'", &["sql/'; DROP TABLE kv_store; --"]),
        ("sql/$", &["sql/$where"]),
    ];
    for (prefix, expected) in wildcards.into_iter().filter(|_| caps.listing) {
        let mut listed = s.names(&list_all(store, &s.raw(prefix), 100).await);
        listed.sort();
        assert_eq!(listed, expected, "listing the prefix {prefix:?}");
    }

    // Nothing but the expected keys, with their values.
    let keys = live_keys(store, s.prefix(), 1000).await;
    let mut values = Vec::with_capacity(keys.len());
    for part in keys.chunks(chunk) {
        values.extend(store.batch_get(part).await.unwrap());
    }
    let found: BTreeMap<String, Bytes> = s
        .names(&keys)
        .into_iter()
        .zip(values)
        .map(|(name, value)| (name, value.expect("a listed key has a value")))
        .collect();
    assert_eq!(found, want, "the keys left after the table");
    s.cleanup(store).await;
}

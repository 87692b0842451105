//! Transactions: checks and writes over several keys, all or nothing.

use std::time::Instant;

use kv_core::{Entry, ErrorKind, KvStore, SetOptions, Transaction, TxnOutcome};

use crate::support::{
    LONG_TTL, SHORT_TTL, Space, assert_kind, b, get, put, wait_past_short_ttl, within_short_ttl,
};
use crate::versions::version_of;

/// Without transactions, `transact` is `Unsupported` and writes nothing.
pub async fn transactions_without_support_are_unsupported(store: &dyn KvStore) {
    if store.capabilities().transactions {
        return;
    }
    let s = Space::new("txn-unsupported");
    let (a, c) = (s.key("a"), s.key("c"));
    let txn = Transaction::new()
        .check_absent(a.clone())
        .put(Entry::new(a.clone(), "1"))
        .put(Entry::new(c.clone(), "3"));
    assert_kind(store.transact(&txn).await, ErrorKind::Unsupported);
    assert_eq!(get(store, &a).await, None);
    assert_eq!(get(store, &c).await, None);
}

/// When every check holds (a version, absence, presence), every write
/// lands: puts with and without TTL, deletes.
pub async fn transaction_commits_when_every_check_holds(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.transactions {
        return;
    }
    let s = Space::new("txn-commit");
    let [a, b_, c, d] = ["a", "b", "c", "d"].map(|n| s.key(n));
    put(store, &a, "1").await;
    put(store, &c, "3").await;
    let va = version_of(store, &a).await;
    let mut txn = Transaction::new()
        .check_version(a.clone(), va.clone())
        .check_absent(b_.clone())
        .check_present(c.clone())
        .put(Entry::new(a.clone(), "10"))
        .delete(c.clone());
    txn = if caps.ttl {
        txn.put_with_ttl(b_.clone(), "20", LONG_TTL)
    } else {
        txn.put(Entry::new(b_.clone(), "20"))
    };
    txn = txn.put(Entry::new(d.clone(), "40"));
    assert_eq!(store.transact(&txn).await.unwrap(), TxnOutcome::Committed);
    let got = store
        .batch_get(&[a.clone(), b_.clone(), c.clone(), d.clone()])
        .await
        .unwrap();
    assert_eq!(got, [Some(b("10")), Some(b("20")), None, Some(b("40"))]);
    assert_ne!(
        version_of(store, &a).await,
        va,
        "a write gives a new version"
    );
    if caps.ttl {
        let with_ttl = store
            .batch_get_with_ttl(&[b_.clone(), d.clone()])
            .await
            .unwrap();
        let ttl = with_ttl[0].as_ref().and_then(|e| e.ttl);
        assert!(
            ttl.is_some_and(|t| t <= LONG_TTL),
            "the put kept its TTL: {ttl:?}"
        );
        assert_eq!(with_ttl[1].as_ref().map(|e| e.ttl), Some(None));
    }
    s.cleanup(store).await;
}

/// When any check fails, nothing is written and the outcome lists the
/// positions of the failed checks, and only those.
pub async fn rejected_transaction_changes_nothing_and_names_failed_checks(store: &dyn KvStore) {
    if !store.capabilities().transactions {
        return;
    }
    let s = Space::new("txn-reject");
    let [a, b_, c, d] = ["a", "b", "c", "d"].map(|n| s.key(n));
    put(store, &a, "1").await;
    put(store, &b_, "2").await;
    let (va, vb) = (version_of(store, &a).await, version_of(store, &b_).await);
    put(store, &b_, "2").await; // same bytes, new version: b's check is stale
    let txn = Transaction::new()
        .check_version(a.clone(), va.clone())
        .check_version(b_.clone(), vb)
        .check_present(c.clone())
        .check_absent(d.clone())
        .put(Entry::new(a.clone(), "x"))
        .put(Entry::new(c.clone(), "x"))
        .delete(b_.clone());
    assert_eq!(
        store.transact(&txn).await.unwrap(),
        TxnOutcome::Rejected(vec![1, 2])
    );
    let got = store
        .batch_get(&[a.clone(), b_.clone(), c.clone(), d.clone()])
        .await
        .unwrap();
    assert_eq!(got, [Some(b("1")), Some(b("2")), None, None]);
    assert_eq!(
        version_of(store, &a).await,
        va,
        "a rejected write changes no version"
    );
    s.cleanup(store).await;
}

/// Writes apply as if in order: the last write to a key wins; a key may
/// be checked and not written; a transaction without checks writes
/// atomically; an empty one commits.
pub async fn transaction_writes_apply_in_order(store: &dyn KvStore) {
    if !store.capabilities().transactions {
        return;
    }
    let s = Space::new("txn-order");
    let [a, b_, guard] = ["a", "b", "guard"].map(|n| s.key(n));
    put(store, &b_, "old").await;
    let txn = Transaction::new()
        .check_absent(guard.clone())
        .put(Entry::new(a.clone(), "1"))
        .delete(a.clone())
        .delete(b_.clone())
        .put(Entry::new(b_.clone(), "2"));
    assert!(store.transact(&txn).await.unwrap().is_committed());
    assert_eq!(get(store, &a).await, None);
    assert_eq!(get(store, &b_).await, Some(b("2")));
    assert_eq!(get(store, &guard).await, None);
    let unchecked = Transaction::new()
        .put(Entry::new(a.clone(), "3"))
        .put(Entry::new(b_.clone(), "4"));
    assert!(store.transact(&unchecked).await.unwrap().is_committed());
    assert_eq!(
        store.batch_get(&[a.clone(), b_.clone()]).await.unwrap(),
        [Some(b("3")), Some(b("4"))]
    );
    assert!(
        store
            .transact(&Transaction::new())
            .await
            .unwrap()
            .is_committed()
    );
    s.cleanup(store).await;
}

/// An expired key is absent for a transaction's checks.
pub async fn transaction_sees_expired_keys_as_absent(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.transactions || !caps.ttl {
        return;
    }
    let s = Space::new("txn-expired");
    let [a, c] = ["a", "c"].map(|n| s.key(n));
    let started = Instant::now();
    store
        .set(&a, b("short"), SetOptions::ttl(SHORT_TTL))
        .await
        .unwrap();
    let present = Transaction::new().check_present(a.clone());
    let outcome = store.transact(&present).await.unwrap();
    if within_short_ttl(started) {
        assert!(outcome.is_committed());
    }
    wait_past_short_ttl().await;
    let txn = Transaction::new()
        .check_absent(a.clone())
        .put(Entry::new(c.clone(), "1"));
    assert!(store.transact(&txn).await.unwrap().is_committed());
    assert_eq!(
        store.transact(&present).await.unwrap(),
        TxnOutcome::Rejected(vec![0])
    );
    assert_eq!(get(store, &c).await, Some(b("1")));
    s.cleanup(store).await;
}

/// A transaction with one invalid write, or over `max_batch_ops` distinct
/// keys (checked or written), fails before any I/O and writes nothing.
pub async fn transaction_with_bad_input_writes_nothing(store: &dyn KvStore) {
    let caps = store.capabilities();
    if !caps.transactions {
        return;
    }
    let s = Space::new("txn-bad");
    let [a, c] = ["a", "c"].map(|n| s.key(n));
    if caps.max_value_bytes <= 1 << 30 {
        let big = bytes::Bytes::from(vec![b'x'; caps.max_value_bytes + 1]);
        let txn = Transaction::new()
            .put(Entry::new(a.clone(), "1"))
            .put(Entry::new(c.clone(), big));
        assert_kind(store.transact(&txn).await, ErrorKind::ValueTooLarge);
    }
    let zero = Transaction::new()
        .put(Entry::new(a.clone(), "1"))
        .put(Entry::new(c.clone(), "1").with_ttl(std::time::Duration::ZERO));
    let kind = if caps.ttl {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Unsupported
    };
    assert_kind(store.transact(&zero).await, kind);
    if let Some(max) = caps.max_batch_ops {
        // Checks count: max written keys plus one checked key is too many.
        let mut txn = Transaction::new().check_absent(s.key("checked"));
        for i in 0..max {
            txn = txn.put(Entry::new(s.key(&format!("k{i:05}")), "v"));
        }
        assert_kind(store.transact(&txn).await, ErrorKind::BatchTooLarge);
        assert_eq!(get(store, &s.key("k00000")).await, None);
    }
    assert_eq!(get(store, &a).await, None);
    assert_eq!(get(store, &c).await, None);
    s.cleanup(store).await;
}

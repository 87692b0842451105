//! Concurrency: no lost writes, atomic CAS under contention, whole batches.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use kv_core::{Entry, KvStore, SetOptions};

use crate::support::{Space, b, live_keys};

/// 500 concurrent tasks writing disjoint keys lose no write.
pub async fn concurrent_disjoint_writes_lose_nothing(store: Arc<dyn KvStore>) {
    let s = Space::new("conc-disjoint");
    let tasks = (0..500).map(|i| {
        let (store, key) = (store.clone(), s.key(&format!("{i:03}")));
        tokio::spawn(async move {
            store
                .set(&key, b(&i.to_string()), SetOptions::default())
                .await
        })
    });
    for result in join_all(tasks).await {
        result.expect("task panicked").expect("set failed");
    }
    let keys: Vec<_> = (0..500).map(|i| s.key(&format!("{i:03}"))).collect();
    let size = store.capabilities().max_batch_ops.unwrap_or(500);
    for (chunk_no, chunk) in keys.chunks(size).enumerate() {
        let got = store.batch_get(chunk).await.unwrap();
        for (j, value) in got.into_iter().enumerate() {
            let i = chunk_no * size + j;
            assert_eq!(value, Some(b(&i.to_string())), "key {i}");
        }
    }
    s.cleanup(&*store).await;
}

/// 50 concurrent tasks incrementing one counter with CAS retries end at
/// exactly 50.
pub async fn cas_counter_with_50_concurrent_tasks_ends_at_50(store: Arc<dyn KvStore>) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("conc-cas");
    let key = s.key("counter");
    store
        .set(&key, b("0"), SetOptions::default())
        .await
        .unwrap();
    let tasks = (0..50).map(|_| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            for _ in 0..10_000 {
                let current = store.get(&key).await?.expect("counter exists");
                let n: u64 = std::str::from_utf8(&current)
                    .expect("utf8")
                    .parse()
                    .expect("number");
                let next = Bytes::from((n + 1).to_string());
                if store
                    .compare_and_swap(&key, Some(current), Some(next), SetOptions::default())
                    .await?
                {
                    return Ok::<_, kv_core::Error>(());
                }
            }
            panic!("CAS never succeeded in 10,000 tries");
        })
    });
    for result in join_all(tasks).await {
        result.expect("task panicked").expect("CAS failed");
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(b("50")));
    s.cleanup(&*store).await;
}

/// Of 20 concurrent create-if-absent CAS calls on one key, exactly one wins.
pub async fn concurrent_create_if_absent_has_one_winner(store: Arc<dyn KvStore>) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("conc-create");
    let key = s.key("lock");
    let tasks = (0..20).map(|i| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            store
                .compare_and_swap(&key, None, Some(b(&i.to_string())), SetOptions::default())
                .await
        })
    });
    let mut winners = Vec::new();
    for (i, result) in join_all(tasks).await.into_iter().enumerate() {
        if result.expect("task panicked").expect("CAS failed") {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        store.get(&key).await.unwrap(),
        Some(b(&winners[0].to_string()))
    );
    s.cleanup(&*store).await;
}

/// With atomic batches and snapshot reads, a reader never sees half of a
/// concurrent batch: every `batch_get` sees all keys at the same generation.
pub async fn readers_never_see_half_a_batch(store: Arc<dyn KvStore>) {
    let caps = store.capabilities();
    if !caps.atomic_batch || !caps.snapshot_batch_get {
        return;
    }
    let s = Space::new("conc-atomic");
    let keys = s.keys(&["a", "b", "c", "d", "e", "f", "g", "h"]);
    let write = |generation: u32| {
        keys.iter()
            .map(move |k| Entry::new(k.clone(), b(&generation.to_string())))
            .collect::<Vec<_>>()
    };
    store.batch_set(write(0)).await.unwrap();
    let writer = {
        let (store, batches) = (store.clone(), (1..=60).map(write).collect::<Vec<_>>());
        tokio::spawn(async move {
            for batch in batches {
                store.batch_set(batch).await?;
            }
            Ok::<_, kv_core::Error>(())
        })
    };
    let reader = {
        let (store, keys) = (store.clone(), keys.clone());
        tokio::spawn(async move {
            for _ in 0..60 {
                let got = store.batch_get(&keys).await?;
                let first = &got[0];
                assert!(first.is_some(), "a key vanished mid-batch");
                assert!(
                    got.iter().all(|v| v == first),
                    "saw a half-applied batch: {got:?}"
                );
            }
            Ok::<_, kv_core::Error>(())
        })
    };
    writer
        .await
        .expect("writer panicked")
        .expect("batch_set failed");
    reader
        .await
        .expect("reader panicked")
        .expect("batch_get failed");
    assert_eq!(live_keys(&*store, s.prefix(), 100).await.len(), keys.len());
    s.cleanup(&*store).await;
}

//! A three-member etcd cluster, started by kv-testkit on loopback. The
//! store is given every endpoint; the leader is killed (SIGKILL, then
//! started again) while eight tasks write batches. Calls fail at most
//! temporarily, no acknowledged write is lost, no batch is applied in part,
//! and the same store carries on under the new leader without being
//! rebuilt.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kv_backend_etcd::{EtcdStore, etcd_client};
use kv_core::{Entry, ErrorKind, Key, KvStore};
use kv_testkit::EtcdCluster;

/// The index (in `cluster.members()`) of the leader, its member id and its
/// Raft term.
async fn leader(cluster: &EtcdCluster) -> (usize, u64, u64) {
    for _ in 0..100 {
        for (i, endpoint) in cluster.endpoints().iter().enumerate() {
            let Ok(mut client) = etcd_client::Client::connect([endpoint], None).await else {
                continue;
            };
            if let Ok(status) = client.status().await {
                let me = status.header().map_or(0, |h| h.member_id());
                if status.leader() != 0 && status.leader() == me {
                    return (i, me, status.raft_term());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no member says it leads")
}

/// What one writer did: the generation of its last acknowledged batch and
/// of its last attempted one, and its calls.
#[derive(Debug, Default)]
struct Writer {
    acked: Option<u64>,
    attempted: u64,
    ok_after_kill: u64,
    errors: Vec<ErrorKind>,
}

fn keys(task: usize) -> Vec<Key> {
    (0..4)
        .map(|i| Key::new(format!("cluster/{task}/{i}")).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_writes_loses_no_acknowledged_write() {
    let Some(cluster) = kv_testkit::etcd_cluster(3).await else {
        return;
    };
    let store = Arc::new(
        EtcdStore::builder()
            .endpoints(cluster.endpoints())
            .request_timeout(Duration::from_secs(3))
            .connect()
            .await
            .unwrap(),
    );
    let (killed, old_leader, old_term) = leader(&cluster).await;
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));

    let writers: Vec<_> = (0..8)
        .map(|task| {
            let (store, stop, killed_at) = (store.clone(), stop.clone(), killed_at.clone());
            tokio::spawn(async move {
                let mut me = Writer::default();
                let keys = keys(task);
                while !stop.load(Ordering::SeqCst) {
                    me.attempted += 1;
                    let generation = me.attempted;
                    let batch = keys
                        .iter()
                        .map(|k| Entry::new(k.clone(), generation.to_string()))
                        .collect();
                    match store.batch_set(batch).await {
                        Ok(()) => {
                            me.acked = Some(generation);
                            if killed_at.lock().unwrap().is_some() {
                                me.ok_after_kill += 1;
                            }
                        }
                        Err(e) => {
                            assert!(
                                e.is_temporary()
                                    && matches!(
                                        e.kind(),
                                        ErrorKind::Unavailable | ErrorKind::Timeout
                                    ),
                                "a write during the failover failed for good: {e}"
                            );
                            me.errors.push(e.kind());
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                me
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    *killed_at.lock().unwrap() = Some(Instant::now());
    let member = &cluster.members()[killed];
    tokio::task::block_in_place(|| member.crash()).unwrap();
    let back_after = killed_at.lock().unwrap().unwrap().elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);

    let mut done = Vec::new();
    for writer in writers {
        done.push(writer.await.unwrap());
    }
    // A new election: a later term. Its winner may be the killed member
    // itself, back before the others' election timeout ran out.
    let (_, new_leader, new_term) = leader(&cluster).await;
    assert!(
        new_term > old_term,
        "no new leader was elected: still term {new_term}"
    );

    // Every batch whole; none older than its last acknowledgement.
    for (task, me) in done.iter().enumerate() {
        let values = store.batch_get(&keys(task)).await.unwrap();
        let generations: Vec<u64> = values
            .iter()
            .map(|v| {
                std::str::from_utf8(v.as_ref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(
            generations.iter().all(|g| *g == generations[0]),
            "task {task}: a batch applied in part: {generations:?}"
        );
        let stored = generations[0];
        let acked = me.acked.expect("every writer had a write acknowledged");
        assert!(
            stored >= acked && stored <= me.attempted,
            "task {task}: stored generation {stored}, last acknowledged {acked}, last attempted {}",
            me.attempted
        );
        assert!(
            me.ok_after_kill > 0,
            "task {task}: no write succeeded after the leader was killed"
        );
    }
    let errors: usize = done.iter().map(|w| w.errors.len()).sum();
    let after: u64 = done.iter().map(|w| w.ok_after_kill).sum();
    println!(
        "etcd cluster of 3: leader m{killed} killed, back after {back_after:?}; {} batches attempted, \
         {errors} failed (all temporary: {:?}), {after} acknowledged after the kill, \
         none lost, none partial; leader {new_leader:x} in term {new_term} (was {old_leader:x} in term {old_term})",
        done.iter().map(|w| w.attempted).sum::<u64>(),
        done.iter().flat_map(|w| w.errors.iter()).fold(
            std::collections::BTreeMap::<&str, usize>::new(),
            |mut m, k| {
                *m.entry(k.as_str()).or_default() += 1;
                m
            }
        )
    );
    let all: Vec<Key> = (0..8).flat_map(keys).collect();
    store.batch_delete(&all).await.unwrap();
}

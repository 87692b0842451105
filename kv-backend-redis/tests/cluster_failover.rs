//! Failover on a Redis Cluster of three primaries with a replica each,
//! while eight tasks write: first a manual `CLUSTER FAILOVER` (the replica
//! catches up, then takes over: no acknowledged write may be lost), then a
//! primary frozen as a hung machine is (SIGSTOP: its connections stay open
//! and silent) until the cluster promotes its replica after the 2 s node
//! timeout, then let go (it rejoins as a replica). Every error must be
//! temporary and the same store must carry on. Redis replicates
//! asynchronously, so a primary that fails can take its last acknowledged
//! writes with it; the test counts those and reports them rather than
//! asserting there are none.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kv_backend_redis::{RedisStore, redis};
use kv_core::{ErrorKind, Key, KvStore, SetOptions};
use kv_testkit::RedisCluster;

/// A node's `CLUSTER NODES` view: (address, is a primary, its primary's id, id).
async fn nodes(addr: &str) -> Vec<(String, bool, String, String)> {
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.contains("fail"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let addr = f[1].split('@').next().unwrap().to_owned();
            (
                addr,
                f[2].contains("master"),
                f[3].to_owned(),
                f[0].to_owned(),
            )
        })
        .collect()
}

fn addr(node: &kv_testkit::TestServer) -> String {
    node.url().trim_start_matches("redis://").to_owned()
}

/// Waits until `addr` says it is a primary.
async fn wait_primary(addr: &str) {
    for _ in 0..200 {
        let client = redis::Client::open(format!("redis://{addr}")).unwrap();
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
            let role: Vec<redis::Value> = redis::cmd("ROLE")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if let Some(first) = role.first()
                && redis::from_redis_value::<String>(first.clone()).is_ok_and(|r| r == "master")
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{addr} did not become a primary");
}

#[derive(Default)]
struct Tally {
    /// Last acknowledged and last attempted value per key.
    acked: Mutex<HashMap<String, (u64, u64)>>,
    ok: AtomicU64,
    errors: Mutex<Vec<ErrorKind>>,
}

/// Eight tasks setting their own keys to increasing numbers until `stop`.
fn writers(
    store: &Arc<RedisStore>,
    tally: &Arc<Tally>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|task| {
            let (store, tally, stop) = (store.clone(), tally.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let name = format!("failover/{task}/{}", n % 16);
                    let key = Key::new(name.clone()).unwrap();
                    let attempted = n;
                    let result = store
                        .set(&key, n.to_string().into(), SetOptions::default())
                        .await;
                    {
                        let mut acked = tally.acked.lock().unwrap();
                        let slot = acked.entry(name).or_insert((0, 0));
                        slot.1 = attempted;
                        if result.is_ok() {
                            slot.0 = attempted;
                        }
                    }
                    match result {
                        Ok(()) => {
                            tally.ok.fetch_add(1, Ordering::SeqCst);
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
                            tally.errors.lock().unwrap().push(e.kind());
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Keys whose stored value is older than their last acknowledged write.
async fn lost(store: &RedisStore, tally: &Tally) -> Vec<String> {
    let acked = tally.acked.lock().unwrap().clone();
    let mut lost = Vec::new();
    for (name, (acked, attempted)) in acked {
        let value = store.get(&Key::new(name.clone()).unwrap()).await.unwrap();
        let stored: u64 = value.map_or(0, |v| std::str::from_utf8(&v).unwrap().parse().unwrap());
        assert!(stored <= attempted, "{name}: {stored} was never written");
        if stored < acked {
            lost.push(format!("{name}: acknowledged {acked}, stored {stored}"));
        }
    }
    lost
}

async fn run(cluster: &RedisCluster, freeze: bool) -> (u64, usize, Vec<String>, Duration) {
    let store = Arc::new(
        RedisStore::builder()
            .url(cluster.url())
            .key_prefix(if freeze { "freeze:" } else { "manual:" })
            .response_timeout(Duration::from_secs(2))
            .purge_interval(None)
            .connect()
            .await
            .unwrap(),
    );
    let (tally, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let tasks = writers(&store, &tally, &stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = tally.ok.load(Ordering::SeqCst);
    let started = Instant::now();
    let view = nodes(&addr(&cluster.nodes()[0])).await;
    if freeze {
        // Freeze a primary; its replica is promoted after the node timeout;
        // then the old primary runs again and rejoins as a replica.
        let (victim, _, _, id) = view.iter().find(|n| n.1).unwrap().clone();
        let replica = view.iter().find(|n| !n.1 && n.2 == id).unwrap().0.clone();
        let node = cluster.nodes().iter().find(|n| addr(n) == victim).unwrap();
        node.freeze().unwrap();
        wait_primary(&replica).await;
        node.thaw().unwrap();
    } else {
        // A replica takes over from its primary, in step with it.
        let replica = view.iter().find(|n| !n.1).unwrap().0.clone();
        let client = redis::Client::open(format!("redis://{replica}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query_async(&mut conn)
            .await
            .unwrap();
        wait_primary(&replica).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let after = tally.ok.load(Ordering::SeqCst) - before;
    assert!(after > 0, "no write succeeded after the failover");
    let errors = tally.errors.lock().unwrap().len();
    let lost = lost(&store, &tally).await;
    (after, errors, lost, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failovers_during_writes_end_in_temporary_errors_and_the_store_carries_on() {
    let Some(cluster) = kv_testkit::private_redis_cluster().await else {
        return;
    };
    let (after, errors, lost, took) = run(&cluster, false).await;
    println!(
        "manual CLUSTER FAILOVER ({took:?}): {errors} temporary errors, {after} writes acknowledged \
         afterwards, {} acknowledged writes lost",
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "a manual failover lost acknowledged writes: {lost:?}"
    );

    let (after, errors, lost, took) = run(&cluster, true).await;
    println!(
        "primary frozen (replica promoted after {took:?}): {errors} temporary errors, {after} writes \
         acknowledged afterwards, {} acknowledged writes lost (asynchronous replication): {lost:?}",
        lost.len()
    );
}

//! Redis: Redis Cluster, passwords and TLS.

use std::sync::OnceLock;

use crate::{Kind, TestCerts, TestServer, local, started, unavailable};

/// The variable pointing the tests at a Redis Cluster of your own:
/// `redis+cluster://host:port[,host:port...]`.
pub const REDIS_CLUSTER_ENV: &str = "KV_TEST_REDIS_CLUSTER_URL";

/// A Redis Cluster: three primaries with a replica each, started here on
/// loopback (or one of your own, from [`REDIS_CLUSTER_ENV`]).
#[derive(Debug)]
pub struct RedisCluster {
    url: String,
    nodes: Vec<TestServer>,
}

impl RedisCluster {
    /// `redis+cluster://` naming the nodes, for `kv::connect` and
    /// `RedisStore`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The nodes started here, primaries first (empty for a cluster from
    /// the environment); each can be [crashed](TestServer::crash).
    pub fn nodes(&self) -> &[TestServer] {
        &self.nodes
    }
}

static REDIS_CLUSTER: OnceLock<Result<RedisCluster, String>> = OnceLock::new();

/// The shared Redis Cluster of this test binary: [`REDIS_CLUSTER_ENV`], or
/// three primaries and three replicas started from the local
/// `redis-server` and `redis-cli` (Docker is not used for clusters).
///
/// # Panics
///
/// As [`server`](crate::server).
pub async fn redis_cluster() -> Option<&'static RedisCluster> {
    let found = tokio::task::spawn_blocking(|| {
        REDIS_CLUSTER.get_or_init(|| {
            if let Ok(url) = std::env::var(REDIS_CLUSTER_ENV)
                && !url.trim().is_empty()
            {
                return Ok(RedisCluster {
                    url: url.trim().to_owned(),
                    nodes: Vec::new(),
                });
            }
            start_redis_cluster(false)
        })
    })
    .await;
    match found {
        Ok(Ok(cluster)) => Some(cluster),
        Ok(Err(why)) => unavailable(Kind::Redis, why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// A new Redis Cluster of the caller's own (three primaries, three
/// replicas), for tests that fail nodes over; stopped when dropped.
///
/// # Panics
///
/// As [`server`](crate::server).
pub async fn private_redis_cluster() -> Option<RedisCluster> {
    match tokio::task::spawn_blocking(|| start_redis_cluster(true)).await {
        Ok(Ok(cluster)) => Some(cluster),
        Ok(Err(why)) => unavailable(Kind::Redis, &why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

fn start_redis_cluster(private: bool) -> Result<RedisCluster, String> {
    let nodes = local::redis_cluster(3, 1)?;
    let hosts: Vec<&str> = nodes[..3]
        .iter()
        .map(|n| n.url.trim_start_matches("redis://"))
        .collect();
    let url = format!("redis+cluster://{}", hosts.join(","));
    Ok(RedisCluster {
        url,
        nodes: nodes
            .into_iter()
            .map(|n| TestServer::started_here(Kind::Redis, n, private))
            .collect(),
    })
}

/// A new Redis of the caller's own, with `requirepass` when `password`
/// is given (its [`url`](TestServer::url) carries it) and serving only TLS
/// (`rediss://`) with `tls`'s server certificate when given; started from
/// the local `redis-server`, stopped when dropped. `None` only when it is
/// unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`](crate::server).
pub async fn private_redis_secured(
    password: Option<&str>,
    tls: Option<&TestCerts>,
) -> Option<TestServer> {
    let options = local::RedisOptions {
        password: password.map(str::to_owned),
        tls: tls.map(|t| (t.cert(), t.key())),
    };
    started(Kind::Redis, move || {
        local::retrying(2, || local::redis(&options))
    })
    .await
}

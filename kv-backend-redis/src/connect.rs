//! Building a [`RedisStore`]: the builder, and opening one server's or a
//! cluster's connection.

use std::sync::Arc;
use std::time::Duration;

use kv_core::backend::{Validator, connect_within};
use kv_core::{MAX_KEY_BYTES, Operation, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;

use crate::buckets::Buckets;
use crate::config::RedisConfig;
use crate::conn::RedisConnection;
use crate::error::{BACKEND, config_error, map_redis_error};
use crate::index;
use crate::scripts::Scripts;
use crate::store::{RedisStore, capabilities};
use crate::versions::VersionSource;

/// Builds a [`RedisStore`].
#[derive(Debug, Clone, Default)]
pub struct RedisStoreBuilder {
    config: RedisConfig,
}

impl RedisStoreBuilder {
    /// The server URL: `redis://[user[:password]@]host[:port][/db]`, or
    /// `rediss://` for TLS; for a cluster `redis+cluster://host:port,...`
    /// (or `rediss+cluster://`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = url.into();
        self
    }

    /// A prefix for every key in Redis (default none). On a cluster, a
    /// prefix with a hash tag (`{users}:`) keeps the store in one slot,
    /// where batches are atomic.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// For `rediss://` with a private CA: trust the CA in this PEM file
    /// (instead of the public roots) to sign the server's certificate.
    pub fn tls_ca_file(mut self, file: impl Into<String>) -> Self {
        self.config.tls_ca_file = Some(file.into());
        self
    }

    /// How long one connection attempt may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.set_durations(Some(timeout), None);
        self
    }

    /// How long a command or MULTI/EXEC may take (default 60 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.config.set_durations(None, Some(timeout));
        self
    }

    /// How often expired keys leave the index (default 60 s); `None` turns
    /// the background purge off.
    pub fn purge_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.set_purge_interval(interval);
        self
    }

    /// On a cluster, how many buckets a store without a hash tag in its
    /// prefix spreads its keys over (default 16).
    pub fn cluster_buckets(mut self, buckets: usize) -> Self {
        self.config.cluster_buckets = buckets;
        self
    }

    /// Whether the store keeps its listing index (default `true`). With
    /// `false` batches are only the data commands, TTLs are Redis's own,
    /// and `list`, versions and transactions are `Unsupported`; see
    /// [`RedisConfig::list_index`].
    pub fn list_index(mut self, enabled: bool) -> Self {
        self.config.list_index = enabled;
        self
    }

    /// Connects (one round trip) and starts the purge task.
    ///
    /// # Errors
    ///
    /// `Config` for a bad URL or key prefix, or a cluster store whose data
    /// was written with another bucket count; `Unavailable`, `Timeout`,
    /// `PermissionDenied` when the server cannot be reached or refuses.
    pub async fn connect(self) -> Result<RedisStore> {
        RedisStore::from_config(self.config).await
    }
}

impl RedisStore {
    /// A builder with the defaults.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to `url` with the defaults.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().url(url).connect().await
    }

    /// Connects with a deserialized [`RedisConfig`].
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    pub async fn from_config(mut config: RedisConfig) -> Result<Self> {
        ensure_crypto_provider();
        config.take_url_options()?;
        if config.purge_interval_ms == Some(0) {
            return Err(config_error(
                "purge_interval_ms must be at least 1 (null turns the purge off)",
            ));
        }
        if config.key_prefix.contains('\0') || config.key_prefix.len() >= MAX_KEY_BYTES {
            return Err(config_error(
                "the key prefix must have no NUL and be shorter than 1024 bytes",
            ));
        }
        let (conn, buckets) = match config.cluster_nodes() {
            None => (single(&config).await?, Buckets::one(&config.key_prefix)),
            Some(nodes) => {
                let nodes = nodes
                    .map_err(|why| config_error(format!("invalid Redis Cluster URL: {why}")))?;
                let buckets = Buckets::cluster(&config.key_prefix, config.cluster_buckets);
                let conn = cluster(&config, nodes).await?;
                check_bucket_count(&conn, &buckets).await?;
                (conn, buckets)
            }
        };
        if !config.list_index {
            index::mark_unindexed(&conn, &buckets).await?;
        }
        let scripts = Scripts::new();
        let purge = config
            .purge_interval()
            .filter(|_| config.list_index)
            .map(|every| {
                Arc::new(index::spawn_purge(
                    conn.clone(),
                    buckets.clone(),
                    scripts.clone(),
                    every,
                ))
            });
        let atomic = buckets.len() == 1;
        Ok(Self {
            conn,
            buckets,
            scripts,
            validator: Validator::new(BACKEND, capabilities(atomic, config.list_index)),
            versions: Arc::new(VersionSource::new()),
            config: Arc::new(config),
            _purge: purge,
        })
    }
}

/// The driver's URL parse errors never contain the URL; ours neither.
fn invalid_url(e: redis::RedisError) -> kv_core::Error {
    config_error(format!(
        "invalid Redis URL ({:?}): expected redis://[user[:password]@]host[:port][/db], \
         rediss://, or redis+cluster://host:port[,host:port...]",
        e.kind()
    ))
}

/// The private CA of `tls_ca_file`, if any.
fn root_cert(config: &RedisConfig) -> Result<Option<Vec<u8>>> {
    config
        .tls_ca_file
        .as_ref()
        .map(|file| {
            std::fs::read(file)
                .map_err(|e| config_error(format!("cannot read the TLS CA file {file:?}: {e}")))
        })
        .transpose()
}

/// One server: a `ConnectionManager` (reconnects by itself).
async fn single(config: &RedisConfig) -> Result<RedisConnection> {
    let url = kv_core::lowercase_scheme(&config.url);
    let client = match root_cert(config)? {
        None => redis::Client::open(url.as_ref()).map_err(invalid_url)?,
        Some(root_cert) => {
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            };
            redis::Client::build_with_tls(url.as_ref(), certs).map_err(invalid_url)?
        }
    };
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout()))
        .set_response_timeout(Some(config.response_timeout()))
        .set_number_of_retries(3);
    // The driver's connection timeout covers the TCP connect; its
    // handshake waits for the response timeout. The connect timeout
    // bounds both.
    let connecting = async {
        ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(|e| map_redis_error(Operation::Connect, e))
    };
    let conn = connect_within(BACKEND, config.connect_timeout(), connecting).await?;
    Ok(RedisConnection::Single(conn))
}

/// A cluster: the driver discovers the nodes and slots from any of
/// `nodes`, routes each command to its slot's primary, and follows MOVED,
/// ASK and failovers.
async fn cluster(config: &RedisConfig, nodes: Vec<String>) -> Result<RedisConnection> {
    let mut builder = ClusterClient::builder(nodes)
        .connection_timeout(config.connect_timeout())
        .response_timeout(config.response_timeout());
    if let Some(root_cert) = root_cert(config)? {
        builder = builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        });
    }
    let client = builder.build().map_err(invalid_url)?;
    let connecting = async {
        client
            .get_async_connection()
            .await
            .map_err(|e| map_redis_error(Operation::Connect, e))
    };
    let conn = connect_within(BACKEND, config.connect_timeout(), connecting).await?;
    Ok(RedisConnection::Cluster(conn))
}

/// A store spread over buckets records its bucket count on first use and
/// refuses to open with another: keys would be looked up in the wrong
/// buckets and seem absent.
async fn check_bucket_count(conn: &RedisConnection, buckets: &Buckets) -> Result<()> {
    if buckets.len() == 1 {
        return Ok(());
    }
    let op = Operation::Connect;
    let name = [b"\0kv:buckets\0", buckets.get(0).prefix.as_bytes()].concat();
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&name[..])
        .arg(buckets.len())
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(&name[..]);
    let (recorded,): (usize,) = pipe
        .query_async(&mut conn.clone())
        .await
        .map_err(|e| map_redis_error(op, e))?;
    if recorded != buckets.len() {
        return Err(config_error(format!(
            "this store's data was written with cluster_buckets = {recorded}; \
             open it with that count (this one has {})",
            buckets.len()
        )));
    }
    Ok(())
}

/// Installs rustls' `ring` provider for the process when none is installed.
///
/// redis-rs builds its TLS config with `rustls::ClientConfig::builder()`,
/// which panics when the process has more than one provider compiled in
/// (`ring` and `aws-lc-rs`: the default of hyper-rustls, tonic and the AWS
/// SDK) and none installed. An application that installed its own provider
/// keeps it; a race with another installer is harmless (one of them wins,
/// either works).
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

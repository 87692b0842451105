//! [`EtcdStoreBuilder`] and connecting: endpoints, credentials, TLS, the
//! limits a Txn must fit, the first request.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use kv_core::backend::stamp;
use kv_core::backend::{Validator, connect_within};
use kv_core::{Capabilities, MAX_KEY_BYTES, Operation, Result};

use crate::config::{EtcdConfig, EtcdTls, millis};
use crate::error::{BACKEND, config_error, map_etcd_error};
use crate::lease::Leases;
use crate::store::EtcdStore;
use crate::txn::{OP_OVERHEAD, TXN_OVERHEAD};

/// Builds an [`EtcdStore`].
#[derive(Debug, Clone, Default)]
pub struct EtcdStoreBuilder {
    pub(crate) config: EtcdConfig,
}

impl EtcdStoreBuilder {
    /// The cluster's client endpoints, `host:port` (default
    /// `127.0.0.1:2379`).
    pub fn endpoints<S: Into<String>>(mut self, endpoints: impl IntoIterator<Item = S>) -> Self {
        self.config.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Authenticates as `user` (for clusters with auth enabled).
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.config.user = Some(user.into());
        self.config.password = Some(password.into());
        self
    }

    /// Connects over TLS.
    pub fn tls(mut self, tls: EtcdTls) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// A prefix for every key in etcd (default none).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// How long connecting to an endpoint may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout_ms = millis(timeout);
        self
    }

    /// How long one request may take (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout_ms = millis(timeout);
        self
    }

    /// The server's `--max-txn-ops` (default 128).
    pub fn max_txn_ops(mut self, max: usize) -> Self {
        self.config.max_txn_ops = max;
        self
    }

    /// The server's `--max-request-bytes` (default 1.5 MiB).
    pub fn max_request_bytes(mut self, max: usize) -> Self {
        self.config.max_request_bytes = max;
        self
    }

    /// Serve reads without a quorum round (may be stale; default off).
    pub fn serializable_reads(mut self, on: bool) -> Self {
        self.config.serializable_reads = on;
        self
    }

    /// Connects and makes one round trip.
    ///
    /// # Errors
    ///
    /// `Config` for bad settings; `Unavailable`, `Timeout`,
    /// `PermissionDenied` when the cluster cannot be reached or refuses.
    pub async fn connect(self) -> Result<EtcdStore> {
        EtcdStore::from_config(self.config).await
    }
}

impl EtcdStore {
    /// A builder with the defaults.
    pub fn builder() -> EtcdStoreBuilder {
        EtcdStoreBuilder::default()
    }

    /// Connects to `etcd://host:port[,host:port...]` (see
    /// [`EtcdConfig::from_url`]).
    ///
    /// # Errors
    ///
    /// As [`EtcdStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::from_config(EtcdConfig::from_url(url)?).await
    }

    /// Connects with a deserialized [`EtcdConfig`].
    ///
    /// # Errors
    ///
    /// As [`EtcdStoreBuilder::connect`].
    pub async fn from_config(config: EtcdConfig) -> Result<Self> {
        // The connect timeout bounds the whole connect, the first request
        // included (a server that accepts and never answers would else
        // wait for the request timeout).
        let timeout = config.connect_timeout();
        connect_within(BACKEND, timeout, Self::connect_now(config)).await
    }

    async fn connect_now(config: EtcdConfig) -> Result<Self> {
        let caps = capabilities(&config)?;
        let options = connect_options(&config)?;
        let client = Client::connect(config.endpoint_urls(), Some(options))
            .await
            .map_err(|e| map_etcd_error(Operation::Connect, e))?;
        // A batch_get answers up to max_txn_ops values of up to max_value_bytes.
        let max_answer = config
            .max_txn_ops
            .saturating_mul(config.max_request_bytes)
            .saturating_add(1 << 20);
        let kv = client.kv_client().max_decoding_message_size(max_answer);
        let store = Self {
            leases: Arc::new(Leases::new(client.lease_client())),
            kv,
            client,
            prefix: config.key_prefix.as_bytes().into(),
            validator: Validator::new(BACKEND, caps),
            config: Arc::new(config),
        };
        store.ping(Operation::Connect).await?;
        Ok(store)
    }
}

/// What etcd promises through this store, from its configured limits.
pub(crate) fn capabilities(config: &EtcdConfig) -> Result<Capabilities> {
    if config.endpoints.is_empty() {
        return Err(config_error("at least one etcd endpoint is needed"));
    }
    if config.key_prefix.contains('\0') || config.key_prefix.len() >= MAX_KEY_BYTES {
        return Err(config_error(
            "the key prefix must have no NUL and be shorter than 1024 bytes",
        ));
    }
    if config.max_txn_ops == 0 {
        return Err(config_error("max_txn_ops must be at least 1"));
    }
    let fixed = TXN_OVERHEAD
        + OP_OVERHEAD
        + config.key_prefix.len()
        + MAX_KEY_BYTES
        + stamp::UNVERSIONED_HEADER_MAX;
    if config.max_request_bytes < fixed + 1024 {
        return Err(config_error(format!(
            "max_request_bytes must be at least {} to hold a 1 KiB value under the longest key",
            fixed + 1024
        )));
    }
    if config.user.is_some() != config.password.is_some() {
        return Err(config_error(
            "an etcd user needs a password, and a password a user",
        ));
    }
    Ok(Capabilities {
        atomic_batch: true,
        max_batch_ops: Some(config.max_txn_ops),
        max_key_bytes: MAX_KEY_BYTES,
        max_value_bytes: config.max_request_bytes - fixed,
        ttl: true,
        cas: true,
        versions: true,
        transactions: true,
        counters: true,
        listing: true,
        ordered_list: true,
        snapshot_batch_get: true,
        persistent: true,
    })
}

/// The driver's options. Holds the password: never print it (its `Debug`
/// shows it).
pub(crate) fn connect_options(config: &EtcdConfig) -> Result<ConnectOptions> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(config.connect_timeout())
        .with_timeout(config.request_timeout())
        .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10))
        .with_auto_token_refresh(true);
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        options = options.with_user(user.clone(), password.clone());
    }
    if let Some(tls) = &config.tls {
        options = options.with_tls(tls_options(tls)?);
    }
    Ok(options)
}

pub(crate) fn tls_options(tls: &EtcdTls) -> Result<TlsOptions> {
    let read = |what: &str, path: &str| {
        std::fs::read(path)
            .map_err(|e| config_error(format!("cannot read the TLS {what} file {path:?}: {e}")))
    };
    let mut options = TlsOptions::new();
    options = match &tls.ca_file {
        Some(ca) => options.ca_certificate(Certificate::from_pem(read("CA", ca)?)),
        None => options.with_native_roots(),
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            options = options.identity(Identity::from_pem(
                read("certificate", cert)?,
                read("key", key)?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(config_error(
                "a TLS client certificate needs both cert_file and key_file",
            ));
        }
    }
    if let Some(domain) = &tls.domain {
        options = options.domain_name(domain.clone());
    }
    Ok(options)
}

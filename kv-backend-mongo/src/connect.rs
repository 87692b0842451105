//! [`MongoStoreBuilder`] and connecting: the driver's options, the
//! server's topology, the TTL index.

use std::sync::Arc;
use std::time::Duration;

use kv_core::backend::{Validator, connect_within, millis};
use kv_core::{Capabilities, MAX_KEY_BYTES, Operation, Result};
use mongodb::bson::{RawDocumentBuf, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, IndexModel};

use crate::config::MongoConfig;
use crate::doc::{self, EXPIRES};
use crate::error::{BACKEND, config_error, map_mongo_error};
use crate::store::{MongoStore, TTL_INDEX};
use crate::topology::ServerInfo;
use crate::txn::Runner;

/// How long after the driver's own server selection timeout (the connect
/// timeout) `connect` gives up on its own.
const SELECTION_GRACE: Duration = Duration::from_millis(500);

/// Builds a [`MongoStore`].
#[derive(Debug, Clone, Default)]
pub struct MongoStoreBuilder {
    pub(crate) config: MongoConfig,
    pub(crate) client: Option<Client>,
}

impl MongoStoreBuilder {
    /// The connection string (default `mongodb://localhost:27017`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = url.into();
        self
    }

    /// Uses an existing client (its pool, its monitoring, its credentials)
    /// instead of connecting with [`url`](Self::url); the database is then
    /// [`database`](Self::database) or [`DEFAULT_DATABASE`](crate::DEFAULT_DATABASE).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The database (default: the URL's path, else `kv`).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.config.database = Some(database.into());
        self
    }

    /// The collection (default: the URL's `collection` option, else `kv`).
    pub fn collection(mut self, collection: impl Into<String>) -> Self {
        self.config.collection = Some(collection.into());
        self
    }

    /// How long finding and connecting to a server may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout_ms = millis(timeout);
        self
    }

    /// The longest one call may take on the client (default 60 s): then
    /// it fails with `Timeout`, even on a stalled connection.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout_ms = millis(timeout);
        self
    }

    /// The server-side limit of each command and commit (default 30 s).
    pub fn max_time(mut self, max_time: Duration) -> Self {
        self.config.max_time_ms = millis(max_time);
        self
    }

    /// Whether to create the TTL index at connect (default `true`).
    pub fn create_indexes(mut self, create: bool) -> Self {
        self.config.create_indexes = create;
        self
    }

    /// How often a transaction is retried after a transient error (default 8).
    pub fn transaction_retries(mut self, retries: u32) -> Self {
        self.config.transaction_retries = retries;
        self
    }

    /// The most distinct keys in one batch (default 100,000).
    pub fn max_batch_ops(mut self, max: usize) -> Self {
        self.config.max_batch_ops = max;
        self
    }

    /// The most statements in one write command (default and cap: the
    /// server's `maxWriteBatchSize`).
    pub fn max_statements_per_command(mut self, max: usize) -> Self {
        self.config.max_statements_per_command = max;
        self
    }

    /// Connects, reads the topology and limits, and creates the TTL index.
    ///
    /// # Errors
    ///
    /// `Config` for bad settings; `Unavailable`, `Timeout` or
    /// `PermissionDenied` when the server cannot be reached or refuses.
    pub async fn connect(self) -> Result<MongoStore> {
        match self.client {
            Some(client) => MongoStore::with_client(client, self.config).await,
            None => MongoStore::from_config(self.config).await,
        }
    }
}

impl MongoStore {
    /// A builder with the defaults.
    pub fn builder() -> MongoStoreBuilder {
        MongoStoreBuilder::default()
    }

    /// Connects to `mongodb://...` or `mongodb+srv://...` (see
    /// [`MongoConfig`]).
    ///
    /// # Errors
    ///
    /// As [`MongoStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::from_config(MongoConfig::from_url(url)?).await
    }

    /// Connects with a deserialized [`MongoConfig`].
    ///
    /// # Errors
    ///
    /// As [`MongoStoreBuilder::connect`].
    pub async fn from_config(config: MongoConfig) -> Result<Self> {
        let url = config.validated()?;
        let mut options = ClientOptions::parse(&url).await.map_err(|e| {
            // The driver's parse errors may quote the string: never pass them on.
            let what = match e.kind.as_ref() {
                mongodb::error::ErrorKind::DnsResolve { .. } => "its SRV or TXT lookup failed",
                _ => "the driver cannot parse it",
            };
            config_error(format!(
                "the MongoDB URL is not valid: {what} (the driver's message is withheld \
                 because it may quote the URL)"
            ))
        })?;
        options.connect_timeout = options.connect_timeout.or(Some(config.connect_timeout()));
        options.server_selection_timeout = options
            .server_selection_timeout
            .or(Some(config.connect_timeout()));
        options.app_name = options.app_name.or(Some("kv".to_owned()));
        let client =
            Client::with_options(options).map_err(|e| map_mongo_error(Operation::Connect, e))?;
        // The driver's server selection ends at the connect timeout with
        // the reason (an untrusted certificate, a refused port) in its
        // error; the outer bound, for a handshake that hangs, comes a little
        // later so that it does not race the driver's answer and hide it.
        let timeout = config.connect_timeout() + SELECTION_GRACE;
        connect_within(BACKEND, timeout, Self::with_client(client, config)).await
    }

    pub(crate) async fn with_client(client: Client, config: MongoConfig) -> Result<Self> {
        config.validated()?;
        let op = Operation::Connect;
        let db = client.database(config.database_name());
        let hello = db
            .run_command(doc! {"hello": 1})
            .await
            .map_err(|e| map_mongo_error(op, e))?;
        let info = ServerInfo::from_hello(&hello);
        let coll = db.collection::<RawDocumentBuf>(config.collection_name());
        if config.create_indexes {
            let index = IndexModel::builder()
                .keys(doc! {EXPIRES: 1})
                .options(
                    IndexOptions::builder()
                        .name(TTL_INDEX.to_owned())
                        .expire_after(Duration::ZERO)
                        .build(),
                )
                .build();
            coll.create_index(index)
                .await
                .map_err(|e| map_mongo_error(op, e))?;
        }
        let caps = capabilities(&config, &info);
        Ok(Self {
            runner: Runner {
                db,
                transactions: info.topology.has_transactions(),
                max_time: config.max_time(),
                retries: config.transaction_retries,
            },
            max_statements: config
                .max_statements_per_command
                .min(info.max_write_batch_size),
            client,
            coll,
            info,
            validator: Validator::new(BACKEND, caps),
            config: Arc::new(config),
        })
    }
}

/// What MongoDB promises through this store.
pub(crate) fn capabilities(config: &MongoConfig, info: &ServerInfo) -> Capabilities {
    let transactions = info.topology.has_transactions();
    Capabilities {
        atomic_batch: transactions,
        max_batch_ops: Some(config.max_batch_ops),
        max_key_bytes: MAX_KEY_BYTES,
        // The document {_id: key, v: value, e: date} must fit in
        // maxBsonObjectSize with the longest key.
        max_value_bytes: info
            .max_bson_object_size
            .saturating_sub(MAX_KEY_BYTES + doc::STATEMENT_OVERHEAD),
        ttl: true,
        cas: true,
        versions: true,
        // Multi-document transactions; single-document `write_if` is
        // atomic everywhere.
        transactions,
        counters: true,
        listing: true,
        ordered_list: true,
        snapshot_batch_get: info.snapshot_reads(),
        persistent: true,
    }
}

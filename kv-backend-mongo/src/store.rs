//! [`MongoStore`]: the `KvStore` implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::stamp::now_millis;
use kv_core::backend::{Validator, connect_within};
use kv_core::{
    Capabilities, Entry, Key, KvStore, ListOptions, MAX_KEY_BYTES, Operation, Page, Result,
    SetOptions, WriteOp, prefix_successor_str,
};
use mongodb::bson::{Document, RawDocument, RawDocumentBuf, doc};
use mongodb::options::{ClientOptions, IndexOptions, ReadConcern};
use mongodb::{Client, Collection, IndexModel};

use crate::config::MongoConfig;
use crate::doc::{self, EXPIRES, VALUE};
use crate::error::{
    BACKEND, DUPLICATE_KEY, config_error, map_mongo_error, reply_error, reply_failure,
};
use crate::topology::{ServerInfo, Topology};
use crate::txn::{Runner, millis};

/// How long after the driver's own server selection timeout (the connect
/// timeout) `connect` gives up on its own.
const SELECTION_GRACE: Duration = Duration::from_millis(500);

/// The name of the TTL index the store creates on `e`.
pub(crate) const TTL_INDEX: &str = "kv_ttl";

/// The MongoDB backend: a pooled `mongodb::Client`, every batch one
/// `update` (and `delete`) command in one transaction on replica sets and
/// sharded clusters, exact TTL by a filter on every read and a TTL index
/// that reclaims the storage.
///
/// Cheap to clone; clones share the client's connection pool.
///
/// ```no_run
/// use kv_backend_mongo::MongoStore;
/// use kv_core::Kv;
///
/// # async fn demo() -> kv_core::Result<()> {
/// let store = MongoStore::builder()
///     .url("mongodb://app:s3cret@db1,db2,db3/app?replicaSet=rs0")
///     .collection("sessions")
///     .connect()
///     .await?;
/// let kv = Kv::new(store.into_dyn());
/// kv.batch_set([("a", 1), ("b", 2)]).await?; // one update command, one transaction
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    coll: Collection<RawDocumentBuf>,
    runner: Runner,
    info: ServerInfo,
    validator: Validator,
    config: Arc<MongoConfig>,
    /// Statements per write command.
    max_statements: usize,
}

/// Builds a [`MongoStore`].
#[derive(Debug, Clone, Default)]
pub struct MongoStoreBuilder {
    config: MongoConfig,
    client: Option<Client>,
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
        self.config.connect_timeout_ms = u64::try_from(millis(timeout)).unwrap_or(u64::MAX);
        self
    }

    /// The longest one call may take on the client (default 60 s): then
    /// it fails with `Timeout`, even on a stalled connection.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout_ms = u64::try_from(millis(timeout)).unwrap_or(u64::MAX);
        self
    }

    /// The server-side limit of each command and commit (default 30 s).
    pub fn max_time(mut self, max_time: Duration) -> Self {
        self.config.max_time_ms = u64::try_from(millis(max_time)).unwrap_or(u64::MAX);
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

    async fn with_client(client: Client, config: MongoConfig) -> Result<Self> {
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

    /// Runs one call within the request timeout.
    async fn timed<T>(
        &self,
        op: Operation,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        kv_core::backend::within(BACKEND, op, self.config.request_timeout(), call).await
    }

    /// This store as `Arc<dyn KvStore>`.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// The driver's client, for commands of your own.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The collection holding the keys, as raw documents.
    pub fn collection(&self) -> &Collection<RawDocumentBuf> {
        &self.coll
    }

    /// The deployment's kind, read at connect.
    pub fn topology(&self) -> Topology {
        self.info.topology
    }

    fn collection_name(&self) -> &str {
        self.config.collection_name()
    }

    /// The live documents of `distinct` keys, each read by `each(key,
    /// document, now)`, by key: one `find` (one snapshot where the server
    /// has snapshot reads), projected to `projection`.
    async fn find_live<T>(
        &self,
        op: Operation,
        distinct: &[&Key],
        projection: Document,
        mut each: impl FnMut(&str, &RawDocument, u64) -> Result<T> + Send,
    ) -> Result<HashMap<String, T>> {
        let now = now_millis();
        let filter = doc! {
            "_id": {"$in": doc::key_array(distinct.iter().copied())},
            EXPIRES: doc::live(now),
        };
        let mut find = self
            .coll
            .find(filter)
            .projection(projection)
            // At most one document per key: with the limit reached in the
            // first batch the server closes the cursor (no getMore).
            .limit(i64::try_from(distinct.len()).unwrap_or(i64::MAX))
            .batch_size(u32::try_from(distinct.len()).unwrap_or(u32::MAX))
            .max_time(self.runner.max_time);
        if self.info.snapshot_reads() {
            // One snapshot for the whole answer, across getMores too.
            find = find.read_concern(ReadConcern::snapshot());
        }
        let mut cursor = find.await.map_err(|e| map_mongo_error(op, e))?;
        let mut found = HashMap::with_capacity(distinct.len());
        while cursor.advance().await.map_err(|e| map_mongo_error(op, e))? {
            let current = cursor.current();
            let key = doc::id_of(op, current)?.into_string();
            let item = each(&key, current, now)?;
            found.insert(key, item);
        }
        Ok(found)
    }

    /// `update` commands upserting `entries`, cut at the statement and
    /// size limits.
    fn update_commands(&self, entries: &[&Entry], now: u64) -> Vec<RawDocumentBuf> {
        doc::chunks(
            entries.to_vec(),
            self.max_statements,
            self.info.max_bson_object_size,
            |e| doc::upsert_bytes(e),
        )
        .into_iter()
        .map(|chunk| {
            let statements = chunk.iter().map(|e| doc::upsert(e, now)).collect();
            doc::command("update", self.collection_name(), "updates", statements)
        })
        .collect()
    }

    /// `delete` commands removing the documents of `keys` that `condition`
    /// on `e` (if any) matches, one statement per key.
    fn delete_commands(
        &self,
        op: Operation,
        keys: &[&Key],
        condition: Option<&Document>,
    ) -> Result<Vec<RawDocumentBuf>> {
        let mut statements = Vec::with_capacity(keys.len());
        for key in keys {
            let mut q = doc! {"_id": key.as_str()};
            if let Some(condition) = condition {
                q.insert(EXPIRES, condition.clone());
            }
            statements.push(doc::delete(q).map_err(|e| encode_error(op, e))?);
        }
        Ok(doc::chunks(
            statements,
            self.max_statements,
            self.info.max_bson_object_size,
            |s| s.as_bytes().len(),
        )
        .into_iter()
        .map(|chunk| doc::command("delete", self.collection_name(), "deletes", chunk))
        .collect())
    }

    /// One single-statement `update` outside any transaction; returns how
    /// many documents it matched or inserted. A duplicate key is `None`.
    async fn update_one(
        &self,
        op: Operation,
        q: Document,
        replacement: RawDocumentBuf,
        upsert: bool,
    ) -> Result<Option<u64>> {
        let mut statement = RawDocumentBuf::new();
        statement.append(
            "q",
            RawDocumentBuf::from_document(&q).map_err(|e| encode_error(op, e))?,
        );
        statement.append("u", replacement);
        statement.append("upsert", upsert);
        let command = doc::command("update", self.collection_name(), "updates", vec![statement]);
        let reply = self.runner.command_reply(op, command).await?;
        match reply_failure(&reply) {
            Some((DUPLICATE_KEY, _)) => Ok(None),
            Some(_) => Err(reply_error(op, &reply)
                .unwrap_or_else(|| kv_core::Error::new(kv_core::ErrorKind::Backend, BACKEND, op))),
            None => Ok(Some(doc::count(&reply))),
        }
    }
}

fn encode_error(
    op: Operation,
    err: impl std::error::Error + Send + Sync + 'static,
) -> kv_core::Error {
    kv_core::Error::new(kv_core::ErrorKind::Encode, BACKEND, op).with_source(err)
}

/// What MongoDB promises through this store.
fn capabilities(config: &MongoConfig, info: &ServerInfo) -> Capabilities {
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
        ordered_list: true,
        snapshot_batch_get: info.snapshot_reads(),
        persistent: true,
    }
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.config.database_name())
            .field("collection", &self.collection_name())
            .field("topology", &self.info.topology)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for MongoStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.validator.capabilities()
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.timed(Operation::Get, async {
            let op = Operation::Get;
            let found = self
                .coll
                .find_one(doc::live_key(key, now_millis()))
                .projection(doc! {VALUE: 1, "_id": 0})
                .max_time(self.runner.max_time)
                .await
                .map_err(|e| map_mongo_error(op, e))?;
            found
                .map(|d| doc::value_of(op, key.as_str(), &d))
                .transpose()
        })
        .await
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        self.timed(Operation::Set, async {
            let ttl = self.validator.set(key, &value, options)?;
            let entry = Entry {
                key: key.clone(),
                value,
                ttl,
            };
            let command = doc::command(
                "update",
                self.collection_name(),
                "updates",
                vec![doc::upsert(&entry, now_millis())],
            );
            self.runner.command(Operation::Set, command).await?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Delete, async {
            let op = Operation::Delete;
            let removed = self
                .coll
                .find_one_and_delete(doc! {"_id": key.as_str()})
                .projection(doc! {EXPIRES: 1})
                .max_time(self.runner.max_time)
                .await
                .map_err(|e| map_mongo_error(op, e))?;
            let now = now_millis();
            Ok(removed.is_some_and(|d| doc::is_live(&d, now)))
        })
        .await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Exists, async {
            let op = Operation::Exists;
            let found = self
                .coll
                .find_one(doc::live_key(key, now_millis()))
                .projection(doc! {"_id": 1})
                .max_time(self.runner.max_time)
                .await
                .map_err(|e| map_mongo_error(op, e))?;
            Ok(found.is_some())
        })
        .await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.timed(Operation::List, async {
            let op = Operation::List;
            let range = self.validator.list(prefix, &options)?;
            if range.exhausted {
                return Ok(Page::default());
            }
            let mut id = match &range.start_after {
                Some(after) => doc! {"$gt": after.as_str()},
                None => doc! {"$gte": range.prefix.as_str()},
            };
            if let Some(end) = prefix_successor_str(&range.prefix) {
                id.insert("$lt", end);
            }
            let want = range.limit.saturating_add(1);
            let mut cursor = self
                .coll
                .find(doc! {"_id": id, EXPIRES: doc::live(now_millis())})
                .projection(doc! {"_id": 1})
                .sort(doc! {"_id": 1})
                .limit(i64::try_from(want).unwrap_or(i64::MAX))
                .batch_size(u32::try_from(want).unwrap_or(u32::MAX))
                .max_time(self.runner.max_time)
                .await
                .map_err(|e| map_mongo_error(op, e))?;
            let mut keys = Vec::with_capacity(want.min(1024));
            while cursor.advance().await.map_err(|e| map_mongo_error(op, e))? {
                keys.push(doc::id_of(op, cursor.current())?);
            }
            Ok(Page::from_fetched(keys, range.limit))
        })
        .await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.timed(Operation::BatchGet, async {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let op = Operation::BatchGet;
            let distinct = self.validator.distinct_keys(op, keys)?;
            let found = self
                .find_live(op, &distinct, doc! {VALUE: 1}, |key, current, _| {
                    doc::value_of(op, key, current)
                })
                .await?;
            Ok(keys
                .iter()
                .map(|k| found.get(k.as_str()).cloned())
                .collect())
        })
        .await
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        self.timed(Operation::BatchGetWithTtl, async {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let op = Operation::BatchGetWithTtl;
            let distinct = self.validator.distinct_keys(op, keys)?;
            let found = self
                .find_live(
                    op,
                    &distinct,
                    doc! {VALUE: 1, EXPIRES: 1},
                    |key, current, now| {
                        Ok((
                            doc::value_of(op, key, current)?,
                            doc::ttl_of(op, key, current, now)?,
                        ))
                    },
                )
                .await?;
            Ok(keys
                .iter()
                .map(|k| {
                    found.get(k.as_str()).map(|(value, ttl)| Entry {
                        key: k.clone(),
                        value: value.clone(),
                        ttl: *ttl,
                    })
                })
                .collect())
        })
        .await
    }

    /// Copies the entries into [`batch_set`](Self::batch_set): the update command is built from validated owned entries.
    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        self.batch_set(entries.to_vec()).await
    }

    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        self.timed(Operation::BatchSet, async {
            let entries = self.validator.entries(entries)?;
            if entries.is_empty() {
                return Ok(());
            }
            let refs: Vec<&Entry> = entries.iter().collect();
            let commands = self.update_commands(&refs, now_millis());
            self.runner.batch(Operation::BatchSet, commands).await?;
            Ok(())
        })
        .await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        self.timed(Operation::BatchDelete, async {
            if keys.is_empty() {
                return Ok(0);
            }
            let op = Operation::BatchDelete;
            let distinct = self.validator.distinct_keys(op, keys)?;
            let now = now_millis();
            // The live documents first (their count is the answer), then the
            // expired ones, which are removed without being counted.
            let live = self.delete_commands(op, &distinct, Some(&doc::live(now)))?;
            let live_commands = live.len();
            let mut commands = live;
            commands.extend(self.delete_commands(op, &distinct, Some(&doc::expired(now)))?);
            let replies = self.runner.batch(op, commands).await?;
            Ok(replies[..live_commands].iter().map(doc::count).sum())
        })
        .await
    }

    /// Copies the operations into [`write_batch`](Self::write_batch): the update command is built from validated owned entries.
    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        self.write_batch(ops.to_vec()).await
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        self.timed(Operation::WriteBatch, async {
            let op = Operation::WriteBatch;
            let ops = self.validator.write_ops(ops)?;
            if ops.is_empty() {
                return Ok(());
            }
            let (mut puts, mut deletes) = (Vec::new(), Vec::new());
            for write in &ops {
                match write {
                    WriteOp::Put(entry) => puts.push(entry),
                    WriteOp::Delete(key) => deletes.push(key),
                }
            }
            // The validator kept one operation per key, so the order of the
            // two commands does not matter.
            let mut commands = self.update_commands(&puts, now_millis());
            commands.extend(self.delete_commands(op, &deletes, None)?);
            self.runner.batch(op, commands).await?;
            Ok(())
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        self.timed(Operation::CompareAndSwap, async {
            let op = Operation::CompareAndSwap;
            let ttl = self
                .validator
                .cas(key, expected.as_deref(), new.as_deref(), options)?;
            let now = now_millis();
            match (expected, new) {
                // Replace the live document holding exactly `expected`.
                (Some(expected), Some(new)) => {
                    let mut q = doc::live_key(key, now);
                    q.insert(VALUE, binary(&expected));
                    let stored = doc::stored(key.as_str(), &new, ttl, now);
                    Ok(self.update_one(op, q, stored, false).await? == Some(1))
                }
                // Insert, or replace an expired document; a live one makes the
                // upsert's insert fail on the _id: no swap.
                (None, Some(new)) => {
                    let q = doc! {"_id": key.as_str(), EXPIRES: doc::expired(now)};
                    let stored = doc::stored(key.as_str(), &new, ttl, now);
                    Ok(self
                        .update_one(op, q, stored, true)
                        .await?
                        .is_some_and(|n| n == 1))
                }
                (Some(expected), None) => {
                    let mut q = doc::live_key(key, now);
                    q.insert(VALUE, binary(&expected));
                    let statement = doc::delete(q).map_err(|e| encode_error(op, e))?;
                    let command =
                        doc::command("delete", self.collection_name(), "deletes", vec![statement]);
                    let reply = self.runner.command(op, command).await?;
                    Ok(doc::count(&reply) == 1)
                }
                // "Delete if absent": true exactly when no live document exists.
                (None, None) => Ok(!self
                    .exists(key)
                    .await
                    .map_err(|e| e.in_context(BACKEND, op))?),
            }
        })
        .await
    }

    async fn health(&self) -> Result<kv_core::Health> {
        self.timed(Operation::Health, async {
            let started = Instant::now();
            self.runner
                .db
                .run_command(doc! {"ping": 1})
                .await
                .map_err(|e| map_mongo_error(Operation::Health, e))?;
            Ok(kv_core::Health {
                backend: BACKEND,
                latency: started.elapsed(),
            })
        })
        .await
    }
}

fn binary(value: &[u8]) -> mongodb::bson::Binary {
    mongodb::bson::Binary {
        subtype: mongodb::bson::spec::BinarySubtype::Generic,
        bytes: value.to_vec(),
    }
}

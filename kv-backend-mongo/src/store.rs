//! [`MongoStore`]: the `KvStore` implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::Validator;
use kv_core::backend::stamp::now_millis;
use kv_core::{
    Capabilities, Condition, Entry, Key, KvStore, ListOptions, Operation, Page, Result, SetOptions,
    Transaction, TxnOutcome, Versioned, WriteOp, prefix_successor_str,
};
use mongodb::bson::{Document, RawDocument, RawDocumentBuf, doc};
use mongodb::options::ReadConcern;
use mongodb::{Client, Collection};

use crate::config::MongoConfig;
use crate::doc::{self, EXPIRES, VALUE};
use crate::error::{BACKEND, DUPLICATE_KEY, map_mongo_error, reply_error, reply_failure};
use crate::topology::{ServerInfo, Topology};
use crate::txn::Runner;

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
    pub(crate) client: Client,
    pub(crate) coll: Collection<RawDocumentBuf>,
    pub(crate) runner: Runner,
    pub(crate) info: ServerInfo,
    pub(crate) validator: Validator,
    pub(crate) config: Arc<MongoConfig>,
    /// Statements per write command.
    pub(crate) max_statements: usize,
}

impl MongoStore {
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

    pub(crate) fn collection_name(&self) -> &str {
        self.config.collection_name()
    }

    /// The live documents of `distinct` keys, each read by `each(key,
    /// document, now)`, by key: one `find` (one snapshot where the server
    /// has snapshot reads), projected to `projection`.
    pub(crate) async fn find_live<T>(
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
    pub(crate) fn update_commands(&self, entries: &[&Entry], now: u64) -> Vec<RawDocumentBuf> {
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
    pub(crate) fn delete_commands(
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
    pub(crate) async fn update_one(
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

pub(crate) fn encode_error(
    op: Operation,
    err: impl std::error::Error + Send + Sync + 'static,
) -> kv_core::Error {
    kv_core::Error::new(kv_core::ErrorKind::Encode, BACKEND, op).with_source(err)
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

    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        self.timed(Operation::BatchGetVersioned, self.read_versioned(keys))
            .await
    }

    async fn get_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        let op = Operation::GetVersioned;
        let mut found = self
            .timed(op, self.read_versioned(std::slice::from_ref(key)))
            .await
            .map_err(|e| e.in_context(BACKEND, op))?;
        Ok(found.pop().flatten())
    }

    async fn write_if(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        self.timed(
            Operation::WriteIf,
            self.write_if_doc(key, condition, new, options),
        )
        .await
    }

    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        self.timed(Operation::Transact, self.transact_docs(txn))
            .await
    }

    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        self.timed(
            Operation::Increment,
            self.increment_doc(key, delta, options),
        )
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

//! [`MysqlStore`]: the `KvStore` implementation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::sql::in_input_order;
use kv_core::backend::{PeriodicTask, TaskStatus, Validator};
use kv_core::{
    Capabilities, Condition, Entry, Error, ErrorKind, Health, Key, KvStore, ListOptions,
    MAX_KEY_BYTES, Operation, Page, Result, SetOptions, Transaction, TxnOutcome, Versioned,
    WriteOp, prefix_successor_str,
};
use sqlx::MySqlPool;
use sqlx::mysql::MySqlRow;

use crate::connect::MysqlStoreBuilder;
use crate::error::{BACKEND, map_sqlx_error};
use crate::sql::{MAX_PLACEHOLDERS, Sized, Statements, UPSERT_PARAMS, purge};
use crate::versions::VersionBlock;

/// The largest value this backend ever takes: 1 GiB, the most
/// `max_allowed_packet` can be. The limit in force is lower: a value must
/// fit in one packet with its key, so it is the server's
/// `max_allowed_packet` less 2 KiB (read on connect, in
/// [`capabilities`](KvStore::capabilities)).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024 * 1024;

/// Room in a packet for everything but keys and values.
const PACKET_SLACK: usize = 1024;

/// The most rows or keys one statement carries: the protocol's 65,535
/// placeholders, four per upserted row.
pub(crate) const MAX_BATCH: usize = MAX_PLACEHOLDERS / UPSERT_PARAMS;

/// The MySQL / MariaDB backend: a sqlx pool and one InnoDB table.
///
/// Cheap to clone; clones share the pool and the purge task, which stops
/// when the last clone is dropped.
///
/// ```no_run
/// use kv_backend_mysql::MysqlStore;
/// use kv_core::Kv;
///
/// # async fn demo() -> kv_core::Result<()> {
/// let store = MysqlStore::builder()
///     .url("mysql://app:secret@127.0.0.1/app")
///     .table("sessions")
///     .connect()
///     .await?;
/// let kv = Kv::new(store.into_dyn());
/// kv.batch_set([("a", 1), ("b", 2)]).await?; // one INSERT .. ON DUPLICATE KEY UPDATE
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MysqlStore {
    pub(crate) pool: MySqlPool,
    pub(crate) sql: Arc<Statements>,
    pub(crate) table: Arc<str>,
    pub(crate) validator: Validator,
    pub(crate) max_packet: usize,
    pub(crate) versions: Arc<VersionBlock>,
    pub(crate) purge_chunk: i64,
    pub(crate) request_timeout: Duration,
    pub(crate) _purge: Option<Arc<PeriodicTask>>,
}

/// What MySQL promises through this store, with the server's
/// `max_allowed_packet`.
pub(crate) fn capabilities(max_packet: usize) -> Capabilities {
    Capabilities {
        atomic_batch: true,
        max_batch_ops: Some(MAX_BATCH),
        max_key_bytes: MAX_KEY_BYTES,
        max_value_bytes: max_packet
            .saturating_sub(MAX_KEY_BYTES + PACKET_SLACK)
            .min(MAX_VALUE_BYTES),
        ttl: true,
        cas: true,
        versions: true,
        transactions: true,
        counters: true,
        listing: true,
        ordered_list: true,
        snapshot_batch_get: true,
        persistent: true,
    }
}

/// A TTL in milliseconds (at most ten years, so it fits).
pub(crate) fn ttl_millis(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

/// The bytes of an upsert of `entries` in one packet, over-estimated: per
/// row two parameter types, two length prefixes, two 8-byte integers.
fn upsert_bytes<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> usize {
    PACKET_SLACK
        + entries
            .into_iter()
            .map(|e| e.key.as_str().len() + e.value.len() + 48)
            .sum::<usize>()
}

/// The bytes of a statement naming `keys`, over-estimated.
fn keys_bytes<'a>(keys: impl IntoIterator<Item = &'a str>) -> usize {
    PACKET_SLACK + keys.into_iter().map(|k| k.len() + 12).sum::<usize>()
}

/// Rows keyed by the key's bytes, keyed by the key as text. Every row
/// answers an `IN` list of valid keys, so its key is the UTF-8 of one of
/// them; a row that were not could match no key and is left out.
pub(crate) fn by_name<R>(rows: Vec<(Vec<u8>, R)>) -> Vec<(String, R)> {
    rows.into_iter()
        .filter_map(|(k, r)| String::from_utf8(k).ok().map(|k| (k, r)))
        .collect()
}

fn is_reconnectable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_))
}

impl MysqlStore {
    /// A builder with the defaults.
    pub fn builder() -> MysqlStoreBuilder {
        MysqlStoreBuilder::default()
    }

    /// Connects to `url` with the defaults (table `kv_store`).
    ///
    /// # Errors
    ///
    /// As [`MysqlStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().url(url).connect().await
    }

    /// Connects with a deserialized [`MysqlConfig`](crate::MysqlConfig).
    ///
    /// # Errors
    ///
    /// As [`MysqlStoreBuilder::connect`].
    pub async fn from_config(config: crate::MysqlConfig) -> Result<Self> {
        Self::builder().config(config).connect().await
    }

    /// This store as `Arc<dyn KvStore>`.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// The pool, for queries of your own.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The server's `max_allowed_packet` when the store connected: the
    /// largest statement it sends.
    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// Deletes expired rows now, in chunks (the background task does this
    /// every purge interval); returns how many were deleted.
    ///
    /// # Errors
    ///
    /// The server's errors.
    pub async fn purge_expired(&self) -> Result<u64> {
        purge(&self.pool, &self.sql, self.purge_chunk).await
    }

    /// What the background purge has done: runs, failures and the last
    /// error (`None` when the purge is off).
    pub fn purge_status(&self) -> Option<TaskStatus> {
        self._purge.as_ref().map(|task| task.status())
    }

    /// Runs one call within the request timeout.
    async fn timed<T>(&self, op: Operation, call: impl Future<Output = Result<T>>) -> Result<T> {
        kv_core::backend::within(BACKEND, op, self.request_timeout, call).await
    }

    /// Runs a read; after a broken connection retries once (the pool tests
    /// connections before handing them out). Writes are never retried.
    pub(crate) async fn read<T, F, Fut>(&self, op: Operation, run: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = sqlx::Result<T>>,
    {
        kv_core::backend::read_retrying_once(run, is_reconnectable)
            .await
            .map_err(|e| map_sqlx_error(op, e))
    }

    /// `BatchTooLarge` when a statement of `bytes` would not fit in the
    /// server's `max_allowed_packet`: checked before any I/O.
    pub(crate) fn check_packet(&self, op: Operation, bytes: usize) -> Result<()> {
        if bytes > self.max_packet {
            return Err(
                Error::new(ErrorKind::BatchTooLarge, BACKEND, op).with_message(format!(
                    "the statement would be about {bytes} bytes, over the server's \
                 max_allowed_packet ({}); split the batch or raise max_allowed_packet",
                    self.max_packet
                )),
            );
        }
        Ok(())
    }

    /// Checks that the writes fit, before any I/O: the upsert of `puts` and
    /// the delete of `deletes` are one statement each.
    pub(crate) fn check_writes(
        &self,
        op: Operation,
        puts: &[&Entry],
        deletes: &[&str],
    ) -> Result<()> {
        self.check_packet(op, upsert_bytes(puts.iter().copied()))?;
        self.check_packet(op, keys_bytes(deletes.iter().copied()))
    }

    /// The keys of a read or delete, checked against the packet.
    pub(crate) fn check_keys(&self, op: Operation, keys: &[Key]) -> Result<()> {
        self.check_packet(op, keys_bytes(keys.iter().map(Key::as_str)))
    }

    /// Whether a live row of `key` exists.
    pub(crate) async fn is_live(&self, op: Operation, key: &Key) -> Result<bool> {
        let found: i64 = self
            .read(op, || {
                sqlx::query_scalar(&self.sql.exists)
                    .bind(key.as_str().as_bytes())
                    .fetch_one(&self.pool)
            })
            .await?;
        Ok(found != 0)
    }

    /// A new version for a write that puts rows; none (0) for one that only
    /// deletes.
    pub(crate) async fn version_for(&self, op: Operation, puts: &[&Entry]) -> Result<i64> {
        if puts.is_empty() {
            Ok(0)
        } else {
            self.next_version(op).await
        }
    }

    /// Reads the rows of `keys` with `statement` (an `IN` list of their
    /// count, each key bound as its bytes).
    pub(crate) async fn read_keys<T>(
        &self,
        op: Operation,
        statement: &Sized,
        keys: &[Key],
    ) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, MySqlRow> + Send + Unpin,
    {
        self.check_keys(op, keys)?;
        let sql = statement.get(keys.len());
        self.read(op, || {
            let mut query = sqlx::query_as(&sql);
            for key in keys {
                query = query.bind(key.as_str().as_bytes());
            }
            query.fetch_all(&self.pool)
        })
        .await
    }

    /// Upserts `puts` and deletes `deletes` in `exec` with `version`.
    pub(crate) async fn write_in(
        &self,
        exec: &mut sqlx::MySqlConnection,
        version: i64,
        puts: &[&Entry],
        deletes: &[&str],
    ) -> sqlx::Result<()> {
        if !deletes.is_empty() {
            let sql = self.sql.delete_all.get(deletes.len());
            let mut query = sqlx::query(&sql);
            for key in deletes {
                query = query.bind(key.as_bytes());
            }
            query.execute(&mut *exec).await?;
        }
        if !puts.is_empty() {
            let sql = self.sql.upsert.get(puts.len());
            let mut query = sqlx::query(&sql);
            for entry in puts {
                query = query
                    .bind(entry.key.as_str().as_bytes())
                    .bind(&entry.value[..])
                    .bind(ttl_millis(entry.ttl))
                    .bind(version);
            }
            query.execute(&mut *exec).await?;
        }
        Ok(())
    }

    /// Upserts `puts` and deletes `deletes` atomically: one statement when
    /// there is one kind, else one transaction.
    pub(crate) async fn write(
        &self,
        op: Operation,
        puts: &[&Entry],
        deletes: &[&str],
    ) -> Result<()> {
        self.check_writes(op, puts, deletes)?;
        let map = |e| map_sqlx_error(op, e);
        let version = self.version_for(op, puts).await?;
        if deletes.is_empty() || puts.is_empty() {
            let mut conn = self.pool.acquire().await.map_err(map)?;
            return self
                .write_in(&mut conn, version, puts, deletes)
                .await
                .map_err(map);
        }
        let mut tx = self.pool.begin().await.map_err(map)?;
        self.write_in(&mut tx, version, puts, deletes)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)
    }
}

impl fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlStore")
            .field("table", &&*self.table)
            .field("pool_size", &self.pool.size())
            .field("max_packet", &self.max_packet)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for MysqlStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.validator.capabilities()
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.timed(Operation::Get, async {
            let row: Option<Vec<u8>> = self
                .read(Operation::Get, || {
                    sqlx::query_scalar(&self.sql.get)
                        .bind(key.as_str().as_bytes())
                        .fetch_optional(&self.pool)
                })
                .await?;
            Ok(row.map(Bytes::from))
        })
        .await
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        self.timed(Operation::Set, async {
            let op = Operation::Set;
            let ttl = self.validator.set(key, &value, options)?;
            let version = self.next_version(op).await?;
            sqlx::query(&self.sql.set)
                .bind(key.as_str().as_bytes())
                .bind(&value[..])
                .bind(ttl_millis(ttl))
                .bind(version)
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(|e| map_sqlx_error(op, e))
        })
        .await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Delete, async {
            let done = sqlx::query(&self.sql.delete)
                .bind(key.as_str().as_bytes())
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error(Operation::Delete, e))?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Exists, self.is_live(Operation::Exists, key))
            .await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.timed(Operation::List, async {
            let range = self.validator.list(prefix, &options)?;
            if range.exhausted {
                return Ok(Page::default());
            }
            let (after, lower) = match &range.start_after {
                Some(cursor) => (true, cursor.as_str()),
                None => (false, range.prefix.as_str()),
            };
            let end = prefix_successor_str(&range.prefix);
            let limit = i64::try_from(range.limit.saturating_add(1)).unwrap_or(i64::MAX);
            let rows: Vec<Vec<u8>> = self
                .read(Operation::List, || {
                    let mut query =
                        sqlx::query_scalar(self.sql.list(after, end.is_some())).bind(lower.as_bytes());
                    if let Some(end) = &end {
                        query = query.bind(end.as_bytes());
                    }
                    query.bind(limit).fetch_all(&self.pool)
                })
                .await?;
            let keys = rows
                .into_iter()
                .map(|k| {
                    String::from_utf8(k)
                        .map_err(|_| {
                            Error::new(ErrorKind::Backend, BACKEND, Operation::List).with_message(
                                "the table holds a key that is not UTF-8 (written by another program)",
                            )
                        })
                        .and_then(|k| {
                            Key::new(k).map_err(|e| e.in_context(BACKEND, Operation::List))
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Page::from_fetched(keys, range.limit))
        })
        .await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.timed(Operation::BatchGet, async {
            let op = Operation::BatchGet;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            self.validator.check_batch_keys(op, keys)?;
            let rows: Vec<(Vec<u8>, Vec<u8>)> =
                self.read_keys(op, &self.sql.batch_get, keys).await?;
            Ok(in_input_order(keys, by_name(rows), Bytes::from))
        })
        .await
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        self.timed(Operation::BatchGetWithTtl, async {
            let op = Operation::BatchGetWithTtl;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            self.validator.check_batch_keys(op, keys)?;
            let rows: Vec<(Vec<u8>, Vec<u8>, Option<i64>)> = self
                .read_keys(op, &self.sql.batch_get_with_ttl, keys)
                .await?;
            let rows = rows
                .into_iter()
                .map(|(name, value, left)| (name, (value, left)))
                .collect();
            Ok(in_input_order(
                keys,
                by_name(rows),
                |(value, left): (Vec<u8>, Option<i64>)| {
                    (
                        Bytes::from(value),
                        left.map(|ms| Duration::from_millis(ms.unsigned_abs().max(1))),
                    )
                },
            )
            .into_iter()
            .zip(keys)
            .map(|(found, key)| {
                found.map(|(value, ttl)| Entry {
                    key: key.clone(),
                    value,
                    ttl,
                })
            })
            .collect())
        })
        .await
    }

    /// Copies the entries into [`batch_set`](Self::batch_set) (the values
    /// are shared, not copied).
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
            self.write(Operation::BatchSet, &refs, &[]).await
        })
        .await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        self.timed(Operation::BatchDelete, async {
            let op = Operation::BatchDelete;
            if keys.is_empty() {
                return Ok(0);
            }
            self.validator.check_batch_keys(op, keys)?;
            self.check_keys(op, keys)?;
            let sql = self.sql.batch_delete.get(keys.len());
            let mut query = sqlx::query(&sql);
            for key in keys {
                query = query.bind(key.as_str().as_bytes());
            }
            let done = query
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error(op, e))?;
            Ok(done.rows_affected())
        })
        .await
    }

    /// Copies the operations into [`write_batch`](Self::write_batch).
    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        self.write_batch(ops.to_vec()).await
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        self.timed(Operation::WriteBatch, async {
            let ops = self.validator.write_ops(ops)?;
            if ops.is_empty() {
                return Ok(());
            }
            let mut puts = Vec::new();
            let mut deletes = Vec::new();
            for op in &ops {
                match op {
                    WriteOp::Put(entry) => puts.push(entry),
                    WriteOp::Delete(key) => deletes.push(key.as_str()),
                }
            }
            self.write(Operation::WriteBatch, &puts, &deletes).await
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
        self.timed(
            Operation::CompareAndSwap,
            self.swap_value(key, expected, new, options),
        )
        .await
    }

    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        self.timed(Operation::BatchGetVersioned, self.read_versioned(keys))
            .await
    }

    async fn get_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        self.timed(Operation::GetVersioned, self.read_one_versioned(key))
            .await
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
            self.write_if_one(key, condition, new, options),
        )
        .await
    }

    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        self.timed(Operation::Transact, self.transact_rows(txn))
            .await
    }

    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        self.timed(
            Operation::Increment,
            self.increment_row(key, delta, options),
        )
        .await
    }

    async fn health(&self) -> Result<Health> {
        self.timed(Operation::Health, async {
            let started = Instant::now();
            let _: i32 = self
                .read(Operation::Health, || {
                    sqlx::query_scalar("SELECT 1").fetch_one(&self.pool)
                })
                .await?;
            Ok(Health {
                backend: BACKEND,
                latency: started.elapsed(),
            })
        })
        .await
    }
}

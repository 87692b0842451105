//! [`PostgresStore`]: the `KvStore` implementation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::{PeriodicTask, TaskStatus, Validator};
use kv_core::{
    Capabilities, Condition, Entry, Health, Key, KvStore, ListOptions, MAX_KEY_BYTES, Operation,
    Page, Result, SetOptions, Transaction, TxnOutcome, Versioned, WriteOp, prefix_successor_str,
};
use sqlx::{PgPool, Postgres};

use crate::config::{PostgresConfig, QualifiedTable};
use crate::connect::PostgresStoreBuilder;
use crate::error::{BACKEND, map_sqlx_error};
use crate::rows::{Columns, chunks, ttl_millis};
use crate::sql::{Statements, purge};
use kv_core::backend::sql::in_input_order;

/// The largest value: 256 MiB. PostgreSQL's own limit for a `bytea` field
/// and for one bound parameter is 1 GB; this leaves room for the rest of a
/// statement.
pub const MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// The PostgreSQL backend: a sqlx pool and one table.
///
/// Cheap to clone; clones share the pool and the purge task, which stops
/// when the last clone is dropped.
///
/// ```no_run
/// use kv_backend_postgres::PostgresStore;
/// use kv_core::Kv;
///
/// # async fn demo() -> kv_core::Result<()> {
/// let store = PostgresStore::builder()
///     .url("postgres://app:secret@127.0.0.1/app")
///     .table("sessions")
///     .connect()
///     .await?;
/// let kv = Kv::new(store.into_dyn());
/// kv.batch_set([("a", 1), ("b", 2)]).await?; // one INSERT .. SELECT FROM UNNEST
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    pub(crate) sql: Arc<Statements>,
    pub(crate) table: Arc<QualifiedTable>,
    pub(crate) validator: Validator,
    pub(crate) purge_chunk: i64,
    pub(crate) request_timeout: Duration,
    pub(crate) copy_gate: Arc<crate::copy::CopyGate>,
    pub(crate) _purge: Option<Arc<PeriodicTask>>,
}

/// What PostgreSQL promises through this store.
pub(crate) fn capabilities() -> Capabilities {
    Capabilities {
        atomic_batch: true,
        // One statement, or several in one transaction: any size is atomic.
        max_batch_ops: None,
        max_key_bytes: MAX_KEY_BYTES,
        max_value_bytes: MAX_VALUE_BYTES,
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

fn is_reconnectable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_))
}

impl PostgresStore {
    /// A builder with the defaults.
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder::default()
    }

    /// Connects to `url` with the defaults (table `kv_store`).
    ///
    /// # Errors
    ///
    /// As [`PostgresStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().url(url).connect().await
    }

    /// Connects with a deserialized [`PostgresConfig`].
    ///
    /// # Errors
    ///
    /// As [`PostgresStoreBuilder::connect`].
    pub async fn from_config(config: PostgresConfig) -> Result<Self> {
        Self::builder().config(config).connect().await
    }

    /// This store as `Arc<dyn KvStore>`.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// The pool, for queries of your own.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The table, as `schema.table` or `table`.
    pub fn table(&self) -> String {
        self.table.to_string()
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
    /// error (`None` when the purge is off). A purge that keeps failing (a
    /// role without `DELETE` on the table) leaves expired rows in the
    /// table; they stay invisible, but the table grows.
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

    pub(crate) async fn upsert(
        &self,
        exec: &mut sqlx::Transaction<'_, Postgres>,
        entries: &[&Entry],
    ) -> sqlx::Result<()> {
        let c = Columns::of(entries);
        sqlx::query(&self.sql.batch_set)
            .bind(&c.keys)
            .bind(&c.values)
            .bind(&c.ttls)
            .execute(&mut **exec)
            .await?;
        Ok(())
    }

    /// Upserts `puts` and deletes `deletes` atomically: one statement when
    /// they fit, else a transaction of chunks.
    pub(crate) async fn write(
        &self,
        op: Operation,
        puts: &[&Entry],
        deletes: &[&str],
    ) -> Result<()> {
        let map = |e| map_sqlx_error(op, e);
        let chunks = chunks(puts);
        if chunks.len() == 1 {
            let c = Columns::of(&chunks[0]);
            let query = if deletes.is_empty() {
                sqlx::query(&self.sql.batch_set)
                    .bind(&c.keys)
                    .bind(&c.values)
                    .bind(&c.ttls)
            } else {
                sqlx::query(&self.sql.write_batch)
                    .bind(&c.keys)
                    .bind(&c.values)
                    .bind(&c.ttls)
                    .bind(deletes)
            };
            return query.execute(&self.pool).await.map(drop).map_err(map);
        }
        let mut tx = self.pool.begin().await.map_err(map)?;
        if !deletes.is_empty() {
            sqlx::query(&self.sql.delete_all)
                .bind(deletes)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        for chunk in &chunks {
            self.upsert(&mut tx, chunk).await.map_err(map)?;
        }
        tx.commit().await.map_err(map)
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.table.to_string())
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for PostgresStore {
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
                        .bind(key.as_str())
                        .fetch_optional(&self.pool)
                })
                .await?;
            Ok(row.map(Bytes::from))
        })
        .await
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        self.timed(Operation::Set, async {
            let ttl = self.validator.set(key, &value, options)?;
            sqlx::query(&self.sql.set)
                .bind(key.as_str())
                .bind(&value[..])
                .bind(ttl_millis(ttl))
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(|e| map_sqlx_error(Operation::Set, e))
        })
        .await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Delete, async {
            let live: i64 = sqlx::query_scalar(&self.sql.delete)
                .bind(key.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error(Operation::Delete, e))?;
            Ok(live > 0)
        })
        .await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Exists, async {
            self.read(Operation::Exists, || {
                sqlx::query_scalar(&self.sql.exists)
                    .bind(key.as_str())
                    .fetch_one(&self.pool)
            })
            .await
        })
        .await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.timed(Operation::List, async {
            let range = self.validator.list(prefix, &options)?;
            if range.exhausted {
                return Ok(Page::default());
            }
            let after = range.start_after.as_ref().map_or("", Key::as_str);
            let end = prefix_successor_str(&range.prefix);
            let limit = i64::try_from(range.limit.saturating_add(1)).unwrap_or(i64::MAX);
            let rows: Vec<String> = self
                .read(Operation::List, || {
                    sqlx::query_scalar(&self.sql.list)
                        .bind(range.prefix.as_str())
                        .bind(after)
                        .bind(end.as_deref())
                        .bind(limit)
                        .fetch_all(&self.pool)
                })
                .await?;
            let keys = rows
                .into_iter()
                .map(|k| Key::new(k).map_err(|e| e.in_context(BACKEND, Operation::List)))
                .collect::<Result<Vec<_>>>()?;
            Ok(Page::from_fetched(keys, range.limit))
        })
        .await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.timed(Operation::BatchGet, async {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            self.validator.check_batch_keys(Operation::BatchGet, keys)?;
            let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
            let rows: Vec<(String, Vec<u8>)> = self
                .read(Operation::BatchGet, || {
                    sqlx::query_as(&self.sql.batch_get)
                        .bind(&names)
                        .fetch_all(&self.pool)
                })
                .await?;
            Ok(in_input_order(keys, rows, Bytes::from))
        })
        .await
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        self.timed(Operation::BatchGetWithTtl, async {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let op = Operation::BatchGetWithTtl;
            self.validator.check_batch_keys(op, keys)?;
            let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
            let rows: Vec<(String, Vec<u8>, Option<i64>)> = self
                .read(op, || {
                    sqlx::query_as(&self.sql.batch_get_with_ttl)
                        .bind(&names)
                        .fetch_all(&self.pool)
                })
                .await?;
            let rows = rows
                .into_iter()
                .map(|(name, value, left)| (name, (value, left)))
                .collect();
            Ok(
                in_input_order(keys, rows, |(value, left): (Vec<u8>, Option<i64>)| {
                    (
                        Bytes::from(value),
                        left.map(|ms| Duration::from_millis(ms.unsigned_abs().max(1))),
                    )
                })
                .into_iter()
                .zip(keys)
                .map(|(found, key)| {
                    found.map(|(value, ttl)| Entry {
                        key: key.clone(),
                        value,
                        ttl,
                    })
                })
                .collect(),
            )
        })
        .await
    }

    /// Copies the entries into [`batch_set`](Self::batch_set): the UNNEST arrays are built from validated owned entries.
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
            // A large batch of new keys goes in by COPY (see `copy.rs`).
            let copied = self
                .try_copy(&refs)
                .await
                .map_err(|e| map_sqlx_error(Operation::BatchSet, e))?;
            if copied {
                return Ok(());
            }
            self.write(Operation::BatchSet, &refs, &[]).await
        })
        .await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        self.timed(Operation::BatchDelete, async {
            if keys.is_empty() {
                return Ok(0);
            }
            self.validator
                .check_batch_keys(Operation::BatchDelete, keys)?;
            let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
            let live: i64 = sqlx::query_scalar(&self.sql.batch_delete)
                .bind(&names)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error(Operation::BatchDelete, e))?;
            Ok(live.unsigned_abs())
        })
        .await
    }

    /// Copies the operations into [`write_batch`](Self::write_batch): the UNNEST arrays are built from validated owned entries.
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
            if puts.is_empty() {
                return sqlx::query(&self.sql.delete_all)
                    .bind(&deletes)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err(|e| map_sqlx_error(Operation::WriteBatch, e));
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
        self.timed(Operation::CompareAndSwap, async {
            let ttl = ttl_millis(self.validator.cas(
                key,
                expected.as_deref(),
                new.as_deref(),
                options,
            )?);
            let k = key.as_str();
            let result = match (&expected, &new) {
                (None, Some(new)) => {
                    sqlx::query(&self.sql.cas_insert)
                        .bind(k)
                        .bind(&new[..])
                        .bind(ttl)
                        .execute(&self.pool)
                        .await
                }
                (Some(old), Some(new)) => {
                    sqlx::query(&self.sql.cas_update)
                        .bind(k)
                        .bind(&new[..])
                        .bind(ttl)
                        .bind(&old[..])
                        .execute(&self.pool)
                        .await
                }
                (Some(old), None) => {
                    sqlx::query(&self.sql.cas_delete)
                        .bind(k)
                        .bind(&old[..])
                        .execute(&self.pool)
                        .await
                }
                (None, None) => {
                    return sqlx::query_scalar(&self.sql.cas_absent)
                        .bind(k)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| map_sqlx_error(Operation::CompareAndSwap, e));
                }
            };
            let rows = result
                .map_err(|e| map_sqlx_error(Operation::CompareAndSwap, e))?
                .rows_affected();
            Ok(rows == 1)
        })
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

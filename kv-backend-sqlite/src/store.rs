//! [`SqliteStore`]: the `KvStore` implementation.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::sql::in_input_order;
use kv_core::backend::{PeriodicTask, TaskStatus, Validator};
use kv_core::{
    Capabilities, Condition, Entry, Health, Key, KvStore, ListOptions, MAX_KEY_BYTES, Operation,
    Page, Result, SetOptions, Transaction, TxnOutcome, Versioned, WriteOp, prefix_successor_str,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{SqliteConnection, SqlitePool};

use crate::error::{BACKEND, map_sqlx_error};
use crate::open::{SqliteStoreBuilder, now};
use crate::sql::{Statements, purge, upsert_sizes};
use crate::versions::VersionBlock;

/// The largest value: 256 MiB. SQLite's own limit for a string or blob is
/// 1,000,000,000 bytes (`SQLITE_MAX_LENGTH`); this leaves room for the rest
/// of a statement.
pub const MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// The SQLite backend: one file (or an in-memory database), one writer
/// connection and a pool of readers beside it.
///
/// Cheap to clone; clones share the connections and the purge task, which
/// stops when the last clone is dropped.
///
/// ```
/// use kv_backend_sqlite::SqliteStore;
/// use kv_core::Kv;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(dir.path().join("app.db")).await?;
/// let kv = Kv::new(store.into_dyn());
/// kv.batch_set([("a", 1), ("b", 2)]).await?; // one multi-row upsert
/// assert_eq!(kv.get::<i32>("b").await?, Some(2));
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) writer: SqlitePool,
    pub(crate) readers: SqlitePool,
    pub(crate) sql: Arc<Statements>,
    pub(crate) table: Arc<str>,
    pub(crate) path: Option<PathBuf>,
    pub(crate) options: SqliteConnectOptions,
    pub(crate) versions: Arc<VersionBlock>,
    pub(crate) validator: Validator,
    pub(crate) purge_chunk: i64,
    pub(crate) request_timeout: Duration,
    pub(crate) _purge: Option<Arc<PeriodicTask>>,
}

/// What SQLite promises through this store.
pub(crate) fn capabilities(memory: bool) -> Capabilities {
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
        persistent: !memory,
    }
}

/// The expiry of a TTL written at `now`, in milliseconds since the epoch.
pub(crate) fn expiry(ttl: Option<Duration>, now: i64) -> Option<i64> {
    ttl.map(|t| {
        let ms = i64::try_from(t.as_millis()).unwrap_or(i64::MAX);
        now.saturating_add(ms)
    })
}

/// Keys as the JSON array parameter the key-list statements read with
/// `json_each`.
pub(crate) fn keys_json<'a>(keys: impl IntoIterator<Item = &'a Key>) -> String {
    let names: Vec<&str> = keys.into_iter().map(Key::as_str).collect();
    // A list of strings always serializes.
    serde_json::to_string(&names).unwrap_or_default()
}

impl SqliteStore {
    /// A builder with the defaults.
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder::default()
    }

    /// Opens (or creates) the database file at `path` with the defaults.
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder().path(path.as_ref()).open().await
    }

    /// Opens a private in-memory database.
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::open`].
    pub async fn memory() -> Result<Self> {
        Self::builder().memory().open().await
    }

    /// Opens with a deserialized [`SqliteConfig`](crate::SqliteConfig).
    ///
    /// ```
    /// use kv_backend_sqlite::{SqliteConfig, SqliteStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let config: SqliteConfig = serde_json::from_str(r#"{"memory": true, "table": "sessions"}"#).unwrap();
    /// let store = SqliteStore::from_config(config).await?;
    /// assert_eq!(store.table(), "sessions");
    /// # Ok::<(), kv_core::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::open`].
    pub async fn from_config(config: crate::SqliteConfig) -> Result<Self> {
        Self::builder().config(config).open().await
    }

    /// Opens the database a `sqlite://` URL names
    /// ([`SqliteConfig::from_url`](crate::SqliteConfig::from_url)).
    ///
    /// # Errors
    ///
    /// `Config` for a bad URL; else as [`SqliteStoreBuilder::open`].
    pub async fn open_url(url: &str) -> Result<Self> {
        let config = crate::SqliteConfig::from_url(url)?;
        Self::builder().config(config).open().await
    }

    /// This store as `Arc<dyn KvStore>`.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// The writer pool (one connection), for statements of your own that
    /// write; a write here waits for the store's writes and they for it.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The readers' pool, for queries of your own.
    pub fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    /// The options the store's connections were opened with (WAL,
    /// `synchronous`, busy timeout, statement cache), for connections of
    /// your own on the same file. An in-memory database cannot be shared:
    /// its options open a new, empty one.
    pub fn connect_options(&self) -> SqliteConnectOptions {
        self.options.clone()
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The database file; `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Deletes expired rows now, in chunks (the background task does this
    /// every purge interval); returns how many were deleted.
    ///
    /// # Errors
    ///
    /// SQLite's errors.
    pub async fn purge_expired(&self) -> Result<u64> {
        purge(&self.writer, &self.sql, self.purge_chunk, now()).await
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

    /// Runs a read on the readers' pool.
    pub(crate) async fn read<T, F, Fut>(&self, op: Operation, run: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = sqlx::Result<T>>,
    {
        run().await.map_err(|e| map_sqlx_error(op, e))
    }

    /// Upserts `puts` (at `version`) and deletes `deletes` on a connection
    /// inside a transaction.
    pub(crate) async fn write_in(
        &self,
        conn: &mut SqliteConnection,
        version: i64,
        now: i64,
        puts: &[&Entry],
        deletes: &[&Key],
    ) -> sqlx::Result<()> {
        if !deletes.is_empty() {
            sqlx::query(&self.sql.delete_all)
                .bind(keys_json(deletes.iter().copied()))
                .execute(&mut *conn)
                .await?;
        }
        let mut rest = puts;
        for size in upsert_sizes(puts.len()) {
            // The sizes add up to `puts.len()` (tested in sql.rs), so every
            // split is within what is left.
            let (rows, after) = rest.split_at(size);
            rest = after;
            let mut query = sqlx::query(self.sql.upsert(size)).bind(version);
            for entry in rows {
                query = query
                    .bind(entry.key.as_str())
                    .bind(&entry.value[..])
                    .bind(expiry(entry.ttl, now));
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Upserts `puts` and deletes `deletes` atomically: one statement when
    /// that is all, else one `BEGIN IMMEDIATE` transaction.
    pub(crate) async fn write(
        &self,
        op: Operation,
        puts: &[&Entry],
        deletes: &[&Key],
    ) -> Result<()> {
        let map = |e| map_sqlx_error(op, e);
        let version = if puts.is_empty() {
            0
        } else {
            self.next_version(op).await?
        };
        let mut conn = self.writer.acquire().await.map_err(map)?;
        let single = deletes.is_empty() && upsert_sizes(puts.len()).nth(1).is_none();
        let single = single || (puts.is_empty() && !deletes.is_empty());
        if single {
            return self
                .write_in(&mut conn, version, now(), puts, deletes)
                .await
                .map_err(map);
        }
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(map)?;
        self.write_in(&mut tx, version, now(), puts, deletes)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for SqliteStore {
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
                        .bind(now())
                        .fetch_optional(&self.readers)
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
                .bind(key.as_str())
                .bind(&value[..])
                .bind(expiry(ttl, now()))
                .bind(version)
                .execute(&self.writer)
                .await
                .map(drop)
                .map_err(|e| map_sqlx_error(op, e))
        })
        .await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Delete, async {
            let live: Option<bool> = sqlx::query_scalar(&self.sql.delete)
                .bind(key.as_str())
                .bind(now())
                .fetch_optional(&self.writer)
                .await
                .map_err(|e| map_sqlx_error(Operation::Delete, e))?;
            Ok(live == Some(true))
        })
        .await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Exists, async {
            self.read(Operation::Exists, || {
                sqlx::query_scalar(&self.sql.exists)
                    .bind(key.as_str())
                    .bind(now())
                    .fetch_one(&self.readers)
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
            let (after, lower) = match &range.start_after {
                Some(cursor) => (true, cursor.as_str()),
                None => (false, range.prefix.as_str()),
            };
            let end = prefix_successor_str(&range.prefix);
            let limit = i64::try_from(range.limit.saturating_add(1)).unwrap_or(i64::MAX);
            let rows: Vec<String> = self
                .read(Operation::List, || {
                    sqlx::query_scalar(self.sql.list(after, end.is_some()))
                        .bind(lower)
                        .bind(now())
                        .bind(limit)
                        .bind(end.as_deref())
                        .fetch_all(&self.readers)
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
            let json = keys_json(keys);
            let rows: Vec<(String, Vec<u8>)> = self
                .read(Operation::BatchGet, || {
                    sqlx::query_as(&self.sql.batch_get)
                        .bind(&json)
                        .bind(now())
                        .fetch_all(&self.readers)
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
            let json = keys_json(keys);
            let now = now();
            let rows: Vec<(String, Vec<u8>, Option<i64>)> = self
                .read(op, || {
                    sqlx::query_as(&self.sql.batch_get_with_ttl)
                        .bind(&json)
                        .bind(now)
                        .fetch_all(&self.readers)
                })
                .await?;
            let rows = rows
                .into_iter()
                .map(|(name, value, at)| (name, (value, at)))
                .collect();
            let found = in_input_order(keys, rows, |(value, at): (Vec<u8>, Option<i64>)| {
                let ttl = at
                    .map(|at| Duration::from_millis(at.saturating_sub(now).max(1).unsigned_abs()));
                (Bytes::from(value), ttl)
            });
            Ok(found
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

    /// Validates borrowed entries and binds their values without copying.
    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        self.timed(Operation::BatchSet, async {
            let checked = self.validator.entries_borrowed(entries)?;
            if checked.is_empty() {
                return Ok(());
            }
            let owned: Vec<Entry> = checked.iter().map(|e| e.to_entry()).collect();
            let refs: Vec<&Entry> = owned.iter().collect();
            self.write(Operation::BatchSet, &refs, &[]).await
        })
        .await
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
            if keys.is_empty() {
                return Ok(0);
            }
            self.validator
                .check_batch_keys(Operation::BatchDelete, keys)?;
            let live: Vec<bool> = sqlx::query_scalar(&self.sql.batch_delete)
                .bind(keys_json(keys))
                .bind(now())
                .fetch_all(&self.writer)
                .await
                .map_err(|e| map_sqlx_error(Operation::BatchDelete, e))?;
            Ok(live.into_iter().filter(|live| *live).count() as u64)
        })
        .await
    }

    /// Validates borrowed operations; the values are shared, not copied.
    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        self.timed(Operation::WriteBatch, async {
            let checked = self.validator.write_ops_borrowed(ops)?;
            if checked.is_empty() {
                return Ok(());
            }
            let (puts, deletes) = kv_core::backend::split_writes(&checked);
            let puts: Vec<&Entry> = puts.iter().collect();
            self.write(Operation::WriteBatch, &puts, &deletes).await
        })
        .await
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
                    WriteOp::Delete(key) => deletes.push(key),
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
        self.timed(Operation::CompareAndSwap, async {
            let op = Operation::CompareAndSwap;
            let ttl = self
                .validator
                .cas(key, expected.as_deref(), new.as_deref(), options)?;
            let map = |e| map_sqlx_error(op, e);
            let k = key.as_str();
            let sql = &self.sql;
            let result = match (&expected, &new) {
                (None, None) => {
                    return sqlx::query_scalar(&sql.absent)
                        .bind(k)
                        .bind(now())
                        .fetch_one(&self.writer)
                        .await
                        .map_err(map);
                }
                (Some(old), None) => {
                    sqlx::query(&sql.delete_value)
                        .bind(k)
                        .bind(now())
                        .bind(&old[..])
                        .execute(&self.writer)
                        .await
                }
                (old, Some(new)) => {
                    let version = self.next_version(op).await?;
                    let now = now();
                    let statement = if old.is_some() {
                        &sql.update_value
                    } else {
                        &sql.insert_absent
                    };
                    sqlx::query(statement)
                        .bind(k)
                        .bind(now)
                        .bind(&new[..])
                        .bind(expiry(ttl, now))
                        .bind(version)
                        .bind(old.as_deref())
                        .execute(&self.writer)
                        .await
                }
            };
            Ok(result.map_err(map)?.rows_affected() == 1)
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
                    sqlx::query_scalar("SELECT 1").fetch_one(&self.readers)
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

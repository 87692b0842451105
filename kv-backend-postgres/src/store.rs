//! [`PostgresStore`]: the `KvStore` implementation.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::backend::{PeriodicTask, TaskStatus, Validator, connect_within};
use kv_core::{
    Capabilities, Entry, Health, Key, KvStore, ListOptions, MAX_KEY_BYTES, Operation, Page, Result,
    SetOptions, WriteOp, prefix_successor_str,
};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres, Transaction};

use crate::config::{PostgresConfig, QualifiedTable};
use crate::error::{BACKEND, config_error, map_sqlx_error};
use crate::sql::{self, Statements};

/// The largest value: 256 MiB. PostgreSQL's own limit for a `bytea` field
/// and for one bound parameter is 1 GB; this leaves room for the rest of a
/// statement.
pub const MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// The most value bytes one upsert statement carries; a larger batch is
/// split into several statements inside one transaction.
const STATEMENT_BYTES: usize = 64 * 1024 * 1024;

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
    pool: PgPool,
    sql: Arc<Statements>,
    table: Arc<QualifiedTable>,
    validator: Validator,
    purge_chunk: i64,
    request_timeout: Duration,
    _purge: Option<Arc<PeriodicTask>>,
}

/// Builds a [`PostgresStore`] from a URL or an existing pool.
#[derive(Debug, Default)]
pub struct PostgresStoreBuilder {
    config: PostgresConfig,
    pool: Option<PgPool>,
}

impl PostgresStoreBuilder {
    /// `postgres://[user[:password]@]host[:port]/database[?sslmode=...]`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = url.into();
        self
    }

    /// Uses an existing pool instead of a URL (its size and timeouts stay
    /// as they are).
    pub fn pool(mut self, pool: PgPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The table (default `kv_store`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.config.table = table.into();
        self
    }

    /// The schema holding the table (default: the `search_path`'s).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.config.schema = Some(schema.into());
        self
    }

    /// The pool's size (default 10).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.config.max_connections = max;
        self
    }

    /// How long to wait for a pooled connection (default 30 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.config.acquire_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// How long `connect` waits for its first connection (default 5 s): a
    /// refused connection fails at once with `Unavailable`, a server that
    /// accepts and never answers after this long.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// The longest one call may take, waiting for a pooled connection
    /// included (default 30 s); then it fails with `Timeout`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Whether to create the table when missing (default `true`).
    pub fn create_table(mut self, create: bool) -> Self {
        self.config.create_table = create;
        self
    }

    /// How often expired rows are deleted (default 60 s); `None` turns the
    /// background purge off.
    pub fn purge_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.purge_interval_ms =
            interval.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Starts from a deserialized config.
    pub fn config(mut self, config: PostgresConfig) -> Self {
        self.config = config;
        self
    }

    /// Connects, creates and checks the table, and starts the purge task.
    ///
    /// # Errors
    ///
    /// `Config` for a bad URL, table or schema name, or a table of another
    /// shape; `Unavailable`, `Timeout`, `PermissionDenied` when the server
    /// cannot be reached or refuses.
    pub async fn connect(self) -> Result<PostgresStore> {
        let config = self.config;
        if config.purge_interval_ms == Some(0) {
            return Err(config_error(
                "purge_interval_ms must be at least 1 (null turns the purge off)",
            ));
        }
        let table = config.qualified_table()?;
        let pool = match self.pool {
            Some(pool) => pool,
            None => {
                let options = connect_options(&config)?;
                // One connection first, within the connect timeout: the
                // pool would retry a refused connection until its acquire
                // timeout.
                let first = async {
                    PgConnection::connect_with(&options)
                        .await
                        .map_err(|e| map_sqlx_error(Operation::Connect, e))
                };
                let first = connect_within(BACKEND, config.connect_timeout(), first).await?;
                let _ = first.close().await;
                PgPoolOptions::new()
                    .max_connections(config.max_connections.max(1))
                    .acquire_timeout(config.acquire_timeout())
                    .connect_lazy_with(options)
            }
        };
        if config.create_table {
            sql::create_table(&pool, &table).await?;
        }
        sql::check_table(&pool, &table).await?;
        let sql = Arc::new(Statements::new(&table));
        let purge_chunk = i64::from(config.purge_chunk.max(1));
        let purge = config.purge_interval().map(|every| {
            let (pool, sql) = (pool.clone(), sql.clone());
            Arc::new(PeriodicTask::spawn("postgres purge", every, move || {
                let (pool, sql) = (pool.clone(), sql.clone());
                // A failed purge hides nothing (reads filter on expiry): it
                // is counted in purge_status(), logged, and tried again at
                // the next tick.
                async move { purge(&pool, &sql, purge_chunk).await.map(drop) }
            }))
        });
        Ok(PostgresStore {
            pool,
            sql,
            table: Arc::new(table),
            validator: Validator::new(BACKEND, capabilities()),
            purge_chunk,
            request_timeout: config.request_timeout(),
            _purge: purge,
        })
    }
}

fn connect_options(config: &PostgresConfig) -> Result<PgConnectOptions> {
    let url = kv_core::lowercase_scheme(&config.url);
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let options = scheme_ok
        .then(|| PgConnectOptions::from_str(&url).ok())
        .flatten()
        .ok_or_else(|| {
            config_error(
                "invalid PostgreSQL URL: expected \
                 postgres://[user[:password]@]host[:port]/database[?sslmode=...]",
            )
        })?;
    Ok(options.application_name(&config.application_name))
}

/// Deletes expired rows in chunks until a chunk comes back short.
async fn purge(pool: &PgPool, sql: &Statements, chunk: i64) -> Result<u64> {
    let mut deleted = 0;
    loop {
        let done = sqlx::query(&sql.purge)
            .bind(chunk)
            .execute(pool)
            .await
            .map_err(|e| map_sqlx_error(Operation::Maintenance, e))?
            .rows_affected();
        deleted += done;
        if done < chunk.unsigned_abs() {
            return Ok(deleted);
        }
    }
}

/// What PostgreSQL promises through this store.
fn capabilities() -> Capabilities {
    Capabilities {
        atomic_batch: true,
        // One statement, or several in one transaction: any size is atomic.
        max_batch_ops: None,
        max_key_bytes: MAX_KEY_BYTES,
        max_value_bytes: MAX_VALUE_BYTES,
        ttl: true,
        cas: true,
        ordered_list: true,
        snapshot_batch_get: true,
        persistent: true,
    }
}

/// A validated TTL in milliseconds (at most ten years, so it fits).
fn ttl_millis(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

/// The columns of an upsert, as arrays.
struct Columns<'a> {
    keys: Vec<&'a str>,
    values: Vec<&'a [u8]>,
    ttls: Vec<Option<i64>>,
}

impl<'a> Columns<'a> {
    fn of(entries: &[&'a Entry]) -> Self {
        Self {
            keys: entries.iter().map(|e| e.key.as_str()).collect(),
            values: entries.iter().map(|e| &e.value[..]).collect(),
            ttls: entries.iter().map(|e| ttl_millis(e.ttl)).collect(),
        }
    }
}

/// Splits entries into runs of at most [`STATEMENT_BYTES`] of values.
fn chunks<'a>(entries: &[&'a Entry]) -> Vec<Vec<&'a Entry>> {
    let mut out: Vec<Vec<&Entry>> = vec![Vec::new()];
    let mut bytes = 0;
    for entry in entries {
        if bytes + entry.value.len() > STATEMENT_BYTES && out.last().is_some_and(|c| !c.is_empty())
        {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += entry.value.len();
        if let Some(chunk) = out.last_mut() {
            chunk.push(entry);
        }
    }
    out
}

/// The answer to `batch_get(keys)` from the rows found, one per distinct
/// key in any order: each row, converted by `into`, moves into the answer
/// at its key's first place; a repeated key gets a clone of it (for
/// `Bytes`, a reference count, no copy).
fn in_input_order<R, T: Clone>(
    keys: &[Key],
    rows: Vec<(String, R)>,
    mut into: impl FnMut(R) -> T,
) -> Vec<Option<T>> {
    let (names, values): (Vec<String>, Vec<R>) = rows.into_iter().unzip();
    let row_of: HashMap<&str, usize> = names.iter().map(String::as_str).zip(0..).collect();
    let mut unanswered: Vec<Option<R>> = values.into_iter().map(Some).collect();
    // Where each row's value went in `out`, once it has.
    let mut answered_at = vec![0; unanswered.len()];
    let mut out: Vec<Option<T>> = Vec::with_capacity(keys.len());
    for key in keys {
        let value = row_of.get(key.as_str()).and_then(|&row| {
            match unanswered.get_mut(row).and_then(Option::take) {
                Some(value) => {
                    answered_at[row] = out.len();
                    Some(into(value))
                }
                None => out.get(answered_at[row]).cloned().flatten(),
            }
        });
        out.push(value);
    }
    out
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
    async fn read<T, F, Fut>(&self, op: Operation, run: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = sqlx::Result<T>>,
    {
        match run().await {
            Err(e) if is_reconnectable(&e) => run().await,
            other => other,
        }
        .map_err(|e| map_sqlx_error(op, e))
    }

    async fn upsert(
        &self,
        exec: &mut Transaction<'_, Postgres>,
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
    async fn write(&self, op: Operation, puts: &[&Entry], deletes: &[&str]) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_case_insensitive() {
        for url in [
            "postgres://u:p@h:5432/db",
            "POSTGRES://u:p@h:5432/db",
            "PostgreSQL://u@h/db",
        ] {
            let config = PostgresConfig {
                url: url.to_owned(),
                ..PostgresConfig::default()
            };
            let options = connect_options(&config).unwrap();
            assert_eq!(options.get_host(), "h", "{url}");
            assert_eq!(options.get_database(), Some("db"), "{url}");
        }
    }

    #[test]
    fn in_input_order_answers_missing_and_repeated_keys() {
        let keys: Vec<Key> = ["a", "d", "b", "a", "c", "b", "d"]
            .into_iter()
            .map(|k| Key::new(k).unwrap())
            .collect();
        let rows = vec![
            ("c".to_owned(), b"3".to_vec()),
            ("a".to_owned(), b"1".to_vec()),
            ("b".to_owned(), b"2".to_vec()),
        ];
        let answer = in_input_order(&keys, rows, Bytes::from);
        let got: Vec<Option<&[u8]>> = answer.iter().map(|v| v.as_deref()).collect();
        let want: Vec<Option<&[u8]>> = vec![
            Some(b"1"),
            None,
            Some(b"2"),
            Some(b"1"),
            Some(b"3"),
            Some(b"2"),
            None,
        ];
        assert_eq!(got, want);
    }
}

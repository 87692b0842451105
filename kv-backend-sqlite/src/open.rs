//! [`SqliteStoreBuilder`]: the options, the file, the two pools, the
//! tables and the purge task.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kv_core::backend::{PeriodicTask, Validator, stamp};
use kv_core::{Operation, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::SqliteConfig;
use crate::error::{config_error, map_sqlx_error};
use crate::sql::{self, Statements, purge};
use crate::store::{SqliteStore, capabilities};
use crate::versions::VersionBlock;

/// How many prepared statements each connection keeps: every statement
/// of the store, with room for the application's own.
const STATEMENT_CACHE: usize = 128;

/// Builds a [`SqliteStore`].
#[derive(Debug, Default)]
pub struct SqliteStoreBuilder {
    config: SqliteConfig,
}

impl SqliteStoreBuilder {
    /// The database file (created when missing, unless
    /// [`create_if_missing`](Self::create_if_missing) is off).
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.path = path.into();
        self.config.memory = false;
        self
    }

    /// A private in-memory database instead of a file.
    pub fn memory(mut self) -> Self {
        self.config.memory = true;
        self
    }

    /// The table (default `kv_store`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.config.table = table.into();
        self
    }

    /// Whether to create the file when missing (default `true`).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.config.create_if_missing = create;
        self
    }

    /// Whether to create the tables when missing (default `true`).
    pub fn create_table(mut self, create: bool) -> Self {
        self.config.create_table = create;
        self
    }

    /// `synchronous = FULL` (default `true`, survives power loss) or
    /// `NORMAL` (`false`: survives a process crash, faster).
    pub fn sync_writes(mut self, sync: bool) -> Self {
        self.config.sync_writes = sync;
        self
    }

    /// How many read connections run beside the writer (default 4).
    pub fn readers(mut self, readers: u32) -> Self {
        self.config.readers = readers;
        self
    }

    /// How long a write waits for another process's write lock (default
    /// 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.config.busy_timeout_ms = kv_core::backend::millis(timeout);
        self
    }

    /// The longest one call may take (default 30 s); then `Timeout`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout_ms = kv_core::backend::millis(timeout);
        self
    }

    /// How often expired rows are deleted (default 60 s); `None` turns the
    /// background purge off.
    pub fn purge_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.purge_interval_ms = interval.map(kv_core::backend::millis);
        self
    }

    /// Starts from a deserialized or parsed config.
    pub fn config(mut self, config: SqliteConfig) -> Self {
        self.config = config;
        self
    }

    /// Opens the file (or the in-memory database), creates and checks the
    /// tables, and starts the purge task.
    ///
    /// # Errors
    ///
    /// `Config` for a bad table name, a file that is not a database, a
    /// missing file with `create_if_missing` off, or a table of another
    /// shape; `PermissionDenied` for a file this process may not write;
    /// `Timeout` when another process holds the write lock past the busy
    /// timeout.
    pub async fn open(self) -> Result<SqliteStore> {
        let config = self.config;
        if config.purge_interval_ms == Some(0) {
            return Err(config_error(
                "purge_interval_ms must be at least 1 (null turns the purge off)",
            ));
        }
        let table = config.table_name()?.to_owned();
        let map = |e| map_sqlx_error(Operation::Connect, e);
        let options = connect_options(&config);
        // The writer: one connection that never closes (for an in-memory
        // database it is the database), so writers queue in the pool
        // instead of failing with SQLITE_BUSY.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(config.request_timeout())
            .connect_with(options.clone())
            .await
            .map_err(map)?;
        let readers = if config.memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(config.readers.max(1))
                .acquire_timeout(config.request_timeout())
                .connect_lazy_with(options.create_if_missing(false))
        };
        if config.create_table {
            sql::create_tables(&writer, &table).await?;
        }
        sql::check_tables(&writer, &table).await?;
        let sql = Arc::new(Statements::new(&table));
        let purge_chunk = i64::from(config.purge_chunk.max(1));
        let purge = config.purge_interval().map(|every| {
            let (pool, sql) = (writer.clone(), sql.clone());
            Arc::new(PeriodicTask::spawn("sqlite purge", every, move || {
                let (pool, sql) = (pool.clone(), sql.clone());
                // A failed purge hides nothing (reads filter on expiry): it
                // is counted in purge_status(), logged, and tried again.
                async move { purge(&pool, &sql, purge_chunk, now()).await.map(drop) }
            }))
        });
        Ok(SqliteStore {
            writer,
            readers,
            sql,
            table: Arc::from(table),
            path: (!config.memory).then(|| config.path.clone()),
            options: connect_options(&config),
            versions: Arc::new(VersionBlock::default()),
            validator: Validator::new(crate::error::BACKEND, capabilities(config.memory)),
            purge_chunk,
            request_timeout: config.request_timeout(),
            _purge: purge,
        })
    }
}

/// Milliseconds since the Unix epoch, as SQLite stores expiries.
pub(crate) fn now() -> i64 {
    i64::try_from(stamp::now_millis()).unwrap_or(i64::MAX)
}

fn connect_options(config: &SqliteConfig) -> SqliteConnectOptions {
    let options = if config.memory {
        SqliteConnectOptions::new().in_memory(true)
    } else {
        SqliteConnectOptions::new()
            .filename(&config.path)
            .create_if_missing(config.create_if_missing)
            .journal_mode(SqliteJournalMode::Wal)
    };
    options
        .synchronous(if config.sync_writes {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .busy_timeout(config.busy_timeout())
        .foreign_keys(false)
        .statement_cache_capacity(STATEMENT_CACHE)
}

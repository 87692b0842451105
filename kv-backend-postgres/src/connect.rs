//! [`PostgresStoreBuilder`]: the options, the first connection, the
//! table check and the purge task.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use kv_core::backend::{PeriodicTask, Validator, connect_within};
use kv_core::{Operation, Result};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::config::PostgresConfig;
use crate::error::{BACKEND, config_error, map_sqlx_error};
use crate::sql::{self, Statements, purge};
use crate::store::{PostgresStore, capabilities};

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

    /// Whether a `batch_set` of 500 entries or more is first tried as one
    /// binary `COPY` (default `true`); see [`PostgresConfig::copy_batches`].
    pub fn copy_batches(mut self, enabled: bool) -> Self {
        self.config.copy_batches = enabled;
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
        sql::check_table(&pool, &table, config.create_table).await?;
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
            copy_gate: Arc::new(crate::copy::CopyGate::new(config.copy_batches)),
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
}

//! [`MysqlStoreBuilder`]: the options, the first connection, the tables'
//! check, the server's packet limit and the purge task.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use kv_core::backend::{PeriodicTask, Validator, connect_within};
use kv_core::{Operation, Result};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPoolOptions};
use sqlx::{Connection, Executor};

use crate::config::MysqlConfig;
use crate::error::{BACKEND, config_error, map_sqlx_error};
use crate::sql::{self, Statements, purge};
use crate::store::{MysqlStore, capabilities};
use crate::versions::VersionBlock;

/// Every connection of the store runs its transactions at `REPEATABLE
/// READ` (InnoDB's default, set anyway since a server may default to
/// another): a transaction's `SELECT ... FOR UPDATE` then locks the gaps of
/// checked keys that have no row, so no other writer can create them before
/// it commits.
const SESSION_SETUP: &str = "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ";

/// Builds a [`MysqlStore`] from a URL or a [`MysqlConfig`].
#[derive(Debug, Default)]
pub struct MysqlStoreBuilder {
    config: MysqlConfig,
}

impl MysqlStoreBuilder {
    /// `mysql://[user[:password]@]host[:port]/database[?ssl-mode=...]` (also
    /// `mariadb://`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = url.into();
        self
    }

    /// The table (default `kv_store`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.config.table = table.into();
        self
    }

    /// The pool's size (default 10).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.config.max_connections = max;
        self
    }

    /// How long to wait for a pooled connection (default 30 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.config.acquire_timeout_ms = millis(timeout);
        self
    }

    /// How long `connect` waits for its first connection (default 5 s): a
    /// refused connection fails at once with `Unavailable`, a server that
    /// accepts and never answers after this long.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout_ms = millis(timeout);
        self
    }

    /// The longest one call may take, waiting for a pooled connection
    /// included (default 30 s); then it fails with `Timeout`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout_ms = millis(timeout);
        self
    }

    /// Whether to create the tables when missing (default `true`).
    pub fn create_table(mut self, create: bool) -> Self {
        self.config.create_table = create;
        self
    }

    /// How often expired rows are deleted (default 60 s); `None` turns the
    /// background purge off.
    pub fn purge_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.purge_interval_ms = interval.map(millis);
        self
    }

    /// Starts from a deserialized config.
    pub fn config(mut self, config: MysqlConfig) -> Self {
        self.config = config;
        self
    }

    /// Connects, creates and checks the tables, reads the server's
    /// `max_allowed_packet`, and starts the purge task.
    ///
    /// # Errors
    ///
    /// `Config` for a bad URL or table name, or a table of another shape;
    /// `Unavailable`, `Timeout`, `PermissionDenied` when the server cannot
    /// be reached or refuses.
    pub async fn connect(self) -> Result<MysqlStore> {
        let config = self.config;
        if config.purge_interval_ms == Some(0) {
            return Err(config_error(
                "purge_interval_ms must be at least 1 (null turns the purge off)",
            ));
        }
        let table = config.checked_table()?;
        let options = connect_options(&config)?;
        // One connection first, within the connect timeout: the pool would
        // retry a refused connection until its acquire timeout.
        let first = async {
            MySqlConnection::connect_with(&options)
                .await
                .map_err(|e| map_sqlx_error(Operation::Connect, e))
        };
        let first = connect_within(BACKEND, config.connect_timeout(), first).await?;
        let _ = first.close().await;
        let pool = MySqlPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout())
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SESSION_SETUP).await?;
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        if config.create_table {
            sql::create_tables(&pool, &table).await?;
        }
        sql::check_tables(&pool, &table).await?;
        let packet: i64 = sqlx::query_scalar("SELECT CAST(@@max_allowed_packet AS SIGNED)")
            .fetch_one(&pool)
            .await
            .map_err(|e| map_sqlx_error(Operation::Connect, e))?;
        let max_packet = usize::try_from(packet).unwrap_or(usize::MAX);
        let sql = Arc::new(Statements::new(&table));
        let purge_chunk = i64::from(config.purge_chunk.max(1));
        let purge = config.purge_interval().map(|every| {
            let (pool, sql) = (pool.clone(), sql.clone());
            Arc::new(PeriodicTask::spawn("mysql purge", every, move || {
                let (pool, sql) = (pool.clone(), sql.clone());
                // A failed purge hides nothing (reads filter on expiry): it
                // is counted in purge_status(), logged, and tried again at
                // the next tick.
                async move { purge(&pool, &sql, purge_chunk).await.map(drop) }
            }))
        });
        Ok(MysqlStore {
            pool,
            sql,
            table: Arc::from(table),
            validator: Validator::new(BACKEND, capabilities(max_packet)),
            max_packet,
            versions: Arc::new(VersionBlock::default()),
            purge_chunk,
            request_timeout: config.request_timeout(),
            _purge: purge,
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The driver's options from the URL: `mysql://` or `mariadb://` (the same
/// protocol), any case.
pub(crate) fn connect_options(config: &MysqlConfig) -> Result<MySqlConnectOptions> {
    let url = kv_core::lowercase_scheme(&config.url).into_owned();
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url,
    };
    url.starts_with("mysql://")
        .then(|| MySqlConnectOptions::from_str(&url).ok())
        .flatten()
        .ok_or_else(|| {
            config_error(
                "invalid MySQL URL: expected \
                 mysql://[user[:password]@]host[:port]/database[?ssl-mode=...] (or mariadb://)",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_case_insensitive_and_mariadb_is_mysql() {
        for url in [
            "mysql://u:p@h:3306/db",
            "MYSQL://u:p@h:3306/db",
            "mariadb://u@h/db",
            "MariaDB://u@h/db",
        ] {
            let config = MysqlConfig {
                url: url.to_owned(),
                ..MysqlConfig::default()
            };
            let options = connect_options(&config).unwrap();
            assert_eq!(options.get_host(), "h", "{url}");
            assert_eq!(options.get_database(), Some("db"), "{url}");
        }
        for bad in ["postgres://h/db", "mysql//h/db", "h/db"] {
            let config = MysqlConfig {
                url: bad.to_owned(),
                ..MysqlConfig::default()
            };
            assert_eq!(
                connect_options(&config).unwrap_err().kind(),
                kv_core::ErrorKind::Config
            );
        }
    }
}

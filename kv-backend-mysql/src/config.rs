//! [`MysqlConfig`]: how to reach MySQL or MariaDB and which table to use.

use std::fmt;
use std::time::Duration;

use kv_core::redact_url;
use serde::{Deserialize, Serialize};

use crate::error::BACKEND;

/// The default table name.
pub const DEFAULT_TABLE: &str = "kv_store";

/// The configuration of a [`MysqlStore`](crate::MysqlStore); deserializable
/// from a config file. Its `Debug` hides the password.
///
/// ```
/// use kv_backend_mysql::MysqlConfig;
///
/// let config: MysqlConfig = serde_json::from_str(
///     r#"{"url": "mysql://app:s3cret@db/app?ssl-mode=required", "table": "sessions"}"#,
/// )?;
/// assert_eq!(config.table, "sessions");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MysqlConfig {
    /// `mysql://[user[:password]@]host[:port]/database[?ssl-mode=...&ssl-ca=...]`
    /// (also `mariadb://`).
    pub url: String,
    /// The table: letters, digits and `_`, starting with a letter or `_`, at
    /// most 48 characters. Created on connect when missing, with
    /// `<table>_meta` beside it (the version counter).
    pub table: String,
    /// The pool's size.
    pub max_connections: u32,
    /// How long to wait for a pooled connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// How long [`connect`](crate::MysqlStoreBuilder::connect) waits for its
    /// first connection, in milliseconds: a refused connection fails at
    /// once, a server that does not answer after this long.
    pub connect_timeout_ms: u64,
    /// The longest one call may take, in milliseconds, waiting for a pooled
    /// connection included; then it fails with `Timeout` (a stalled
    /// connection never hangs a call).
    pub request_timeout_ms: u64,
    /// Create the tables when they are missing.
    pub create_table: bool,
    /// How often expired rows are deleted, in milliseconds; `None` turns the
    /// background purge off (expired rows stay invisible either way).
    pub purge_interval_ms: Option<u64>,
    /// The most rows one purge statement deletes.
    pub purge_chunk: u32,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        Self {
            url: "mysql://localhost/kv".to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            max_connections: 10,
            acquire_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            create_table: true,
            purge_interval_ms: Some(60_000),
            purge_chunk: 1000,
        }
    }
}

impl MysqlConfig {
    pub(crate) fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub(crate) fn purge_interval(&self) -> Option<Duration> {
        self.purge_interval_ms.map(Duration::from_millis)
    }

    /// The table name after validation: safe to splice into SQL between
    /// backquotes.
    pub(crate) fn checked_table(&self) -> kv_core::Result<String> {
        kv_core::backend::sql::identifier(BACKEND, "table", &self.table, 48).map(str::to_owned)
    }
}

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("url", &redact_url(&self.url))
            .field("table", &self.table)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("create_table", &self.create_table)
            .field("purge_interval_ms", &self.purge_interval_ms)
            .field("purge_chunk", &self.purge_chunk)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_table_names_are_rejected() {
        for bad in [
            "",
            "kv; DROP TABLE users",
            "kv`",
            "`kv`",
            "a-b",
            "a b",
            "1abc",
            "kv.store",
            "ключ",
            "x'--",
            &"a".repeat(49),
        ] {
            let config = MysqlConfig {
                table: bad.into(),
                ..MysqlConfig::default()
            };
            let err = config.checked_table().unwrap_err();
            assert_eq!(err.kind(), kv_core::ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let config = MysqlConfig {
            url: "mysql://u:hunter2@h/db".into(),
            ..MysqlConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}

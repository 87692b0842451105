//! [`PostgresConfig`]: how to reach PostgreSQL and which table to use.

use std::fmt;
use std::time::Duration;

use kv_core::redact_url;
use serde::{Deserialize, Serialize};

use crate::error::BACKEND;

/// The default table name.
pub const DEFAULT_TABLE: &str = "kv_store";

/// The configuration of a [`PostgresStore`](crate::PostgresStore);
/// deserializable from a config file. Its `Debug` hides the password.
///
/// ```
/// use kv_backend_postgres::PostgresConfig;
///
/// let config: PostgresConfig = serde_json::from_str(
///     r#"{"url": "postgres://app:s3cret@db/app?sslmode=require", "table": "sessions"}"#,
/// )?;
/// assert_eq!(config.table, "sessions");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://[user[:password]@]host[:port]/database[?sslmode=...]`
    /// (also `postgresql://`). Ignored when the store is built on an
    /// existing pool.
    pub url: String,
    /// The table: letters, digits and `_`, starting with a letter or `_`, at
    /// most 48 characters. Created on connect when missing.
    pub table: String,
    /// The schema holding the table (it must exist); `None` is the
    /// connection's `search_path` default (usually `public`).
    pub schema: Option<String>,
    /// The pool's size.
    pub max_connections: u32,
    /// How long to wait for a pooled connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// How long [`connect`](crate::PostgresStoreBuilder::connect) waits for
    /// its first connection, in milliseconds: a refused connection fails at
    /// once, a server that does not answer after this long.
    pub connect_timeout_ms: u64,
    /// The longest one call may take, in milliseconds, waiting for a pooled
    /// connection included; then it fails with `Timeout` (a stalled
    /// connection never hangs a call).
    pub request_timeout_ms: u64,
    /// Create the table (and its expiry index) when it is missing.
    pub create_table: bool,
    /// How often expired rows are deleted, in milliseconds; `None` turns the
    /// background purge off (expired rows stay invisible either way).
    pub purge_interval_ms: Option<u64>,
    /// The most rows one purge statement deletes.
    pub purge_chunk: u32,
    /// `application_name` of the connections, as `pg_stat_activity` shows it.
    pub application_name: String,
    /// Whether a `batch_set` of 500 entries or more is first tried as one
    /// binary `COPY` (default `true`): the bulk writer's chunks of new keys
    /// load about 1.5x faster; a batch that meets an existing key falls
    /// back to the upsert. See the README's "Bulk loads by COPY".
    pub copy_batches: bool,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://localhost/postgres".to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            schema: None,
            max_connections: 10,
            acquire_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            create_table: true,
            purge_interval_ms: Some(60_000),
            purge_chunk: 1000,
            application_name: "kv".to_owned(),
            copy_batches: true,
        }
    }
}

impl PostgresConfig {
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

    /// The table as SQL: `"schema"."table"` or `"table"`, after validating
    /// both names.
    pub(crate) fn qualified_table(&self) -> kv_core::Result<QualifiedTable> {
        let table = identifier("table", &self.table, 48)?;
        let schema = self
            .schema
            .as_deref()
            .map(|s| identifier("schema", s, 63))
            .transpose()?;
        Ok(QualifiedTable { schema, table })
    }
}

/// A validated table name and its optional schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QualifiedTable {
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
}

impl QualifiedTable {
    /// `"schema"."table"`: safe to splice into SQL because both parts
    /// passed [`identifier`].
    pub(crate) fn sql(&self) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{}\"", self.table),
            None => format!("\"{}\"", self.table),
        }
    }
}

impl fmt::Display for QualifiedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

fn identifier(what: &str, name: &str, max: usize) -> kv_core::Result<String> {
    kv_core::backend::sql::identifier(BACKEND, what, name, max).map(str::to_owned)
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("table", &self.table)
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("create_table", &self.create_table)
            .field("purge_interval_ms", &self.purge_interval_ms)
            .field("purge_chunk", &self.purge_chunk)
            .field("application_name", &self.application_name)
            .field("copy_batches", &self.copy_batches)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> kv_core::Result<QualifiedTable> {
        PostgresConfig {
            table: name.into(),
            ..PostgresConfig::default()
        }
        .qualified_table()
    }

    #[test]
    fn hostile_table_names_are_rejected() {
        for bad in [
            "",
            "kv; DROP TABLE users",
            "kv\"",
            "\"kv\"",
            "a-b",
            "a b",
            "1abc",
            "kv.store",
            "ключ",
            "x'--",
            &"a".repeat(49),
        ] {
            let err = table(bad).unwrap_err();
            assert_eq!(err.kind(), kv_core::ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn valid_names_are_quoted() {
        assert_eq!(table("kv_Store1").unwrap().sql(), "\"kv_Store1\"");
        let config = PostgresConfig {
            schema: Some("app".into()),
            ..PostgresConfig::default()
        };
        assert_eq!(
            config.qualified_table().unwrap().sql(),
            "\"app\".\"kv_store\""
        );
        let bad_schema = PostgresConfig {
            schema: Some("pg catalog".into()),
            ..PostgresConfig::default()
        };
        assert!(bad_schema.qualified_table().is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let config = PostgresConfig {
            url: "postgres://u:hunter2@h/db".into(),
            ..PostgresConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}

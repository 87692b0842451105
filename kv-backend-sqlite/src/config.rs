//! [`SqliteConfig`]: which file, which table, how durable.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{BACKEND, config_error};

/// The default table name.
pub const DEFAULT_TABLE: &str = "kv_store";

/// The configuration of a [`SqliteStore`](crate::SqliteStore);
/// deserializable from a config file.
///
/// ```
/// use kv_backend_sqlite::SqliteConfig;
///
/// let config = SqliteConfig::from_url("sqlite:///var/lib/app/kv.db?sync=false&table=sessions")?;
/// assert_eq!(config.path.to_str(), Some("/var/lib/app/kv.db"));
/// assert!(!config.sync_writes);
/// assert_eq!(config.table, "sessions");
/// assert!(SqliteConfig::from_url("sqlite::memory:")?.memory);
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file (created when missing and `create_if_missing`).
    /// Ignored when `memory` is set.
    pub path: PathBuf,
    /// A private in-memory database instead of a file: gone when the last
    /// clone of the store is dropped; one connection serves reads and
    /// writes.
    pub memory: bool,
    /// The table: letters, digits and `_`, starting with a letter or `_`, at
    /// most 48 characters. Created on open when missing, with a companion
    /// table `<table>_meta` that holds the version counter.
    pub table: String,
    /// Create the file when it does not exist (default `true`).
    pub create_if_missing: bool,
    /// Create the tables when missing (default `true`).
    pub create_table: bool,
    /// `synchronous = FULL` (default `true`): every commit syncs the
    /// write-ahead log, so an acknowledged write survives a power loss.
    /// With `false`, `synchronous = NORMAL`: an acknowledged write survives
    /// a crash of the process, but the last commits may be lost when the
    /// machine loses power; writes are several times faster.
    pub sync_writes: bool,
    /// How many read connections run beside the one writer (default 4).
    pub readers: u32,
    /// How long a write waits for the file's write lock held by another
    /// store or process before it fails with `Timeout`, in milliseconds
    /// (SQLite's `busy_timeout`; default 5 s).
    pub busy_timeout_ms: u64,
    /// The longest one call may take, in milliseconds, waiting for a
    /// connection included; then it fails with `Timeout`.
    pub request_timeout_ms: u64,
    /// How often expired rows are deleted, in milliseconds; `None` turns the
    /// background purge off (expired rows stay invisible either way).
    pub purge_interval_ms: Option<u64>,
    /// The most rows one purge statement deletes.
    pub purge_chunk: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("kv.db"),
            memory: false,
            table: DEFAULT_TABLE.to_owned(),
            create_if_missing: true,
            create_table: true,
            sync_writes: true,
            readers: 4,
            busy_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            purge_interval_ms: Some(60_000),
            purge_chunk: 1000,
        }
    }
}

impl SqliteConfig {
    /// Parses `sqlite:///absolute/path.db`, `sqlite://./relative.db` (also
    /// `../`), or `sqlite::memory:` (also `sqlite://:memory:`), with
    /// optional `?sync=true|false`, `create_if_missing=true|false`,
    /// `table=NAME`, `readers=N`, `busy_timeout_ms=N`.
    ///
    /// # Errors
    ///
    /// `Config` for another scheme, a path that is neither absolute nor
    /// starts with `./` or `../`, or an unknown or bad option.
    pub fn from_url(url: &str) -> kv_core::Result<Self> {
        let url = kv_core::lowercase_scheme(url);
        let url = url.as_ref();
        let (memory, rest) = if let Some(rest) = url.strip_prefix("sqlite::memory:") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("sqlite://:memory:") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("sqlite://") {
            (false, rest)
        } else {
            return Err(config_error(
                "a SQLite URL starts with sqlite:// (or is sqlite::memory:)",
            ));
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if memory && !path.is_empty() {
            return Err(config_error(
                "sqlite::memory: takes options (?table=...) but no path",
            ));
        }
        let named = path.starts_with('/') || path.starts_with("./") || path.starts_with("../");
        if !(memory || named) {
            return Err(config_error(
                "a SQLite URL names an absolute path (sqlite:///var/lib/kv.db), a relative one \
                 starting with ./ or ../ (sqlite://./data/kv.db), or sqlite::memory:",
            ));
        }
        let mut config = Self {
            path: PathBuf::from(if memory { ":memory:" } else { path }),
            memory,
            ..Self::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let flag = || match value {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(config_error(format!("option {name} takes true or false"))),
            };
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| config_error(format!("option {name} takes a number")))
            };
            match name {
                "sync" => config.sync_writes = flag()?,
                "create_if_missing" => config.create_if_missing = flag()?,
                "table" => config.table = value.to_owned(),
                "readers" => {
                    config.readers = u32::try_from(number()?)
                        .map_err(|_| config_error("readers is too large"))?;
                }
                "busy_timeout_ms" => config.busy_timeout_ms = number()?,
                other => {
                    return Err(config_error(format!("unknown SQLite URL option {other:?}")));
                }
            }
        }
        Ok(config)
    }

    pub(crate) fn table_name(&self) -> kv_core::Result<&str> {
        kv_core::backend::sql::identifier(BACKEND, "table", &self.table, 48)
    }

    pub(crate) fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub(crate) fn purge_interval(&self) -> Option<Duration> {
        self.purge_interval_ms.map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::ErrorKind;

    #[test]
    fn urls_name_absolute_or_dot_relative_paths_or_memory() {
        let c = SqliteConfig::from_url("SQLite:///a/b.db").unwrap();
        assert_eq!(c.path, PathBuf::from("/a/b.db"));
        assert!(!c.memory && c.sync_writes);
        assert_eq!(
            SqliteConfig::from_url("sqlite://./a.db").unwrap().path,
            PathBuf::from("./a.db")
        );
        assert_eq!(
            SqliteConfig::from_url("sqlite://../a.db").unwrap().path,
            PathBuf::from("../a.db")
        );
        for memory in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite::memory:?table=t",
        ] {
            assert!(SqliteConfig::from_url(memory).unwrap().memory, "{memory}");
        }
        let c = SqliteConfig::from_url(
            "sqlite:///a?create_if_missing=false&sync=0&table=t1&readers=2&busy_timeout_ms=10",
        )
        .unwrap();
        assert!(!c.create_if_missing && !c.sync_writes);
        assert_eq!(
            (c.table.as_str(), c.readers, c.busy_timeout_ms),
            ("t1", 2, 10)
        );
        for bad in [
            "sqlite://a.db",
            "sqlite://",
            "sqlite:a.db",
            "redis:///a",
            "sqlite:///a?sync=maybe",
            "sqlite:///a?x=1",
            "sqlite:///a?readers=-1",
            "sqlite::memory:/a.db",
        ] {
            assert_eq!(
                SqliteConfig::from_url(bad).unwrap_err().kind(),
                ErrorKind::Config,
                "{bad}"
            );
        }
    }

    #[test]
    fn hostile_table_names_are_refused() {
        let config = SqliteConfig {
            table: "kv\"; DROP TABLE x; --".into(),
            ..SqliteConfig::default()
        };
        assert_eq!(config.table_name().unwrap_err().kind(), ErrorKind::Config);
    }
}

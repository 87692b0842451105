//! [`RocksDbConfig`]: where the database lives and how it is tuned.

use std::path::PathBuf;

use kv_core::{Error, ErrorKind, Operation};
use serde::{Deserialize, Serialize};

use crate::error::BACKEND;

/// Block compression of the SST files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4: fast, the default.
    #[default]
    Lz4,
    /// Zstandard: smaller, slower.
    Zstd,
}

/// The configuration of a [`RocksDbStore`](crate::RocksDbStore);
/// deserializable from a config file.
///
/// ```
/// use kv_backend_rocksdb::RocksDbConfig;
///
/// let config = RocksDbConfig::from_url("rocksdb:///var/lib/app/kv?sync=false&compression=zstd")?;
/// assert_eq!(config.path.to_str(), Some("/var/lib/app/kv"));
/// assert!(!config.sync_writes);
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RocksDbConfig {
    /// The database directory.
    pub path: PathBuf,
    /// Create the database when the directory holds none (default `true`).
    pub create_if_missing: bool,
    /// SST block compression (default LZ4).
    pub compression: Compression,
    /// Sync the write-ahead log on every write (default `true`): an
    /// acknowledged write survives a power loss. With `false`, it survives
    /// a process crash but the last writes may be lost when the machine
    /// crashes; writes are much faster.
    pub sync_writes: bool,
    /// The block cache for reads, in bytes (default 64 MiB).
    pub block_cache_bytes: usize,
    /// Compact files older than this many seconds even without new writes,
    /// so expired values leave the disk (default one day; 0 leaves it to
    /// RocksDB).
    pub periodic_compaction_secs: u64,
}

impl Default for RocksDbConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("kv-data"),
            create_if_missing: true,
            compression: Compression::Lz4,
            sync_writes: true,
            block_cache_bytes: 64 * 1024 * 1024,
            periodic_compaction_secs: 24 * 60 * 60,
        }
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, Operation::Connect).with_message(message)
}

impl RocksDbConfig {
    /// Parses `rocksdb:///absolute/path` or `rocksdb://./relative/path`
    /// (also `../`), with optional `?sync=true|false`,
    /// `create_if_missing=true|false`, `compression=none|lz4|zstd`,
    /// `block_cache_bytes=N`.
    ///
    /// # Errors
    ///
    /// `Config` for another scheme, a path that is neither absolute nor
    /// starts with `./` or `../`, or an unknown or bad option.
    pub fn from_url(url: &str) -> kv_core::Result<Self> {
        let url = kv_core::lowercase_scheme(url);
        let url = url.as_ref();
        let rest = url
            .strip_prefix("rocksdb://")
            .ok_or_else(|| config_error("a RocksDB URL starts with rocksdb://"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !(path.starts_with('/') || path.starts_with("./") || path.starts_with("../")) {
            return Err(config_error(
                "a RocksDB URL names an absolute path (rocksdb:///var/lib/kv) or a relative one \
                 starting with ./ or ../ (rocksdb://./data/kv)",
            ));
        }
        let mut config = Self {
            path: PathBuf::from(path),
            ..Self::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let flag = || match value {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(config_error(format!("option {name} takes true or false"))),
            };
            match name {
                "sync" => config.sync_writes = flag()?,
                "create_if_missing" => config.create_if_missing = flag()?,
                "compression" => {
                    config.compression = match value {
                        "none" => Compression::None,
                        "lz4" => Compression::Lz4,
                        "zstd" => Compression::Zstd,
                        _ => return Err(config_error("compression is none, lz4 or zstd")),
                    }
                }
                "block_cache_bytes" => {
                    config.block_cache_bytes = value
                        .parse()
                        .map_err(|_| config_error("block_cache_bytes takes a number"))?;
                }
                other => {
                    return Err(config_error(format!(
                        "unknown RocksDB URL option {other:?}"
                    )));
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_case_insensitive() {
        assert_eq!(
            RocksDbConfig::from_url("RocksDB:///a/b").unwrap().path,
            PathBuf::from("/a/b")
        );
    }

    #[test]
    fn urls_name_absolute_or_dot_relative_paths() {
        assert_eq!(
            RocksDbConfig::from_url("rocksdb:///a/b").unwrap().path,
            PathBuf::from("/a/b")
        );
        assert_eq!(
            RocksDbConfig::from_url("rocksdb://./a").unwrap().path,
            PathBuf::from("./a")
        );
        assert_eq!(
            RocksDbConfig::from_url("rocksdb://../a").unwrap().path,
            PathBuf::from("../a")
        );
        for bad in [
            "rocksdb://a/b",
            "rocksdb://",
            "redis:///a",
            "rocksdb:///a?sync=maybe",
            "rocksdb:///a?x=1",
        ] {
            assert_eq!(
                RocksDbConfig::from_url(bad).unwrap_err().kind(),
                ErrorKind::Config,
                "{bad}"
            );
        }
        let c = RocksDbConfig::from_url("rocksdb:///a?create_if_missing=false&compression=none")
            .unwrap();
        assert!(!c.create_if_missing);
        assert_eq!(c.compression, Compression::None);
    }
}

//! # kv
//!
//! One async key-value API with typed serde values and real batch
//! operations, over pluggable backends. Pick a backend with a cargo feature
//! and a URL; the code stays the same.
//!
//! The package is `anykv` (`anykv = { version = "0.1", features = ["redis"] }`
//! once released; by `path` or `git` until then); its library is `kv`.
//!
//! ```
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kv::Error> {
//! let kv = kv::connect("memory://").await?;
//!
//! kv.set("user:1", &"Ada").await?;
//! kv.batch_set([("user:2", "Bob"), ("user:3", "Cy")]).await?;
//! let names: Vec<Option<String>> = kv.batch_get(["user:1", "user:9", "user:3"]).await?;
//! assert_eq!(names, [Some("Ada".into()), None, Some("Cy".into())]);
//!
//! kv.set_with_ttl("session", &"token", Duration::from_secs(60)).await?;
//! assert!(kv.compare_and_swap("user:1", Some(&"Ada"), Some(&"Ada L.")).await?);
//! # Ok(())
//! # }
//! ```
//!
//! Everything of `kv_core` is re-exported here: the [`KvStore`] trait and its
//! contract, the typed client [`Kv`], [`Error`] and [`ErrorKind`],
//! [`Capabilities`], the codecs and the in-memory backend.
//!
//! ## Backends and URLs
//!
//! Each backend is compiled in by its cargo feature (`full` turns on all of
//! them); the last column says which are in this build of the docs.
//!
//! | scheme | backend | cargo feature | in this build |
//! |---|---|---|---|
//! | `memory://` | in-process, the reference implementation | `memory` (default) | yes |
#![cfg_attr(
    feature = "redis",
    doc = "| `redis://`, `rediss://`, `redis+cluster://` | Redis and Redis Cluster ([`redis`](mod@redis) module) | `redis` | yes |"
)]
#![cfg_attr(
    not(feature = "redis"),
    doc = "| `redis://`, `rediss://`, `redis+cluster://` | Redis and Redis Cluster (`redis` module) | `redis` | no: enable the `redis` feature |"
)]
#![cfg_attr(
    feature = "postgres",
    doc = "| `postgres://`, `postgresql://` | PostgreSQL ([`postgres`](mod@postgres) module) | `postgres` | yes |"
)]
#![cfg_attr(
    not(feature = "postgres"),
    doc = "| `postgres://`, `postgresql://` | PostgreSQL (`postgres` module) | `postgres` | no: enable the `postgres` feature |"
)]
#![cfg_attr(
    feature = "mysql",
    doc = "| `mysql://`, `mariadb://` | MySQL and MariaDB ([`mysql`](mod@mysql) module) | `mysql` | yes |"
)]
#![cfg_attr(
    not(feature = "mysql"),
    doc = "| `mysql://`, `mariadb://` | MySQL and MariaDB (`mysql` module) | `mysql` | no: enable the `mysql` feature |"
)]
#![cfg_attr(
    feature = "rocksdb",
    doc = "| `rocksdb:///abs/path`, `rocksdb://./rel/path` | RocksDB, embedded ([`rocksdb`](mod@rocksdb) module) | `rocksdb` | yes |"
)]
#![cfg_attr(
    not(feature = "rocksdb"),
    doc = "| `rocksdb:///abs/path`, `rocksdb://./rel/path` | RocksDB, embedded (`rocksdb` module) | `rocksdb` | no: enable the `rocksdb` feature |"
)]
#![cfg_attr(
    feature = "sqlite",
    doc = "| `sqlite:///abs/path.db`, `sqlite://./rel.db`, `sqlite::memory:` | SQLite, embedded ([`sqlite`](mod@sqlite) module) | `sqlite` | yes |"
)]
#![cfg_attr(
    not(feature = "sqlite"),
    doc = "| `sqlite:///abs/path.db`, `sqlite://./rel.db`, `sqlite::memory:` | SQLite, embedded (`sqlite` module) | `sqlite` | no: enable the `sqlite` feature |"
)]
#![cfg_attr(
    feature = "etcd",
    doc = "| `etcd://host:port[,host:port]`, `etcds://` | etcd ([`etcd`](mod@etcd) module) | `etcd` | yes |"
)]
#![cfg_attr(
    not(feature = "etcd"),
    doc = "| `etcd://host:port[,host:port]`, `etcds://` | etcd (`etcd` module) | `etcd` | no: enable the `etcd` feature |"
)]
#![cfg_attr(
    feature = "mongo",
    doc = "| `mongodb://host[:port][,host...]/database[?collection=c&...]`, `mongodb+srv://` | MongoDB ([`mongo`](mod@mongo) module) | `mongo` | yes |"
)]
#![cfg_attr(
    not(feature = "mongo"),
    doc = "| `mongodb://host[:port][,host...]/database[?collection=c&...]`, `mongodb+srv://` | MongoDB (`mongo` module) | `mongo` | no: enable the `mongo` feature |"
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

use std::sync::Arc;

pub use kv_core::*;

/// The Redis backend (feature `redis`): [`RedisStore`](redis::RedisStore),
/// its builder and config, and the `redis` driver itself.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis {
    pub use kv_backend_redis::*;
}

/// The PostgreSQL backend (feature `postgres`):
/// [`PostgresStore`](postgres::PostgresStore), its builder and config, and
/// `sqlx` itself.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres {
    pub use kv_backend_postgres::*;
}

/// The MySQL / MariaDB backend (feature `mysql`):
/// [`MysqlStore`](mysql::MysqlStore), its builder and config, and `sqlx`
/// itself.
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql {
    pub use kv_backend_mysql::*;
}

/// The embedded RocksDB backend (feature `rocksdb`):
/// [`RocksDbStore`](rocksdb::RocksDbStore), its builder and config, and the
/// `rocksdb` crate itself.
#[cfg(feature = "rocksdb")]
#[cfg_attr(docsrs, doc(cfg(feature = "rocksdb")))]
pub mod rocksdb {
    pub use kv_backend_rocksdb::*;
}

/// The embedded SQLite backend (feature `sqlite`):
/// [`SqliteStore`](sqlite::SqliteStore), its builder and config, and `sqlx`
/// itself.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite {
    pub use kv_backend_sqlite::*;
}

/// The etcd backend (feature `etcd`): [`EtcdStore`](etcd::EtcdStore), its
/// builder and config, and the `etcd_client` driver itself.
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd {
    pub use kv_backend_etcd::*;
}

/// The MongoDB backend (feature `mongo`): [`MongoStore`](mongo::MongoStore),
/// its builder and config, and the `mongodb` driver itself.
#[cfg(feature = "mongo")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongo")))]
pub mod mongo {
    pub use kv_backend_mongo::*;
}

/// Connects to the backend the URL's scheme names and returns the typed
/// client (JSON codec).
///
/// # Errors
///
/// [`ErrorKind::Config`] when the URL has no scheme, the scheme is unknown,
/// or its backend's cargo feature is off (the message names the feature);
/// the backend's own connection errors.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let err = kv::connect("cassandra://db:9042").await.unwrap_err();
/// assert_eq!(err.kind(), kv::ErrorKind::Config);
/// # }
/// ```
pub async fn connect(url: &str) -> Result<Kv> {
    Ok(Kv::new(connect_store(url).await?))
}

/// Like [`connect`], returning the raw [`KvStore`].
///
/// # Errors
///
/// As [`connect`].
pub async fn connect_store(url: &str) -> Result<Arc<dyn KvStore>> {
    let scheme = scheme(url)?;
    // Schemes are case-insensitive; every backend sees a lower-case one.
    let url = kv_core::lowercase_scheme(url);
    let url = url.as_ref();
    match scheme.as_str() {
        "memory" => memory(url),
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => redis(&scheme, url).await,
        "postgres" | "postgresql" => postgres(&scheme, url).await,
        "mysql" | "mariadb" => mysql(&scheme, url).await,
        "rocksdb" => rocksdb(&scheme, url).await,
        "sqlite" => sqlite(&scheme, url).await,
        "etcd" | "etcds" => etcd(&scheme, url).await,
        "mongodb" | "mongodb+srv" => mongo(&scheme, url).await,
        _ => Err(config_error(format!(
            "unknown URL scheme `{scheme}://`; kv knows memory, redis, rediss, redis+cluster, \
             rediss+cluster, postgres, postgresql, mysql, mariadb, rocksdb, sqlite, etcd, etcds, mongodb and mongodb+srv"
        ))),
    }
}

/// The lower-cased scheme. Never echoes the URL: it may hold a password.
fn scheme(url: &str) -> Result<String> {
    match url.split_once(':') {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            Ok(scheme.to_ascii_lowercase())
        }
        _ => Err(config_error(
            "the URL has no scheme; expected for example memory:// or redis://host:6379",
        )),
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, "kv", Operation::Connect).with_message(message)
}

// Unused only when every backend is compiled in.
#[cfg(not(all(
    feature = "memory",
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "rocksdb",
    feature = "sqlite",
    feature = "etcd",
    feature = "mongo"
)))]
fn feature_off(scheme: &str, feature: &str) -> Error {
    config_error(format!(
        "`{scheme}://` needs the `{feature}` backend, which this build of kv does not include; \
         enable the cargo feature `{feature}` of the facade package anykv (for example \
         `anykv = {{ version = \"0.1\", features = [\"{feature}\"] }}`)"
    ))
}

#[cfg(feature = "redis")]
async fn redis(_scheme: &str, url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(kv_backend_redis::RedisStore::connect(url).await?.into_dyn())
}

#[cfg(not(feature = "redis"))]
async fn redis(scheme: &str, _url: &str) -> Result<Arc<dyn KvStore>> {
    Err(feature_off(scheme, "redis"))
}

#[cfg(feature = "postgres")]
async fn postgres(_scheme: &str, url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(kv_backend_postgres::PostgresStore::connect(url)
        .await?
        .into_dyn())
}

#[cfg(not(feature = "postgres"))]
async fn postgres(scheme: &str, _url: &str) -> Result<Arc<dyn KvStore>> {
    Err(feature_off(scheme, "postgres"))
}

#[cfg(feature = "mysql")]
async fn mysql(_scheme: &str, url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(kv_backend_mysql::MysqlStore::connect(url).await?.into_dyn())
}

#[cfg(not(feature = "mysql"))]
async fn mysql(scheme: &str, _url: &str) -> Result<Arc<dyn KvStore>> {
    Err(feature_off(scheme, "mysql"))
}

#[cfg(feature = "etcd")]
async fn etcd(_scheme: &str, url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(kv_backend_etcd::EtcdStore::connect(url).await?.into_dyn())
}

#[cfg(not(feature = "etcd"))]
async fn etcd(scheme: &str, _url: &str) -> Result<Arc<dyn KvStore>> {
    Err(feature_off(scheme, "etcd"))
}

#[cfg(feature = "mongo")]
async fn mongo(_scheme: &str, url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(kv_backend_mongo::MongoStore::connect(url).await?.into_dyn())
}

#[cfg(not(feature = "mongo"))]
async fn mongo(scheme: &str, _url: &str) -> Result<Arc<dyn KvStore>> {
    Err(feature_off(scheme, "mongo"))
}

#[cfg(feature = "rocksdb")]
async fn rocksdb(_scheme: &str, url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(kv_backend_rocksdb::RocksDbStore::open_url(url)
        .await?
        .into_dyn())
}

#[cfg(not(feature = "rocksdb"))]
async fn rocksdb(scheme: &str, _url: &str) -> Result<Arc<dyn KvStore>> {
    Err(feature_off(scheme, "rocksdb"))
}

#[cfg(feature = "sqlite")]
async fn sqlite(_scheme: &str, url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(kv_backend_sqlite::SqliteStore::open_url(url)
        .await?
        .into_dyn())
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite(scheme: &str, _url: &str) -> Result<Arc<dyn KvStore>> {
    Err(feature_off(scheme, "sqlite"))
}

#[cfg(feature = "memory")]
fn memory(url: &str) -> Result<Arc<dyn KvStore>> {
    let rest = url.split_once(':').map_or("", |(_, rest)| rest);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    if rest.contains('?') {
        return Err(config_error("memory:// takes no options"));
    }
    Ok(MemoryStore::new().into_dyn())
}

#[cfg(not(feature = "memory"))]
fn memory(_url: &str) -> Result<Arc<dyn KvStore>> {
    Err(feature_off("memory", "memory"))
}

/// The README's examples, compiled and run as doctests so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

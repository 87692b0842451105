//! [`MongoConfig`]: how to reach MongoDB, where the keys live, and limits.

use std::fmt;
use std::time::Duration;

use kv_core::redact_url;
use serde::{Deserialize, Serialize};

use crate::error::config_error;

/// The database used when neither the URL path nor the config names one.
pub const DEFAULT_DATABASE: &str = "kv";

/// The collection used when neither the URL's `collection` option nor the
/// config names one.
pub const DEFAULT_COLLECTION: &str = "kv";

/// The most distinct keys one batch may touch by default. A batch is one
/// transaction on a replica set; MongoDB limits a transaction by time
/// (`transactionLifetimeLimitSeconds`, 60 s by default) and memory rather
/// than by a count, and 100,000 small upserts commit well inside both.
pub const DEFAULT_MAX_BATCH_OPS: usize = 100_000;

/// The most statements one `update` or `delete` command carries: the
/// server's `maxWriteBatchSize` (100,000 since MongoDB 3.6). The store uses
/// the smaller of this, the configured value and what the server reports.
pub const DEFAULT_MAX_STATEMENTS: usize = 100_000;

/// The configuration of a [`MongoStore`](crate::MongoStore); deserializable
/// from a config file. Its `Debug` hides the password.
///
/// ```
/// use kv_backend_mongo::MongoConfig;
///
/// let config: MongoConfig = serde_json::from_str(
///     r#"{"url": "mongodb://app:s3cret@db1,db2/app?replicaSet=rs0", "collection": "sessions"}"#,
/// )?;
/// assert_eq!(config.database_name(), "app");
/// assert_eq!(config.collection_name(), "sessions");
/// assert!(!format!("{config:?}").contains("s3cret"));
///
/// let from_url = MongoConfig::from_url("mongodb://h:27017/?collection=cache").unwrap();
/// assert_eq!((from_url.database_name(), from_url.collection_name()), ("kv", "cache"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MongoConfig {
    /// A MongoDB connection string, `mongodb://` or `mongodb+srv://`, with
    /// the driver's options (`replicaSet`, `tls`, `authSource`, ...). Its
    /// path names the database. kv's own option `collection` is taken out
    /// before the driver sees the string.
    pub url: String,
    /// The database; `None` is the URL's path, else [`DEFAULT_DATABASE`].
    pub database: Option<String>,
    /// The collection; `None` is the URL's `collection` option, else
    /// [`DEFAULT_COLLECTION`].
    pub collection: Option<String>,
    /// How long finding a server and connecting to it may take, in
    /// milliseconds (the driver's `connectTimeoutMS` and
    /// `serverSelectionTimeoutMS`, unless the URL sets them).
    pub connect_timeout_ms: u64,
    /// The server-side time limit of each command outside a transaction
    /// (`maxTimeMS`) and of each commit (`maxCommitTimeMS`), in
    /// milliseconds, so a write blocked behind another client's open
    /// transaction fails with `Timeout` instead of waiting forever.
    pub max_time_ms: u64,
    /// The longest one call may take on the client, in milliseconds,
    /// whatever the server does (a stalled connection, a lost answer): then
    /// it fails with `Timeout`. Longer than `max_time_ms`, so the server's
    /// limit normally answers first.
    pub request_timeout_ms: u64,
    /// Create the TTL index on `e` when the store connects (on by default;
    /// turn it off when the application's user may not create indexes and
    /// an administrator has created it).
    pub create_indexes: bool,
    /// How many times a batch's transaction is run again after a transient
    /// transaction error (a write conflict, a primary stepping down) before
    /// the error is returned; each retry is the whole transaction.
    pub transaction_retries: u32,
    /// The most distinct keys one batch may touch; a larger batch is
    /// `BatchTooLarge` before any I/O.
    pub max_batch_ops: usize,
    /// The most statements one `update` or `delete` command carries; a
    /// larger batch is several commands in the same transaction. The server's
    /// `maxWriteBatchSize` caps it.
    pub max_statements_per_command: usize,
}

impl Default for MongoConfig {
    fn default() -> Self {
        Self {
            url: "mongodb://localhost:27017".to_owned(),
            database: None,
            collection: None,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 60_000,
            max_time_ms: 30_000,
            create_indexes: true,
            transaction_retries: 8,
            max_batch_ops: DEFAULT_MAX_BATCH_OPS,
            max_statements_per_command: DEFAULT_MAX_STATEMENTS,
        }
    }
}

impl MongoConfig {
    /// A config for `url` (see [`url`](Self::url)), with the defaults.
    ///
    /// # Errors
    ///
    /// `Config` when the scheme is not `mongodb://` or `mongodb+srv://`, or
    /// the database or collection name is not allowed; the message never
    /// contains the URL.
    pub fn from_url(url: &str) -> kv_core::Result<Self> {
        let config = Self {
            url: url.to_owned(),
            ..Self::default()
        };
        config.parts()?;
        Ok(config)
    }

    /// The database the store uses.
    pub fn database_name(&self) -> &str {
        match &self.database {
            Some(db) => db,
            None => self.parts().map_or(DEFAULT_DATABASE, |p| p.database),
        }
    }

    /// The collection the store uses.
    pub fn collection_name(&self) -> &str {
        match &self.collection {
            Some(coll) => coll,
            None => self.parts().map_or(DEFAULT_COLLECTION, |p| p.collection),
        }
    }

    /// Checks the names and returns the URL the driver takes (without
    /// kv's `collection` option).
    pub(crate) fn validated(&self) -> kv_core::Result<String> {
        let parts = self.parts()?;
        check_name("database", self.database_name(), 63, "/\\. \"$")?;
        check_name("collection", self.collection_name(), 200, "$")?;
        if self.collection_name().starts_with("system.") {
            return Err(config_error("a collection name may not start with system."));
        }
        if self.max_batch_ops == 0 || self.max_statements_per_command == 0 {
            return Err(config_error(
                "max_batch_ops and max_statements_per_command must be at least 1",
            ));
        }
        Ok(parts.driver_url)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub(crate) fn max_time(&self) -> Duration {
        Duration::from_millis(self.max_time_ms)
    }

    /// Splits the URL into the database of its path, kv's `collection`
    /// option, and the rest for the driver.
    fn parts(&self) -> kv_core::Result<UrlParts<'_>> {
        let wrong = || config_error("a MongoDB URL starts with mongodb:// or mongodb+srv://");
        let url = kv_core::UrlParts::parse(&self.url).ok_or_else(wrong)?;
        // Schemes are case-insensitive: the driver is given a lower-case one.
        let scheme = url.scheme.to_ascii_lowercase();
        if scheme != "mongodb" && scheme != "mongodb+srv" {
            return Err(wrong());
        }
        if url.fragment.is_some() {
            return Err(config_error(
                "a MongoDB URL has no #fragment (write a # in a password as %23)",
            ));
        }
        let database = url.path.trim_start_matches('/');
        let mut collection = None;
        let mut kept = Vec::new();
        for (name, value) in url.query_pairs() {
            match name {
                "collection" => collection = Some(value),
                _ if value.is_empty() => kept.push(name.to_owned()),
                _ => kept.push(format!("{name}={value}")),
            }
        }
        let userinfo = url
            .userinfo
            .map_or(String::new(), |info| format!("{info}@"));
        let mut driver_url = format!("{scheme}://{userinfo}{}", url.hosts);
        driver_url.push('/');
        driver_url.push_str(database);
        if !kept.is_empty() {
            driver_url.push('?');
            driver_url.push_str(&kept.join("&"));
        }
        Ok(UrlParts {
            database: if database.is_empty() {
                DEFAULT_DATABASE
            } else {
                database
            },
            collection: collection
                .filter(|c| !c.is_empty())
                .unwrap_or(DEFAULT_COLLECTION),
            driver_url,
        })
    }
}

struct UrlParts<'a> {
    database: &'a str,
    collection: &'a str,
    driver_url: String,
}

fn check_name(what: &str, name: &str, max: usize, forbidden: &str) -> kv_core::Result<()> {
    if name.is_empty()
        || name.len() > max
        || name.contains('\0')
        || name.chars().any(|c| forbidden.contains(c))
    {
        return Err(config_error(format!(
            "the {what} name must have 1 to {max} bytes and none of NUL or {forbidden:?}"
        )));
    }
    Ok(())
}

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("url", &redact_url(&self.url))
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("max_time_ms", &self.max_time_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("create_indexes", &self.create_indexes)
            .field("transaction_retries", &self.transaction_retries)
            .field("max_batch_ops", &self.max_batch_ops)
            .field(
                "max_statements_per_command",
                &self.max_statements_per_command,
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_names_the_database_and_collection_is_kvs_option() {
        let config = MongoConfig::from_url(
            "mongodb://app:p%40ss@a:1,b:2/shop?replicaSet=rs0&collection=carts&w=majority",
        )
        .unwrap();
        assert_eq!(config.database_name(), "shop");
        assert_eq!(config.collection_name(), "carts");
        assert_eq!(
            config.validated().unwrap(),
            "mongodb://app:p%40ss@a:1,b:2/shop?replicaSet=rs0&w=majority"
        );
        assert!(!format!("{config:?}").contains("p%40ss"));
    }

    /// kv's one URL rule (`kv_core::UrlParts`): the user-info ends at the
    /// last `@`; the driver gets it unchanged.
    #[test]
    fn passwords_with_url_characters_and_fragments() {
        let config = MongoConfig::from_url("mongodb://u:a/b@h/shop?collection=c&w=1").unwrap();
        assert_eq!(
            (config.database_name(), config.collection_name()),
            ("shop", "c")
        );
        assert_eq!(config.validated().unwrap(), "mongodb://u:a/b@h/shop?w=1");
        assert!(MongoConfig::from_url("mongodb://h/shop#x").is_err());
    }

    #[test]
    fn schemes_are_case_insensitive() {
        for url in ["MONGODB://h/shop?w=1", "MongoDB+SRV://h/shop?w=1"] {
            let config = MongoConfig::from_url(url).unwrap();
            assert_eq!(config.database_name(), "shop");
            let lower = url.split_once("://").unwrap().0.to_ascii_lowercase();
            assert_eq!(config.validated().unwrap(), format!("{lower}://h/shop?w=1"));
        }
    }

    #[test]
    fn defaults_without_path_or_option() {
        for url in [
            "mongodb://h",
            "mongodb://h/",
            "mongodb://h/?directConnection=true",
            "mongodb+srv://u:pw@cluster0.example.net",
        ] {
            let config = MongoConfig::from_url(url).unwrap();
            assert_eq!(config.database_name(), DEFAULT_DATABASE, "{url}");
            assert_eq!(config.collection_name(), DEFAULT_COLLECTION, "{url}");
        }
        let config = MongoConfig::from_url("mongodb://h/?directConnection=true").unwrap();
        assert_eq!(
            config.validated().unwrap(),
            "mongodb://h/?directConnection=true"
        );
    }

    #[test]
    fn config_fields_override_the_url() {
        let config = MongoConfig {
            database: Some("other".into()),
            collection: Some("c".into()),
            ..MongoConfig::from_url("mongodb://h/db?collection=x").unwrap()
        };
        assert_eq!(
            (config.database_name(), config.collection_name()),
            ("other", "c")
        );
    }

    #[test]
    fn bad_configs_are_config_errors_without_the_password() {
        let bad = [
            MongoConfig::from_url("redis://u:hunter2@h").err(),
            MongoConfig::from_url("mongodb://u:hunter2@h/a.b")
                .and_then(|c| c.validated())
                .err(),
            MongoConfig::from_url("mongodb://u:hunter2@h/db?collection=system.x")
                .and_then(|c| c.validated())
                .err(),
            MongoConfig {
                max_batch_ops: 0,
                ..MongoConfig::from_url("mongodb://u:hunter2@h").unwrap()
            }
            .validated()
            .err(),
        ];
        for err in bad {
            let err = err.expect("an error");
            assert_eq!(err.kind(), kv_core::ErrorKind::Config);
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}

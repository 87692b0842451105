//! [`RedisConfig`]: how to reach Redis and how the store lays out its keys.

use std::fmt;
use std::time::Duration;

use kv_core::redact_url;
use serde::{Deserialize, Serialize};

/// The default response timeout: long enough for a MULTI/EXEC of many
/// thousands of keys (redis-rs alone would give up after 500 ms).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default interval of the background purge of expired index entries.
pub const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// How many buckets (hash tags) a cluster store without a tag in its prefix
/// spreads its keys over by default.
pub const DEFAULT_CLUSTER_BUCKETS: usize = 16;

/// The configuration of a [`RedisStore`](crate::RedisStore); deserializable
/// from a config file. Its `Debug` hides the password.
///
/// ```
/// use kv_backend_redis::RedisConfig;
///
/// let config: RedisConfig = serde_json::from_str(
///     r#"{"url": "redis://app:s3cret@cache:6379/2", "key_prefix": "app:", "response_timeout_ms": 5000}"#,
/// )?;
/// assert_eq!(config.key_prefix, "app:");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS.
    /// For a Redis Cluster, `redis+cluster://[user[:password]@]host:port[,host:port...]`
    /// (any of its nodes; the rest are discovered), or `rediss+cluster://`.
    pub url: String,
    /// Prepended to every key in Redis, so several stores can share one
    /// database. Listing and `reindex` see only keys with this prefix.
    pub key_prefix: String,
    /// How long one connection attempt may take, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How long a command (or a whole MULTI/EXEC) may take, in milliseconds.
    pub response_timeout_ms: u64,
    /// How often expired keys are dropped from the listing index, in
    /// milliseconds; `None` turns the background purge off (expired entries
    /// are then dropped only when a listing meets them, or by
    /// [`RedisStore::purge_expired`](crate::RedisStore::purge_expired)).
    pub purge_interval_ms: Option<u64>,
    /// For `rediss://` with a private CA: the PEM file of the CA that signs
    /// the server's certificate, trusted instead of the public roots.
    pub tls_ca_file: Option<String>,
    /// On a cluster, when the key prefix has no hash tag: how many buckets
    /// (each a hash tag with its own index) the keys are spread over. Keep
    /// it once data is written: the store refuses to open data written with
    /// another count.
    pub cluster_buckets: usize,
    /// Whether the store keeps its listing index (default `true`): a sorted
    /// set of its keys, an expiry schedule and a hash of versions, written
    /// in the same MULTI/EXEC as the data. With `false` a batch is just the
    /// data commands (`MSET`, `SET PX`, `UNLINK`) and TTLs are Redis's own;
    /// `list` (and `clear`, `export`, copying from the store), versions and
    /// transactions are `Unsupported`, as the store's capabilities say.
    /// The URL option `list_index=false` sets it too. See the README's
    /// "Without the listing index" for switching an existing store.
    pub list_index: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: String::new(),
            connect_timeout_ms: millis(DEFAULT_CONNECT_TIMEOUT),
            response_timeout_ms: millis(DEFAULT_RESPONSE_TIMEOUT),
            purge_interval_ms: Some(millis(DEFAULT_PURGE_INTERVAL)),
            tls_ca_file: None,
            cluster_buckets: DEFAULT_CLUSTER_BUCKETS,
            list_index: true,
        }
    }
}

use kv_core::backend::millis;

impl RedisConfig {
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    pub(crate) fn purge_interval(&self) -> Option<Duration> {
        self.purge_interval_ms.map(Duration::from_millis)
    }

    pub(crate) fn set_durations(&mut self, connect: Option<Duration>, response: Option<Duration>) {
        if let Some(connect) = connect {
            self.connect_timeout_ms = millis(connect);
        }
        if let Some(response) = response {
            self.response_timeout_ms = millis(response);
        }
    }

    pub(crate) fn set_purge_interval(&mut self, interval: Option<Duration>) {
        self.purge_interval_ms = interval.map(millis);
    }

    /// Takes kv's own URL option `list_index=true|false` out of the URL
    /// (the driver must not see it) into [`RedisConfig::list_index`].
    ///
    /// # Errors
    ///
    /// `Config` for another value, or `list_index=true` in the URL of a
    /// config that says `false`.
    pub(crate) fn take_url_options(&mut self) -> kv_core::Result<()> {
        let Some(parts) = kv_core::UrlParts::parse(self.url.trim()) else {
            return Ok(());
        };
        let Some(query) = parts.query else {
            return Ok(());
        };
        let mut list_index = None;
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("list_index", value)) => {
                    list_index = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(crate::error::config_error(
                                "the Redis URL option list_index takes true or false",
                            ));
                        }
                    });
                }
                _ => kept.push(pair),
            }
        }
        let Some(list_index) = list_index else {
            return Ok(());
        };
        if list_index && !self.list_index {
            return Err(crate::error::config_error(
                "the URL says list_index=true but the config says list_index: false",
            ));
        }
        self.list_index = list_index;
        let trimmed = self.url.trim();
        // `query` is a slice of `trimmed`: the URL before and after it.
        let start = query.as_ptr() as usize - trimmed.as_ptr() as usize;
        let before = &trimmed[..start - 1];
        let after = &trimmed[start + query.len()..];
        let url = if kept.is_empty() {
            format!("{before}{after}")
        } else {
            format!("{before}?{}{after}", kept.join("&"))
        };
        self.url = url;
        Ok(())
    }

    /// For a `redis+cluster://` or `rediss+cluster://` URL, the node URLs
    /// (`redis://[user:password@]host:port` each); `None` for a single
    /// server's URL.
    pub(crate) fn cluster_nodes(&self) -> Option<Result<Vec<String>, String>> {
        let parts = kv_core::UrlParts::parse(self.url.trim())?;
        let node_scheme = match parts.scheme.to_ascii_lowercase().as_str() {
            "redis+cluster" => "redis",
            "rediss+cluster" => "rediss",
            _ => return None,
        };
        let userinfo = parts
            .userinfo
            .map_or(String::new(), |info| format!("{info}@"));
        let nodes: Vec<String> = parts
            .hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("{node_scheme}://{userinfo}{h}"))
            .collect();
        let extra = !parts.path.trim_start_matches('/').is_empty()
            || parts.query.is_some()
            || parts.fragment.is_some();
        if nodes.is_empty() || extra {
            return Some(Err(
                "expected redis+cluster://[user[:password]@]host:port[,host:port...]".to_owned(),
            ));
        }
        Some(Ok(nodes))
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("purge_interval_ms", &self.purge_interval_ms)
            .field("cluster_buckets", &self.cluster_buckets)
            .field("list_index", &self.list_index)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password_and_keeps_the_rest() {
        let config = RedisConfig {
            url: "rediss://alice:p%40ss-w0rd@cache.internal:6380/3".into(),
            ..RedisConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("p%40ss-w0rd") && !debug.contains("p@ss-w0rd"),
            "{debug}"
        );
        assert!(debug.contains("alice:***@cache.internal:6380/3"), "{debug}");
    }

    #[test]
    fn cluster_urls_name_every_node_with_the_credentials() {
        let config = RedisConfig {
            url: "redis+cluster://app:pw@10.0.0.1:7000,10.0.0.2:7001/".into(),
            ..RedisConfig::default()
        };
        assert_eq!(
            config.cluster_nodes().unwrap().unwrap(),
            [
                "redis://app:pw@10.0.0.1:7000",
                "redis://app:pw@10.0.0.2:7001"
            ]
        );
        let tls = RedisConfig {
            url: "rediss+cluster://h:7000".into(),
            ..RedisConfig::default()
        };
        assert_eq!(tls.cluster_nodes().unwrap().unwrap(), ["rediss://h:7000"]);
        assert!(RedisConfig::default().cluster_nodes().is_none());
        for bad in [
            "redis+cluster://h:7000/2",
            "redis+cluster://h:7000?x=1",
            "redis+cluster://",
        ] {
            let bad = RedisConfig {
                url: bad.into(),
                ..RedisConfig::default()
            };
            assert!(bad.cluster_nodes().unwrap().is_err(), "{}", bad.url);
        }
        // kv's one URL rule: the user-info ends at the last `@`.
        let slash = RedisConfig {
            url: "redis+cluster://u:a/b@c@h:7000".into(),
            ..RedisConfig::default()
        };
        assert_eq!(
            slash.cluster_nodes().unwrap().unwrap(),
            ["redis://u:a/b@c@h:7000"]
        );
    }

    #[test]
    fn deserializes_with_defaults() {
        let config: RedisConfig = serde_json::from_str(r#"{"url": "redis://h"}"#).unwrap();
        assert_eq!(config.response_timeout(), DEFAULT_RESPONSE_TIMEOUT);
        assert_eq!(config.purge_interval(), Some(DEFAULT_PURGE_INTERVAL));
        assert!(serde_json::from_str::<RedisConfig>(r#"{"urll": "x"}"#).is_err());
    }
}

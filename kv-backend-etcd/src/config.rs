//! [`EtcdConfig`]: how to reach etcd, the key prefix and the server's limits.

use std::fmt;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use crate::error::config_error;

/// etcd's default `--max-txn-ops`: the most operations in one Txn.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// etcd's default `--max-request-bytes`: 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default timeout of one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The configuration of an [`EtcdStore`](crate::EtcdStore); deserializable
/// from a config file. Its `Debug` hides the password.
///
/// ```
/// use kv_backend_etcd::EtcdConfig;
///
/// let config: EtcdConfig = serde_json::from_str(
///     r#"{"endpoints": ["10.0.0.1:2379", "10.0.0.2:2379"], "user": "app", "password": "s3cret",
///         "key_prefix": "app/"}"#,
/// )?;
/// assert_eq!(config.max_txn_ops, 128);
/// assert!(!format!("{config:?}").contains("s3cret"));
///
/// let from_url = EtcdConfig::from_url("etcd://app:s3cret@h1:2379,h2:2379?prefix=app/").unwrap();
/// assert_eq!(from_url.endpoints, ["h1:2379", "h2:2379"]);
/// assert_eq!(from_url.key_prefix, "app/");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdConfig {
    /// The cluster's client endpoints: `host:port`, or `http://host:port`
    /// (`https://` with [`tls`](Self::tls)). Requests are balanced over them.
    pub endpoints: Vec<String>,
    /// The etcd user, when the cluster has auth enabled.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// TLS to the endpoints; `None` is plain HTTP/2.
    pub tls: Option<EtcdTls>,
    /// Prepended to every key in etcd, so several stores can share one
    /// cluster; listing sees only keys under it.
    pub key_prefix: String,
    /// How long connecting to an endpoint may take, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How long one request (a whole Txn) may take, in milliseconds.
    pub request_timeout_ms: u64,
    /// The server's `--max-txn-ops`: a batch over it is `BatchTooLarge`
    /// before any I/O.
    pub max_txn_ops: usize,
    /// The server's `--max-request-bytes`: a batch whose request would be
    /// larger is `BatchTooLarge`, a single value that could not fit is
    /// `ValueTooLarge`, both before any I/O.
    pub max_request_bytes: usize,
    /// Serve reads from the contacted member without a quorum round
    /// (serializable reads): faster, but may return stale data. Default
    /// `false` (linearizable reads).
    pub serializable_reads: bool,
}

/// TLS settings of an [`EtcdConfig`]: PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdTls {
    /// The CA certificate that signed the servers' certificates; `None`
    /// trusts the system's roots.
    pub ca_file: Option<String>,
    /// The client certificate, for clusters that require client auth.
    pub cert_file: Option<String>,
    /// The client certificate's private key.
    pub key_file: Option<String>,
    /// The name to check the servers' certificates against, when it is not
    /// the endpoint's host.
    pub domain: Option<String>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            endpoints: vec!["127.0.0.1:2379".to_owned()],
            user: None,
            password: None,
            tls: None,
            key_prefix: String::new(),
            connect_timeout_ms: millis(DEFAULT_CONNECT_TIMEOUT),
            request_timeout_ms: millis(DEFAULT_REQUEST_TIMEOUT),
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            serializable_reads: false,
        }
    }
}

pub(crate) use kv_core::backend::millis;

impl EtcdConfig {
    /// Parses `etcd://[user:password@]host:port[,host:port...][?options]`,
    /// or `etcds://` for TLS. Options: `prefix`, `serializable=true`,
    /// `max_txn_ops`, `max_request_bytes`, `connect_timeout_ms`,
    /// `request_timeout_ms`, and for TLS `ca_file`, `cert_file`, `key_file`,
    /// `domain`. User and password are percent-decoded.
    ///
    /// # Errors
    ///
    /// `Config` naming what is wrong; the message never contains the URL.
    pub fn from_url(url: &str) -> kv_core::Result<Self> {
        let parts = kv_core::UrlParts::parse(url)
            .ok_or_else(|| config_error("an etcd URL starts with etcd:// or etcds://"))?;
        let tls = match parts.scheme.to_ascii_lowercase().as_str() {
            "etcd" => false,
            "etcds" => true,
            _ => return Err(config_error("an etcd URL starts with etcd:// or etcds://")),
        };
        if parts.fragment.is_some() {
            return Err(config_error(
                "an etcd URL has no #fragment (write a # in a password as %23)",
            ));
        }
        if !parts.path.trim_start_matches('/').is_empty() {
            return Err(config_error(
                "an etcd URL has no path: set the key prefix with ?prefix=",
            ));
        }
        let mut config = Self::default();
        if let Some((user, password)) = parts.user_password() {
            config.user = Some(decode("user", user)?);
            config.password = Some(decode("password", password.unwrap_or_default())?);
        }
        config.endpoints = parts
            .hosts
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
        if config.endpoints.is_empty() {
            return Err(config_error("an etcd URL names at least one host:port"));
        }
        let mut tls = tls.then(EtcdTls::default);
        for (name, value) in parts.query_pairs() {
            let value = decode(name, value)?;
            config.set_option(name, value, &mut tls)?;
        }
        config.tls = tls;
        Ok(config)
    }

    fn set_option(
        &mut self,
        name: &str,
        value: String,
        tls: &mut Option<EtcdTls>,
    ) -> kv_core::Result<()> {
        let number = |value: &str| {
            value.parse::<u64>().map_err(|_| {
                config_error(format!("the etcd URL option {name} takes a whole number"))
            })
        };
        fn tls_only<'a>(
            name: &str,
            tls: &'a mut Option<EtcdTls>,
        ) -> kv_core::Result<&'a mut EtcdTls> {
            tls.as_mut()
                .ok_or_else(|| config_error(format!("the etcd URL option {name} needs etcds://")))
        }
        match name {
            "prefix" => self.key_prefix = value,
            "serializable" => {
                self.serializable_reads = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(config_error("serializable takes true or false")),
                }
            }
            "max_txn_ops" => self.max_txn_ops = usize::try_from(number(&value)?).unwrap_or(0),
            "max_request_bytes" => {
                self.max_request_bytes = usize::try_from(number(&value)?).unwrap_or(usize::MAX)
            }
            "connect_timeout_ms" => self.connect_timeout_ms = number(&value)?,
            "request_timeout_ms" => self.request_timeout_ms = number(&value)?,
            "ca_file" => tls_only(name, tls)?.ca_file = Some(value),
            "cert_file" => tls_only(name, tls)?.cert_file = Some(value),
            "key_file" => tls_only(name, tls)?.key_file = Some(value),
            "domain" => tls_only(name, tls)?.domain = Some(value),
            _ => {
                return Err(config_error(format!(
                    "unknown etcd URL option {name:?} (known: prefix, serializable, max_txn_ops, \
                     max_request_bytes, connect_timeout_ms, request_timeout_ms, ca_file, \
                     cert_file, key_file, domain)"
                )));
            }
        }
        Ok(())
    }

    /// The endpoints as URLs with a scheme, `https://` under TLS.
    pub(crate) fn endpoint_urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() {
            "https://"
        } else {
            "http://"
        };
        self.endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("{scheme}{e}")
                }
            })
            .collect()
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

fn decode(what: &str, raw: &str) -> kv_core::Result<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| config_error(format!("the {what} in the etcd URL is not valid UTF-8")))
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_txn_ops", &self.max_txn_ops)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("serializable_reads", &self.serializable_reads)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_everything() {
        let config = EtcdConfig::from_url(
            "etcds://app:p%40ss@a:2379,b:2379/?prefix=svc%2F1/&serializable=true&max_txn_ops=64\
             &max_request_bytes=1000&ca_file=/etc/ca.pem&cert_file=c.pem&key_file=k.pem\
             &request_timeout_ms=250",
        )
        .unwrap();
        assert_eq!(config.endpoints, ["a:2379", "b:2379"]);
        assert_eq!(config.user.as_deref(), Some("app"));
        assert_eq!(config.password.as_deref(), Some("p@ss"));
        assert_eq!(config.key_prefix, "svc/1/");
        assert!(config.serializable_reads);
        assert_eq!((config.max_txn_ops, config.max_request_bytes), (64, 1000));
        assert_eq!(config.request_timeout(), Duration::from_millis(250));
        let tls = config.tls.as_ref().unwrap();
        assert_eq!(tls.ca_file.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(config.endpoint_urls(), ["https://a:2379", "https://b:2379"]);
        assert!(!format!("{config:?}").contains("p@ss"));
    }

    /// kv's one URL rule (`kv_core::UrlParts`): the user-info ends at the
    /// last `@`, so a password may hold `/`, `?` or `@`.
    #[test]
    fn passwords_with_url_characters_and_fragments() {
        let config = EtcdConfig::from_url("etcd://root:a/b?c@d@h:2379?prefix=p%40q/").unwrap();
        assert_eq!(config.password.as_deref(), Some("a/b?c@d"));
        assert_eq!(config.endpoints, ["h:2379"]);
        assert_eq!(config.key_prefix, "p@q/");
        assert!(EtcdConfig::from_url("etcd://root:a#b@h:2379").is_err());
    }

    #[test]
    fn schemes_are_case_insensitive() {
        let config = EtcdConfig::from_url("ETCD://h:2379").unwrap();
        assert_eq!(config.endpoint_urls(), ["http://h:2379"]);
        let config = EtcdConfig::from_url("Etcds://h:2379").unwrap();
        assert_eq!(config.endpoint_urls(), ["https://h:2379"]);
    }

    #[test]
    fn plain_url_takes_the_defaults() {
        let config = EtcdConfig::from_url("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(config.endpoint_urls(), ["http://127.0.0.1:2379"]);
        assert_eq!(config.user, None);
        assert_eq!(config.max_txn_ops, DEFAULT_MAX_TXN_OPS);
        assert_eq!(config.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
        assert!(config.tls.is_none() && !config.serializable_reads);
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        for bad in [
            "http://h:2379",
            "etcd://",
            "etcd://u:hunter2@h:1/path",
            "etcd://u:hunter2@h:1?bogus=1",
            "etcd://u:hunter2@h:1?ca_file=x",
            "etcd://u:hunter2@h:1?max_txn_ops=many",
        ] {
            let err = EtcdConfig::from_url(bad).unwrap_err();
            assert_eq!(err.kind(), kv_core::ErrorKind::Config, "{bad}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}

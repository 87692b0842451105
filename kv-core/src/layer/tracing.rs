//! [`TracingLayer`]: one `tracing` span per call.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::{Call, Layer, layered_store};
use crate::error::Result;
use crate::store::KvStore;

/// Opens one `tracing` span (target `kv`, level INFO, name `kv`) per call,
/// with field names from OpenTelemetry's database conventions:
///
/// | field | value |
/// |---|---|
/// | `otel.name`, `db.operation.name` | the operation: `get`, `batch_set`, ... |
/// | `otel.kind` | `client` |
/// | `db.system` | [`db_system`] of the backend: `redis`, `postgresql`, ... |
/// | `db.operation.batch.size` | keys in a batch call |
/// | `kv.outcome` | `ok`, or the error's [`code`](crate::ErrorKind::code) |
/// | `error.type`, `otel.status_code` | the error's code and `ERROR`, on failure |
/// | `kv.latency_us` | the call's duration in microseconds |
/// | `kv.key`, `kv.prefix` | the key or list prefix, only after [`with_keys`](Self::with_keys) |
///
/// Values never appear in a span, nor do error messages (they may name a
/// key); a retry inside the span is an event of the retry layer.
///
/// When no subscriber wants the span, the layer does nothing but check.
///
/// ```
/// use kv_core::{Kv, MemoryStore, TracingLayer};
///
/// let kv = Kv::new(MemoryStore::new().into_dyn()).layer(TracingLayer::new());
/// # let _ = kv;
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingLayer {
    keys: bool,
}

impl TracingLayer {
    /// Spans without keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the key of single-key calls (`kv.key`) and the prefix of
    /// `list` (`kv.prefix`). Keys may be personal data: opt in knowingly.
    pub fn with_keys(mut self, on: bool) -> Self {
        self.keys = on;
        self
    }
}

impl Layer for TracingLayer {
    fn layer(&self, inner: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        Arc::new(TracingStore {
            system: db_system(inner.backend()),
            inner,
            keys: self.keys,
        })
    }
}

/// A store wrapped in a [`TracingLayer`].
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
#[derive(Debug)]
pub struct TracingStore {
    inner: Arc<dyn KvStore>,
    system: &'static str,
    keys: bool,
}

impl TracingStore {
    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn KvStore> {
        &self.inner
    }

    async fn around<T>(
        &self,
        call: Call<'_>,
        request: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let operation = call.operation.as_str();
        let span = tracing::info_span!(
            target: "kv",
            "kv",
            otel.name = operation,
            otel.kind = "client",
            db.system = self.system,
            db.operation.name = operation,
            db.operation.batch.size = Empty,
            kv.key = Empty,
            kv.prefix = Empty,
            kv.outcome = Empty,
            kv.latency_us = Empty,
            "error.type" = Empty,
            otel.status_code = Empty,
        );
        if span.is_disabled() {
            return request.await;
        }
        if call.operation.is_batch() {
            span.record("db.operation.batch.size", call.keys as u64);
        }
        if self.keys {
            if let Some(key) = call.key {
                span.record("kv.key", key);
            }
            if let Some(prefix) = call.prefix {
                span.record("kv.prefix", prefix);
            }
        }
        let started = Instant::now();
        let result = request.instrument(span.clone()).await;
        record_outcome(&span, &result, started);
        result
    }
}

fn record_outcome<T>(span: &Span, result: &Result<T>, started: Instant) {
    span.record(
        "kv.latency_us",
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    match result {
        Ok(_) => {
            span.record("kv.outcome", "ok");
        }
        Err(error) => {
            let code = error.kind().code();
            span.record("kv.outcome", code);
            span.record("error.type", code);
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// The OpenTelemetry `db.system` name of a kv backend: `postgresql` for
/// `postgres`, `mongodb` for `mongo`, the backend's own name otherwise
/// (`redis`, `rocksdb`, `etcd`, `memory`).
///
/// ```
/// assert_eq!(kv_core::db_system("postgres"), "postgresql");
/// assert_eq!(kv_core::db_system("redis"), "redis");
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub fn db_system(backend: &'static str) -> &'static str {
    match backend {
        "postgres" => "postgresql",
        "mongo" => "mongodb",
        other => other,
    }
}

layered_store!(TracingStore, once);

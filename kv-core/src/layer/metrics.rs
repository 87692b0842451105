//! [`MetricsLayer`]: counts and durations through the `metrics` facade.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use super::{Call, Layer, layered_store};
use crate::error::Result;
use crate::store::KvStore;

/// Reports every call through the [`metrics`](https://docs.rs/metrics)
/// facade, to whatever recorder the application installed (Prometheus,
/// StatsD, ...):
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `kv_operations_total` | counter | `backend`, `operation`, `outcome` (`ok` or the error's [`code`](crate::ErrorKind::code)) |
/// | `kv_operation_duration_seconds` | histogram | `backend`, `operation` |
/// | `kv_batch_size` | histogram (keys) | `backend`, `operation`, batch calls only |
/// | `kv_retries_total` | counter | `backend`, `operation`, from the [`RetryLayer`](crate::RetryLayer) |
///
/// Labels are static strings: no key, value or message is ever a label.
///
/// ```
/// use kv_core::{Kv, MemoryStore, MetricsLayer};
///
/// let kv = Kv::new(MemoryStore::new().into_dyn()).layer(MetricsLayer::new());
/// # let _ = kv;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer {
    _private: (),
}

impl MetricsLayer {
    /// The layer; describes its metrics to the recorder installed now.
    pub fn new() -> Self {
        describe_counter!(
            "kv_operations_total",
            "kv store calls by backend, operation and outcome"
        );
        describe_histogram!(
            "kv_operation_duration_seconds",
            Unit::Seconds,
            "kv store call duration"
        );
        describe_histogram!("kv_batch_size", Unit::Count, "keys per kv batch call");
        describe_counter!(
            "kv_retries_total",
            "kv store calls repeated after a temporary error"
        );
        Self { _private: () }
    }
}

impl Layer for MetricsLayer {
    fn layer(&self, inner: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        Arc::new(MetricsStore { inner })
    }
}

/// A store wrapped in a [`MetricsLayer`].
#[derive(Debug)]
pub struct MetricsStore {
    inner: Arc<dyn KvStore>,
}

impl MetricsStore {
    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn KvStore> {
        &self.inner
    }

    async fn around<T>(
        &self,
        call: Call<'_>,
        request: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let started = Instant::now();
        let result = request.await;
        let backend = self.inner.backend();
        let operation = call.operation.as_str();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind().code(),
        };
        counter!(
            "kv_operations_total",
            "backend" => backend,
            "operation" => operation,
            "outcome" => outcome,
        )
        .increment(1);
        histogram!(
            "kv_operation_duration_seconds",
            "backend" => backend,
            "operation" => operation,
        )
        .record(started.elapsed().as_secs_f64());
        if call.operation.is_batch() {
            histogram!("kv_batch_size", "backend" => backend, "operation" => operation)
                .record(call.keys as f64);
        }
        result
    }
}

layered_store!(MetricsStore, once);

//! [`MetricsLayer`]: counts and durations through the `metrics` facade.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use metrics::{Counter, Histogram, Unit, counter, describe_counter, describe_histogram, histogram};

use super::{Call, Layer, layered_store};
use crate::error::{Operation, Result};
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
/// The handles for successful calls are registered when the layer wraps a
/// store, so a call costs a few atomic adds rather than a registry lookup:
/// **install the recorder before adding the layer** (a layer built earlier
/// reports its successful calls to no recorder).
///
/// ```
/// use kv_core::{Kv, MemoryStore, MetricsLayer};
///
/// let kv = Kv::new(MemoryStore::new().into_dyn()).layer(MetricsLayer::new());
/// # let _ = kv;
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
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
        let backend = inner.backend();
        let mut handles: Vec<Option<Handles>> = Vec::new();
        for operation in OPERATIONS {
            let index = operation as usize;
            if handles.len() <= index {
                handles.resize_with(index + 1, || None);
            }
            handles[index] = Some(Handles::new(backend, operation, "ok"));
        }
        Arc::new(MetricsStore { inner, handles })
    }
}

/// The operations a store call can be.
const OPERATIONS: [Operation; 17] = [
    Operation::Get,
    Operation::Set,
    Operation::Delete,
    Operation::Exists,
    Operation::List,
    Operation::BatchGet,
    Operation::BatchGetWithTtl,
    Operation::BatchSet,
    Operation::BatchDelete,
    Operation::WriteBatch,
    Operation::CompareAndSwap,
    Operation::GetVersioned,
    Operation::BatchGetVersioned,
    Operation::WriteIf,
    Operation::Transact,
    Operation::Increment,
    Operation::Health,
];

/// The metrics of one operation's successful calls.
struct Handles {
    calls: Counter,
    duration: Histogram,
    batch_size: Option<Histogram>,
}

impl Handles {
    /// The metrics of `operation`'s calls ending in `outcome`.
    fn new(backend: &'static str, operation: Operation, outcome: &'static str) -> Self {
        let name = operation.as_str();
        Self {
            calls: counter!(
                "kv_operations_total",
                "backend" => backend,
                "operation" => name,
                "outcome" => outcome,
            ),
            duration: histogram!(
                "kv_operation_duration_seconds",
                "backend" => backend,
                "operation" => name,
            ),
            batch_size: operation
                .is_batch()
                .then(|| histogram!("kv_batch_size", "backend" => backend, "operation" => name)),
        }
    }

    fn record(&self, seconds: f64, keys: usize) {
        self.calls.increment(1);
        self.duration.record(seconds);
        if let Some(batch_size) = &self.batch_size {
            batch_size.record(keys as f64);
        }
    }
}

/// A store wrapped in a [`MetricsLayer`].
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub struct MetricsStore {
    inner: Arc<dyn KvStore>,
    /// Indexed by `Operation as usize`.
    handles: Vec<Option<Handles>>,
}

impl std::fmt::Debug for MetricsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
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
        let seconds = started.elapsed().as_secs_f64();
        let handles = self
            .handles
            .get(call.operation as usize)
            .and_then(Option::as_ref);
        match (&result, handles) {
            (Ok(_), Some(handles)) => handles.record(seconds, call.keys),
            // Errors (and any operation without handles): through the
            // registry, labelled with the error's kind.
            (result, _) => {
                let outcome = result.as_ref().map_or_else(|e| e.kind().code(), |_| "ok");
                Handles::new(self.inner.backend(), call.operation, outcome)
                    .record(seconds, call.keys);
            }
        }
        result
    }
}

layered_store!(MetricsStore, once);

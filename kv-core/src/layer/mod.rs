//! Layers: stores that wrap a store to add retries, deadlines, a
//! concurrency limit, tracing or metrics, without changing what it does.
//!
//! (The order they go in is on [`Layer`].)

mod limit;
#[cfg(feature = "metrics")]
mod metrics;
mod retry;
mod timeout;
#[cfg(feature = "tracing")]
mod tracing;

use std::sync::Arc;

use crate::error::Operation;
use crate::key::Key;
use crate::store::KvStore;

pub use limit::{ConcurrencyLimitLayer, ConcurrencyLimitStore};
#[cfg(feature = "metrics")]
pub use metrics::{MetricsLayer, MetricsStore};
pub use retry::{RetryLayer, RetryStore};
pub use timeout::{TimeoutLayer, TimeoutStore};
#[cfg(feature = "tracing")]
pub use tracing::{TracingLayer, TracingStore, db_system};

/// Wraps a store in another store, as tower's `Layer` wraps a service.
///
/// A layer takes an `Arc<dyn KvStore>` and returns one.
/// [`Kv::layer`](crate::Kv::layer) (or
/// [`Layer::layer`] on a raw store) wraps what is there: **the layer added
/// last is the outermost**, the first to see a call. Every layer forwards
/// `backend()` and `capabilities()` unchanged and returns the inner store's
/// results as they are.
///
/// The order that does what one expects, innermost first:
///
/// 1. [`ConcurrencyLimitLayer`]: bounds the calls in flight to the server.
/// 2. [`TimeoutLayer`]: a deadline per attempt, including the wait for a
///    permit of the limit, so nothing hangs.
/// 3. [`RetryLayer`]: repeats an attempt that failed with a temporary error
///    (a timed-out attempt included), with backoff.
/// 4. `MetricsLayer` (feature `metrics`): one count and one duration per
///    call as the application made it; retries are counted by the retry
///    layer itself.
/// 5. `TracingLayer` (feature `tracing`): one span per call, the retry
///    layer's events inside it.
///
/// ```
/// use std::time::Duration;
/// use kv_core::{ConcurrencyLimitLayer, Kv, MemoryStore, RetryLayer, TimeoutLayer};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let kv = Kv::new(MemoryStore::new().into_dyn())
///     .layer(ConcurrencyLimitLayer::new(64))
///     .layer(TimeoutLayer::new(Duration::from_secs(2)).batch(Duration::from_secs(10)))
///     .layer(RetryLayer::new().max_retries(3));
/// kv.set("visits", &1).await?;
/// assert_eq!(kv.get::<u32>("visits").await?, Some(1));
/// assert_eq!(kv.store().backend(), "memory"); // layers are invisible
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
///
/// Implement it for your own wrapper: return a store that forwards
/// `backend()` and `capabilities()` and every operation to `inner`.
pub trait Layer {
    /// The store `inner` wrapped in this layer.
    fn layer(&self, inner: Arc<dyn KvStore>) -> Arc<dyn KvStore>;
}

impl<L: Layer + ?Sized> Layer for &L {
    fn layer(&self, inner: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        (**self).layer(inner)
    }
}

/// What a layer knows about the call it wraps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) operation: Operation,
    /// Keys in the request: 1 for single-key calls, the input's length for
    /// batches, 0 for `list` and `health` (read by the tracing and metrics
    /// layers).
    #[cfg_attr(not(any(feature = "tracing", feature = "metrics")), allow(dead_code))]
    pub(crate) keys: usize,
    /// The key of a single-key call.
    pub(crate) key: Option<&'a str>,
    /// The prefix of a `list` (read by the tracing layer).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) prefix: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub(crate) fn key(operation: Operation, key: &'a Key) -> Self {
        Self {
            operation,
            keys: 1,
            key: Some(key.as_str()),
            prefix: None,
        }
    }

    pub(crate) fn batch(operation: Operation, keys: usize) -> Self {
        Self {
            operation,
            keys,
            key: None,
            prefix: None,
        }
    }

    pub(crate) fn list(prefix: &'a str) -> Self {
        Self {
            operation: Operation::List,
            keys: 0,
            key: None,
            prefix: Some(prefix),
        }
    }

    pub(crate) fn health() -> Self {
        Self::batch(Operation::Health, 0)
    }
}

/// Implements `KvStore` for a wrapper with a field `inner: Arc<dyn KvStore>`
/// and a method `around(call, ...)` that every operation goes through:
///
/// - `once`: `around(Call, future)` runs the inner call's future once;
/// - `retry`: `around(Call, closure)` may call the closure again; each call
///   makes a new inner request (a batch is lent to the inner store's
///   `*_borrowed` method, other inputs are cloned).
///
/// Every method of the trait is forwarded, so no operation can skip the
/// layer.
macro_rules! layered_store {
    ($ty:ty, $mode:ident) => {
        #[$crate::backend::async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl $crate::KvStore for $ty {
            fn backend(&self) -> &'static str {
                self.inner.backend()
            }

            fn capabilities(&self) -> $crate::Capabilities {
                self.inner.capabilities()
            }

            async fn get(&self, key: &$crate::Key) -> $crate::Result<Option<$crate::Bytes>> {
                let call = $crate::layer::Call::key($crate::Operation::Get, key);
                layered_store!(@run $mode, self, call, self.inner.get(key))
            }

            async fn set(
                &self,
                key: &$crate::Key,
                value: $crate::Bytes,
                options: $crate::SetOptions,
            ) -> $crate::Result<()> {
                let call = $crate::layer::Call::key($crate::Operation::Set, key);
                layered_store!(@run $mode, self, call,
                    self.inner.set(key, layered_store!(@arg $mode, value), options))
            }

            async fn delete(&self, key: &$crate::Key) -> $crate::Result<bool> {
                let call = $crate::layer::Call::key($crate::Operation::Delete, key);
                layered_store!(@run $mode, self, call, self.inner.delete(key))
            }

            async fn exists(&self, key: &$crate::Key) -> $crate::Result<bool> {
                let call = $crate::layer::Call::key($crate::Operation::Exists, key);
                layered_store!(@run $mode, self, call, self.inner.exists(key))
            }

            async fn list(
                &self,
                prefix: &str,
                options: $crate::ListOptions,
            ) -> $crate::Result<$crate::Page> {
                let call = $crate::layer::Call::list(prefix);
                layered_store!(@run $mode, self, call,
                    self.inner.list(prefix, layered_store!(@arg $mode, options)))
            }

            async fn batch_get(
                &self,
                keys: &[$crate::Key],
            ) -> $crate::Result<Vec<Option<$crate::Bytes>>> {
                let call = $crate::layer::Call::batch($crate::Operation::BatchGet, keys.len());
                layered_store!(@run $mode, self, call, self.inner.batch_get(keys))
            }

            async fn batch_get_with_ttl(
                &self,
                keys: &[$crate::Key],
            ) -> $crate::Result<Vec<Option<$crate::Entry>>> {
                let call =
                    $crate::layer::Call::batch($crate::Operation::BatchGetWithTtl, keys.len());
                layered_store!(@run $mode, self, call, self.inner.batch_get_with_ttl(keys))
            }

            async fn batch_set(&self, entries: Vec<$crate::Entry>) -> $crate::Result<()> {
                let call = $crate::layer::Call::batch($crate::Operation::BatchSet, entries.len());
                layered_store!(@owned $mode, self, call, entries, batch_set, batch_set_borrowed)
            }

            async fn batch_set_borrowed(&self, entries: &[$crate::Entry]) -> $crate::Result<()> {
                let call = $crate::layer::Call::batch($crate::Operation::BatchSet, entries.len());
                layered_store!(@run $mode, self, call, self.inner.batch_set_borrowed(entries))
            }

            async fn batch_delete(&self, keys: &[$crate::Key]) -> $crate::Result<u64> {
                let call = $crate::layer::Call::batch($crate::Operation::BatchDelete, keys.len());
                layered_store!(@run $mode, self, call, self.inner.batch_delete(keys))
            }

            async fn write_batch(&self, ops: Vec<$crate::WriteOp>) -> $crate::Result<()> {
                let call = $crate::layer::Call::batch($crate::Operation::WriteBatch, ops.len());
                layered_store!(@owned $mode, self, call, ops, write_batch, write_batch_borrowed)
            }

            async fn write_batch_borrowed(&self, ops: &[$crate::WriteOp]) -> $crate::Result<()> {
                let call = $crate::layer::Call::batch($crate::Operation::WriteBatch, ops.len());
                layered_store!(@run $mode, self, call, self.inner.write_batch_borrowed(ops))
            }

            async fn compare_and_swap(
                &self,
                key: &$crate::Key,
                expected: Option<$crate::Bytes>,
                new: Option<$crate::Bytes>,
                options: $crate::SetOptions,
            ) -> $crate::Result<bool> {
                let call = $crate::layer::Call::key($crate::Operation::CompareAndSwap, key);
                layered_store!(@run $mode, self, call, self.inner.compare_and_swap(
                    key,
                    layered_store!(@arg $mode, expected),
                    layered_store!(@arg $mode, new),
                    options,
                ))
            }

            async fn get_versioned(
                &self,
                key: &$crate::Key,
            ) -> $crate::Result<Option<$crate::Versioned>> {
                let call = $crate::layer::Call::key($crate::Operation::GetVersioned, key);
                layered_store!(@run $mode, self, call, self.inner.get_versioned(key))
            }

            async fn batch_get_versioned(
                &self,
                keys: &[$crate::Key],
            ) -> $crate::Result<Vec<Option<$crate::Versioned>>> {
                let call =
                    $crate::layer::Call::batch($crate::Operation::BatchGetVersioned, keys.len());
                layered_store!(@run $mode, self, call, self.inner.batch_get_versioned(keys))
            }

            async fn write_if(
                &self,
                key: &$crate::Key,
                condition: $crate::Condition,
                new: Option<$crate::Bytes>,
                options: $crate::SetOptions,
            ) -> $crate::Result<bool> {
                let call = $crate::layer::Call::key($crate::Operation::WriteIf, key);
                layered_store!(@run $mode, self, call, self.inner.write_if(
                    key,
                    layered_store!(@arg $mode, condition),
                    layered_store!(@arg $mode, new),
                    options,
                ))
            }

            async fn transact(
                &self,
                txn: &$crate::Transaction,
            ) -> $crate::Result<$crate::TxnOutcome> {
                let keys = txn.checks().len() + txn.writes().len();
                let call = $crate::layer::Call::batch($crate::Operation::Transact, keys);
                layered_store!(@run $mode, self, call, self.inner.transact(txn))
            }

            async fn increment(
                &self,
                key: &$crate::Key,
                delta: i64,
                options: $crate::SetOptions,
            ) -> $crate::Result<i64> {
                let call = $crate::layer::Call::key($crate::Operation::Increment, key);
                layered_store!(@run $mode, self, call, self.inner.increment(key, delta, options))
            }

            async fn health(&self) -> $crate::Result<$crate::Health> {
                let call = $crate::layer::Call::health();
                layered_store!(@run $mode, self, call, self.inner.health())
            }
        }
    };
    (@run once, $self:ident, $call:expr, $request:expr) => {
        $self.around($call, $request).await
    };
    (@run retry, $self:ident, $call:expr, $request:expr) => {
        $self.around($call, || $request).await
    };
    (@owned once, $self:ident, $call:expr, $batch:ident, $owned:ident, $borrowed:ident) => {
        $self.around($call, $self.inner.$owned($batch)).await
    };
    // Every attempt lends the caller's batch: nothing is copied.
    (@owned retry, $self:ident, $call:expr, $batch:ident, $owned:ident, $borrowed:ident) => {
        $self.around($call, || $self.inner.$borrowed(&$batch)).await
    };
    (@arg once, $value:expr) => {
        $value
    };
    (@arg retry, $value:expr) => {
        $value.clone()
    };
}

pub(crate) use layered_store;

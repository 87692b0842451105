//! [`ConcurrencyLimitLayer`]: at most N calls in flight.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{Call, Layer, layered_store};
use crate::error::{Error, ErrorKind, Result};
use crate::store::KvStore;

/// Lets at most `limit` calls run against the inner store at once; further
/// calls wait, in order, for one to finish. One limit is shared by every
/// clone of the wrapped store (and of a [`Kv`](crate::Kv) over it).
///
/// Put a [`TimeoutLayer`](crate::TimeoutLayer) outside it to bound the wait
/// as well as the call.
///
/// ```
/// use kv_core::{ConcurrencyLimitLayer, Kv, MemoryStore};
///
/// let kv = Kv::new(MemoryStore::new().into_dyn()).layer(ConcurrencyLimitLayer::new(32));
/// # let _ = kv;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ConcurrencyLimitLayer {
    limit: usize,
}

impl ConcurrencyLimitLayer {
    /// At most `limit` calls in flight (at least 1).
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl Layer for ConcurrencyLimitLayer {
    fn layer(&self, inner: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        Arc::new(ConcurrencyLimitStore::new(inner, self.limit))
    }
}

/// A store wrapped in a [`ConcurrencyLimitLayer`].
#[derive(Debug)]
pub struct ConcurrencyLimitStore {
    inner: Arc<dyn KvStore>,
    permits: Semaphore,
    limit: usize,
}

impl ConcurrencyLimitStore {
    /// `inner` with at most `limit` calls in flight (at least 1).
    pub fn new(inner: Arc<dyn KvStore>, limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            inner,
            permits: Semaphore::new(limit),
            limit,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn KvStore> {
        &self.inner
    }

    /// The most calls in flight at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many more calls could start now without waiting.
    pub fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }

    async fn around<T>(
        &self,
        call: Call<'_>,
        request: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        // The semaphore is never closed, so acquiring fails only if that
        // changes; say so rather than panic.
        let _permit = self.permits.acquire().await.map_err(|_closed| {
            Error::new(ErrorKind::Backend, self.inner.backend(), call.operation)
                .with_message("the concurrency limit was closed")
        })?;
        request.await
    }
}

layered_store!(ConcurrencyLimitStore, once);

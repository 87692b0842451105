//! [`TimeoutLayer`]: a deadline per call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{Call, Layer, layered_store};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::store::KvStore;

/// Ends every call that has not answered within its deadline with
/// [`ErrorKind::Timeout`] (temporary), never a hang. Batches (`batch_*`,
/// `write_batch`) may have a deadline of their own.
///
/// A write that timed out may or may not have been applied: the request
/// may have reached the server before the deadline. The inner call is
/// dropped at the deadline, which closes or discards its connection as the
/// driver does for a cancelled request.
///
/// ```
/// use std::time::Duration;
/// use kv_core::{Kv, MemoryStore, TimeoutLayer};
///
/// let kv = Kv::new(MemoryStore::new().into_dyn())
///     .layer(TimeoutLayer::new(Duration::from_millis(500)).batch(Duration::from_secs(5)));
/// # let _ = kv;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    single: Duration,
    batch: Duration,
}

impl TimeoutLayer {
    /// A deadline of `deadline` for every call, batches included.
    pub fn new(deadline: Duration) -> Self {
        Self {
            single: deadline,
            batch: deadline,
        }
    }

    /// A deadline of its own for batches (`batch_get`,
    /// `batch_get_with_ttl`, `batch_set`, `batch_delete`, `write_batch`).
    pub fn batch(mut self, deadline: Duration) -> Self {
        self.batch = deadline;
        self
    }

    /// The deadline of `operation`.
    pub fn deadline(&self, operation: Operation) -> Duration {
        if operation.is_batch() {
            self.batch
        } else {
            self.single
        }
    }
}

impl Layer for TimeoutLayer {
    fn layer(&self, inner: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        Arc::new(TimeoutStore {
            inner,
            deadlines: *self,
        })
    }
}

/// A store wrapped in a [`TimeoutLayer`].
#[derive(Debug)]
pub struct TimeoutStore {
    inner: Arc<dyn KvStore>,
    deadlines: TimeoutLayer,
}

impl TimeoutStore {
    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn KvStore> {
        &self.inner
    }

    async fn around<T>(
        &self,
        call: Call<'_>,
        request: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let deadline = self.deadlines.deadline(call.operation);
        match tokio::time::timeout(deadline, request).await {
            Ok(result) => result,
            Err(_elapsed) => {
                let error = Error::new(ErrorKind::Timeout, self.inner.backend(), call.operation)
                    .with_message(format!(
                        "no answer within the deadline of {} ms",
                        deadline.as_millis()
                    ));
                Err(match call.key {
                    Some(key) => error.with_key(key),
                    None => error,
                })
            }
        }
    }
}

layered_store!(TimeoutStore, once);

//! [`RetryLayer`]: repeats calls that failed with a temporary error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

// Tokio's clock: the same as std's, and paused with it in tests.
use tokio::time::Instant;

use super::{Call, Layer, layered_store};
use crate::backoff;
use crate::error::{Error, Operation, Result};
use crate::store::KvStore;

/// Retries calls whose error [`is_temporary`](Error::is_temporary), with
/// exponential backoff and full jitter, at most
/// [`max_retries`](Self::max_retries) times and never starting a pause that
/// would end past [`max_elapsed`](Self::max_elapsed) since the first
/// attempt. A permanent error (a bad key, a refused password, a decode
/// failure) is returned at once.
///
/// What is retried, honestly:
///
/// - Reads (`get`, `exists`, `list`, `batch_get*`, `health`) and the
///   idempotent writes `set`, `batch_set` and `write_batch`: repeating them
///   leaves the store as one successful call would.
/// - `delete` and `batch_delete` are retried too; when a first attempt
///   removed keys but its answer was lost, the retry finds them gone, so
///   the count returned after a retry **may be low** (the keys are gone
///   either way).
/// - `compare_and_swap` is **not** retried once the request may have
///   reached the server: a repeated swap would compare against its own
///   write and report `false` for a swap that happened. It is retried only
///   when the error is marked [`request_unsent`](Error::request_unsent)
///   (the connection was refused, nothing was sent).
/// - `write_if`, `transact` and `increment` likewise: a repeated
///   conditional write or transaction would check against its own write
///   and report a conflict for one that committed, and a repeated increment
///   would count twice. After a temporary error once the request may have
///   been sent, the caller gets the error: the write **may or may not**
///   have happened (read to find out; an increment's answer is lost).
///   The versioned reads are retried like any read.
///
/// Each retry emits a `tracing` event (target `kv`, feature `tracing`) and
/// increments the `kv_retries_total` counter (feature `metrics`), labelled
/// by backend and operation.
///
/// ```
/// use std::time::Duration;
/// use kv_core::{Kv, MemoryStore, RetryLayer};
///
/// let retry = RetryLayer::new()
///     .max_retries(5)
///     .backoff(Duration::from_millis(20), Duration::from_millis(500))
///     .max_elapsed(Duration::from_secs(3));
/// let kv = Kv::new(MemoryStore::new().into_dyn()).layer(retry);
/// # let _ = kv;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RetryLayer {
    max_retries: u32,
    first_backoff: Duration,
    max_backoff: Duration,
    max_elapsed: Duration,
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryLayer {
    /// At most 3 retries, backoff ceilings 50 ms, 100 ms, 200 ms (at most
    /// 2 s), no retry pause ending past 10 s after the first attempt.
    pub fn new() -> Self {
        Self {
            max_retries: 3,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
        }
    }

    /// How many times one call may be repeated (0: never).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first retry's backoff ceiling, doubled for each further retry up
    /// to `max`; each pause is random below its ceiling.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// No pause is started that would end later than this after the first
    /// attempt: a bound on the time spent retrying (attempts themselves are
    /// bounded by a [`TimeoutLayer`](crate::TimeoutLayer) inside).
    pub fn max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = max;
        self
    }
}

impl Layer for RetryLayer {
    fn layer(&self, inner: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        Arc::new(RetryStore {
            inner,
            policy: *self,
        })
    }
}

/// A store wrapped in a [`RetryLayer`].
#[derive(Debug)]
pub struct RetryStore {
    inner: Arc<dyn KvStore>,
    policy: RetryLayer,
}

impl RetryStore {
    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn KvStore> {
        &self.inner
    }

    async fn around<T, F, Fut>(&self, call: Call<'_>, mut request: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        let started = Instant::now();
        let mut retries = 0;
        loop {
            let error = match request().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if retries >= self.policy.max_retries || !may_repeat(call.operation, &error) {
                return Err(error);
            }
            retries += 1;
            let pause = backoff::delay(self.policy.first_backoff, self.policy.max_backoff, retries);
            if started.elapsed() + pause > self.policy.max_elapsed {
                return Err(error);
            }
            announce(&call, &error, retries, pause);
            tokio::time::sleep(pause).await;
        }
    }
}

/// Whether a call that failed with `error` may be made again.
fn may_repeat(operation: Operation, error: &Error) -> bool {
    match operation {
        Operation::CompareAndSwap
        | Operation::WriteIf
        | Operation::Transact
        | Operation::Increment => error.is_temporary() && error.request_unsent(),
        _ => error.is_temporary(),
    }
}

/// Makes a retry visible to tracing and metrics, where they are compiled in.
#[cfg_attr(
    not(any(feature = "tracing", feature = "metrics")),
    allow(unused_variables)
)]
fn announce(call: &Call<'_>, error: &Error, retry: u32, pause: Duration) {
    #[cfg(feature = "tracing")]
    ::tracing::warn!(
        target: "kv",
        retry = retry,
        pause_ms = pause.as_millis() as u64,
        db.system = super::db_system(error.backend()),
        db.operation.name = call.operation.as_str(),
        "error.type" = error.kind().code(),
        "retrying after a temporary error"
    );
    #[cfg(feature = "metrics")]
    ::metrics::counter!(
        "kv_retries_total",
        "backend" => error.backend(),
        "operation" => call.operation.as_str(),
    )
    .increment(1);
}

layered_store!(RetryStore, retry);

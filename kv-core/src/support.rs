//! Helpers for backend crates: connect and request timeouts, retried
//! reads, certificate errors, hashing, periodic maintenance tasks.

use std::future::Future;
use std::time::Duration;

/// Runs a backend's `connecting` future for at most `timeout`: a server
/// that accepts the connection but never answers (or a handshake that
/// hangs) ends as a temporary `Unavailable` error of
/// [`Operation::Connect`](crate::Operation::Connect) naming the timeout,
/// instead of waiting for a longer driver deadline.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use kv_core::ErrorKind;
/// use kv_core::backend::connect_within;
///
/// let never = std::future::pending::<kv_core::Result<()>>();
/// let err = connect_within("demo", Duration::from_millis(10), never).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Unavailable);
/// assert!(err.is_temporary());
/// # }
/// ```
///
/// # Errors
///
/// `connecting`'s error, or `Unavailable` when the timeout passed.
pub async fn connect_within<T>(
    backend: &'static str,
    timeout: Duration,
    connecting: impl Future<Output = crate::Result<T>>,
) -> crate::Result<T> {
    match tokio::time::timeout(timeout, connecting).await {
        Ok(done) => done,
        Err(_) => Err(crate::Error::new(
            crate::ErrorKind::Unavailable,
            backend,
            crate::Operation::Connect,
        )
        .with_message(format!(
            "the server did not answer within the connect timeout ({timeout:?})"
        ))),
    }
}

/// `d` in whole milliseconds, saturating at `u64::MAX` (config fields and
/// TTLs kept as milliseconds).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(kv_core::backend::millis(Duration::from_micros(2_500)), 2);
/// assert_eq!(kv_core::backend::millis(Duration::MAX), u64::MAX);
/// ```
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// 64-bit FNV-1a of `bytes`: a stable hash (the same in every process and
/// version) for spreading keys over buckets or lock stripes.
///
/// ```
/// assert_eq!(kv_core::backend::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(kv_core::backend::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs one call of `backend` for at most `timeout`: a call still waiting
/// then ends as a temporary [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) of `op` naming the
/// timeout (the request timeout of backends whose driver has none of its
/// own per call).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use kv_core::{ErrorKind, Operation};
///
/// let never = std::future::pending::<kv_core::Result<()>>();
/// let err = kv_core::backend::within("demo", Operation::Get, Duration::from_millis(5), never)
///     .await
///     .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Timeout);
/// # }
/// ```
///
/// # Errors
///
/// `call`'s error, or `Timeout`.
pub async fn within<T>(
    backend: &'static str,
    op: crate::Operation,
    timeout: Duration,
    call: impl Future<Output = crate::Result<T>>,
) -> crate::Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(done) => done,
        Err(_) => Err(
            crate::Error::new(crate::ErrorKind::Timeout, backend, op).with_message(format!(
                "no answer within the request timeout ({timeout:?})"
            )),
        ),
    }
}

/// Runs a read, and once more when its error says the connection broke
/// (`broken`): drivers that reconnect by themselves answer the second
/// time. Only for reads: whether a write that failed this way applied is
/// unknown, and sending it again could apply it twice.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// let calls = AtomicU32::new(0);
/// let read = || async { if calls.fetch_add(1, Ordering::SeqCst) == 0 { Err("reset") } else { Ok(7) } };
/// let got = kv_core::backend::read_retrying_once(read, |e: &&str| *e == "reset").await;
/// assert_eq!((got, calls.load(Ordering::SeqCst)), (Ok(7), 2));
/// # }
/// ```
///
/// # Errors
///
/// The second attempt's error, or the first one's when it is not `broken`.
pub async fn read_retrying_once<T, E, F, Fut>(
    run: F,
    broken: impl Fn(&E) -> bool,
) -> std::result::Result<T, E>
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    match run().await {
        Err(e) if broken(&e) => run().await,
        other => other,
    }
}

/// Whether a driver's error (or any error in its source chain) says the
/// server's TLS certificate was not trusted: signed by a CA the client does
/// not trust, expired, or for another name. rustls and OpenSSL word it
/// differently, and some drivers keep only the text (MongoDB's server
/// selection error describes the topology), so this reads the messages.
/// Backends map such errors to `PermissionDenied`, not temporary: retrying
/// cannot help.
///
/// ```
/// let io = std::io::Error::other("invalid peer certificate: UnknownIssuer");
/// assert!(kv_core::backend::is_untrusted_certificate(&io));
/// assert!(!kv_core::backend::is_untrusted_certificate(&std::io::Error::other("connection refused")));
/// ```
pub fn is_untrusted_certificate(err: &(dyn std::error::Error + 'static)) -> bool {
    const SIGNS: [&str; 5] = [
        "invalid peer certificate",
        "certificate verify failed",
        "unknownissuer",
        "unknown ca",
        "notvalidforname",
    ];
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string().to_ascii_lowercase();
        if SIGNS.iter().any(|sign| text.contains(sign)) {
            return true;
        }
        next = e.source();
    }
    false
}

/// The error for a driver error that [`is_untrusted_certificate`]:
/// `PermissionDenied`, not temporary (retrying cannot help), keeping the
/// driver's error as its source.
///
/// ```
/// use kv_core::backend::untrusted_certificate_error;
/// use kv_core::{ErrorKind, Operation};
///
/// let io = std::io::Error::other("invalid peer certificate: UnknownIssuer");
/// let err = untrusted_certificate_error("demo", Operation::Connect, io);
/// assert_eq!(err.kind(), ErrorKind::PermissionDenied);
/// assert!(!err.is_temporary());
/// ```
pub fn untrusted_certificate_error(
    backend: &'static str,
    op: crate::Operation,
    source: impl Into<crate::BoxError>,
) -> crate::Error {
    crate::Error::new(crate::ErrorKind::PermissionDenied, backend, op)
        .with_temporary(false)
        .with_message("the server's TLS certificate is not trusted (check the CA file)")
        .with_source(source)
}

/// What a [`PeriodicTask`] has done so far: how many runs, how many
/// failed, and the last failure's message. A backend exposes it for its
/// background purge, so a purge that always fails (a missing permission)
/// is seen instead of growing the data for ever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskStatus {
    /// Runs finished.
    pub runs: u64,
    /// Runs that failed.
    pub failures: u64,
    /// Failures since the last run that succeeded.
    pub consecutive_failures: u64,
    /// The last failure's error, as displayed (never holds a secret), and
    /// its kind.
    pub last_error: Option<(crate::ErrorKind, String)>,
}

/// A background task that runs a fallible job every `every` on the current
/// Tokio runtime until the handle is dropped. Backends use it for expiry
/// purges. A failed run is counted in [`status`](Self::status), logged as
/// a `tracing` warning (feature `tracing`), and tried again at the next
/// tick.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use kv_core::backend::PeriodicTask;
/// use kv_core::{Error, ErrorKind, Operation};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let runs = Arc::new(AtomicU32::new(0));
/// let counter = runs.clone();
/// let task = PeriodicTask::spawn("demo purge", Duration::from_secs(10), move || {
///     let n = counter.fetch_add(1, Ordering::SeqCst);
///     async move {
///         match n {
///             0 => Err(Error::new(ErrorKind::PermissionDenied, "demo", Operation::Maintenance)),
///             _ => Ok(()),
///         }
///     }
/// });
/// // Paused time: the sleep jumps ahead once every task is idle.
/// tokio::time::sleep(Duration::from_secs(25)).await;
/// let status = task.status();
/// assert_eq!((status.runs, status.failures, status.consecutive_failures), (2, 1, 0));
/// assert_eq!(status.last_error.map(|(kind, _)| kind), Some(ErrorKind::PermissionDenied));
/// drop(task); // stops it
/// tokio::time::sleep(Duration::from_secs(60)).await;
/// assert_eq!(runs.load(Ordering::SeqCst), 2);
/// # });
/// ```
#[derive(Debug)]
pub struct PeriodicTask {
    handle: tokio::task::JoinHandle<()>,
    status: std::sync::Arc<std::sync::Mutex<TaskStatus>>,
}

impl PeriodicTask {
    /// Spawns `job` to run every `every` (at least 1 ms: a zero interval
    /// is taken as 1 ms rather than a panic), the first time after one
    /// interval. A run that takes longer than the interval delays the next
    /// one. `name` names the task in warnings.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn spawn<F, Fut>(name: &'static str, every: Duration, mut job: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = crate::Result<()>> + Send + 'static,
    {
        let status = std::sync::Arc::new(std::sync::Mutex::new(TaskStatus::default()));
        let shared = status.clone();
        let every = every.max(Duration::from_millis(1));
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate
            loop {
                tick.tick().await;
                let result = job().await;
                let mut status = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                status.runs += 1;
                match result {
                    Ok(()) => status.consecutive_failures = 0,
                    Err(error) => {
                        status.failures += 1;
                        status.consecutive_failures += 1;
                        #[cfg(feature = "tracing")]
                        tracing::warn!(
                            task = name,
                            error = %error,
                            consecutive_failures = status.consecutive_failures,
                            "kv background task failed; it runs again at the next interval"
                        );
                        #[cfg(not(feature = "tracing"))]
                        let _ = name;
                        status.last_error = Some((error.kind(), error.to_string()));
                    }
                }
            }
        });
        Self { handle, status }
    }

    /// What the task has done so far.
    pub fn status(&self) -> TaskStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for PeriodicTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

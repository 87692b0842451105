//! Helpers for backend crates: connect timeouts, certificate errors and
//! periodic maintenance tasks.

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
/// use kv_core::{ErrorKind, connect_within};
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
/// assert!(kv_core::is_untrusted_certificate(&io));
/// assert!(!kv_core::is_untrusted_certificate(&std::io::Error::other("connection refused")));
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
/// use kv_core::{ErrorKind, Operation, untrusted_certificate_error};
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

/// A background task that runs a job every `every` on the current Tokio
/// runtime until the handle is dropped. Backends use it for expiry purges.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use kv_core::PeriodicTask;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let runs = Arc::new(AtomicU32::new(0));
/// let counter = runs.clone();
/// let task = PeriodicTask::spawn(Duration::from_millis(10), move || {
///     let counter = counter.clone();
///     async move { counter.fetch_add(1, Ordering::SeqCst); }
/// });
/// tokio::time::sleep(Duration::from_millis(55)).await;
/// drop(task); // stops it
/// let seen = runs.load(Ordering::SeqCst);
/// assert!(seen >= 2);
/// tokio::time::sleep(Duration::from_millis(30)).await;
/// assert_eq!(runs.load(Ordering::SeqCst), seen);
/// # });
/// ```
#[derive(Debug)]
pub struct PeriodicTask(tokio::task::JoinHandle<()>);

impl PeriodicTask {
    /// Spawns `job` to run every `every`, the first time after one interval.
    /// A run that takes longer than the interval delays the next one.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn spawn<F, Fut>(every: Duration, mut job: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate
            loop {
                tick.tick().await;
                job().await;
            }
        });
        Self(handle)
    }
}

impl Drop for PeriodicTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

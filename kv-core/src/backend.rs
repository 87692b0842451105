//! What a backend crate uses to implement [`KvStore`](crate::KvStore):
//! the [`Validator`] every operation calls first, the stored value format
//! of backends that keep the expiry with the value ([`stamp`]), background
//! tasks ([`PeriodicTask`]), connect and TLS error helpers, and
//! [`async_trait`](macro@async_trait) for the trait's methods. Applications do not need it;
//! the facade keeps it under `kv::backend`.

pub mod stamp;

pub use async_trait::async_trait;

pub use crate::support::{
    PeriodicTask, TaskStatus, connect_within, is_untrusted_certificate, untrusted_certificate_error,
};
pub use crate::validate::{CheckedEntry, CheckedOp, ListRange, Validator};

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Operation, Result};

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
/// then ends as a temporary [`ErrorKind::Timeout`] of `op` naming the
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
    op: Operation,
    timeout: Duration,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(done) => done,
        Err(_) => Err(
            Error::new(ErrorKind::Timeout, backend, op).with_message(format!(
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

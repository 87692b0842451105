//! What a backend crate uses to implement [`KvStore`](crate::KvStore):
//! the [`Validator`] every operation calls first, the stored value format
//! of backends that keep the expiry with the value ([`stamp`]), background
//! tasks ([`PeriodicTask`]), connect, timeout, retry and TLS error
//! helpers, and [`async_trait`](macro@async_trait) for the trait's
//! methods. Applications do not need it; the facade keeps it under
//! `kv::backend`.

pub mod counter;
pub mod sql;
pub mod stamp;

pub use async_trait::async_trait;

pub use crate::backoff::RaceBackoff;

pub use crate::support::{
    PeriodicTask, TaskStatus, connect_within, fnv1a, is_untrusted_certificate, millis,
    read_retrying_once, untrusted_certificate_error, within,
};
pub use crate::validate::{CheckedEntry, CheckedOp, ListRange, Validator, split_writes};

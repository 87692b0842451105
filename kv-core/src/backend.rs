//! What a backend crate uses to implement [`KvStore`](crate::KvStore):
//! the [`Validator`] every operation calls first, the stored value format
//! of backends that keep the expiry with the value ([`stamp`]), background
//! tasks ([`PeriodicTask`]), connect and TLS error helpers, and
//! [`async_trait`] for the trait's methods. Applications do not need it;
//! the facade keeps it under `kv::backend`.

pub mod stamp;

pub use async_trait::async_trait;

pub use crate::support::{
    PeriodicTask, TaskStatus, connect_within, is_untrusted_certificate, untrusted_certificate_error,
};
pub use crate::validate::{CheckedEntry, CheckedOp, ListRange, Validator};

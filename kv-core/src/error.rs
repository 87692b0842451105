//! The one error type of kv: [`Error`], classified by [`ErrorKind`].

use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

static HIDE_KEYS: AtomicBool = AtomicBool::new(false);

/// Keeps keys out of the `Display` and `Debug` of every [`Error`] in this
/// process from now on (`true`), or shows them again (`false`; the
/// default). A hidden key shows as `key hidden, N bytes`.
///
/// Call it once at start-up when keys are secrets of their own (session
/// ids, tokens, e-mail addresses) and errors go to logs: an error then
/// still says what failed, on which backend and how long the key was, and
/// code can still read the key with [`Error::key`]. (The tracing layer
/// records keys only when asked, with `TracingLayer::with_keys`.)
///
/// ```
/// use kv_core::{Error, ErrorKind, Operation};
///
/// let err = Error::new(ErrorKind::Decode, "redis", Operation::Get).with_key("session:4f9a");
/// kv_core::hide_keys_in_errors(true);
/// assert_eq!(err.to_string(), "redis get: decode failed (key hidden, 12 bytes)");
/// assert!(!format!("{err:?}").contains("4f9a"));
/// assert_eq!(err.key(), Some("session:4f9a"));
/// kv_core::hide_keys_in_errors(false);
/// ```
pub fn hide_keys_in_errors(hide: bool) {
    HIDE_KEYS.store(hide, Ordering::Relaxed);
}

/// Whether [`hide_keys_in_errors`] is on.
pub fn keys_hidden_in_errors() -> bool {
    HIDE_KEYS.load(Ordering::Relaxed)
}

/// A boxed error source, as carried by [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// `Result<T, kv_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, independent of the backend.
///
/// New kinds may be added; match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The key (or list prefix) is empty, longer than 1024 bytes or has NUL.
    /// Raised before any I/O.
    InvalidKey,
    /// An argument other than a key is out of range: a zero TTL, a list
    /// limit of zero. Raised before any I/O.
    InvalidArgument,
    /// A value exceeds [`Capabilities::max_value_bytes`](crate::Capabilities).
    /// Raised before any I/O.
    ValueTooLarge,
    /// A batch exceeds [`Capabilities::max_batch_ops`](crate::Capabilities)
    /// and the backend cannot make it atomic; nothing was written.
    BatchTooLarge,
    /// The backend cannot do this (a TTL on a backend without expiry, CAS
    /// where it cannot be atomic). Nothing was written.
    Unsupported,
    /// A typed value could not be encoded by the codec.
    Encode,
    /// A stored value could not be decoded as the requested type. Names the key.
    Decode,
    /// The operation did not complete in time. Temporary.
    Timeout,
    /// The server could not be reached or dropped the connection. Temporary.
    Unavailable,
    /// The server refused the credentials or the operation.
    PermissionDenied,
    /// The configuration or URL is invalid, or names a backend whose cargo
    /// feature is off.
    Config,
    /// Any other error reported by the backend or its driver.
    Backend,
    /// [`increment`](crate::KvStore::increment) found a value that is not a
    /// counter (a decimal 64-bit integer); nothing was written. Names the
    /// key.
    NotACounter,
    /// [`increment`](crate::KvStore::increment) would take the counter
    /// past `i64::MAX` or `i64::MIN`; nothing was written. Names the key.
    Overflow,
    /// A read-modify-write ([`Kv::update`](crate::Kv::update)) lost the race
    /// on every attempt: other writers changed the key each time. Nothing
    /// was written by the last attempt; try again later.
    Conflict,
}

impl ErrorKind {
    /// A short lower-case description of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid key",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::ValueTooLarge => "value too large",
            ErrorKind::BatchTooLarge => "batch too large",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Encode => "encode failed",
            ErrorKind::Decode => "decode failed",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Config => "configuration error",
            ErrorKind::Backend => "backend error",
            ErrorKind::NotACounter => "not a counter",
            ErrorKind::Overflow => "counter overflow",
            ErrorKind::Conflict => "conflict",
        }
    }

    /// The kind as a `snake_case` identifier (`"timeout"`, `"invalid_key"`),
    /// stable for metric labels and the `error.type` tracing field.
    ///
    /// ```
    /// use kv_core::ErrorKind;
    ///
    /// assert_eq!(ErrorKind::PermissionDenied.code(), "permission_denied");
    /// ```
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::ValueTooLarge => "value_too_large",
            ErrorKind::BatchTooLarge => "batch_too_large",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Encode => "encode",
            ErrorKind::Decode => "decode",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Config => "config",
            ErrorKind::Backend => "backend",
            ErrorKind::NotACounter => "not_a_counter",
            ErrorKind::Overflow => "overflow",
            ErrorKind::Conflict => "conflict",
        }
    }

    /// Whether errors of this kind are worth retrying by default.
    pub fn is_temporary(self) -> bool {
        matches!(self, ErrorKind::Timeout | ErrorKind::Unavailable)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation an [`Error`] happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Checking input before any I/O (a key built outside any operation).
    Validate,
    /// Opening or configuring a store.
    Connect,
    /// [`KvStore::get`](crate::KvStore::get).
    Get,
    /// [`KvStore::set`](crate::KvStore::set).
    Set,
    /// [`KvStore::delete`](crate::KvStore::delete).
    Delete,
    /// [`KvStore::exists`](crate::KvStore::exists).
    Exists,
    /// [`KvStore::list`](crate::KvStore::list).
    List,
    /// [`KvStore::batch_get`](crate::KvStore::batch_get).
    BatchGet,
    /// [`KvStore::batch_get_with_ttl`](crate::KvStore::batch_get_with_ttl).
    BatchGetWithTtl,
    /// [`KvStore::batch_set`](crate::KvStore::batch_set).
    BatchSet,
    /// [`KvStore::batch_delete`](crate::KvStore::batch_delete).
    BatchDelete,
    /// [`KvStore::write_batch`](crate::KvStore::write_batch).
    WriteBatch,
    /// [`KvStore::compare_and_swap`](crate::KvStore::compare_and_swap).
    CompareAndSwap,
    /// [`KvStore::get_versioned`](crate::KvStore::get_versioned).
    GetVersioned,
    /// [`KvStore::batch_get_versioned`](crate::KvStore::batch_get_versioned).
    BatchGetVersioned,
    /// [`KvStore::write_if`](crate::KvStore::write_if).
    WriteIf,
    /// [`KvStore::transact`](crate::KvStore::transact).
    Transact,
    /// [`KvStore::increment`](crate::KvStore::increment).
    Increment,
    /// [`Kv::update`](crate::Kv::update): the read-modify-write loop.
    Update,
    /// [`KvStore::health`](crate::KvStore::health).
    Health,
    /// A backend's own maintenance (expiry purge, reindex).
    Maintenance,
}

impl Operation {
    /// The operation's name as in the API (`batch_get`, `compare_and_swap`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Validate => "validate",
            Operation::Connect => "connect",
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Delete => "delete",
            Operation::Exists => "exists",
            Operation::List => "list",
            Operation::BatchGet => "batch_get",
            Operation::BatchGetWithTtl => "batch_get_with_ttl",
            Operation::BatchSet => "batch_set",
            Operation::BatchDelete => "batch_delete",
            Operation::WriteBatch => "write_batch",
            Operation::CompareAndSwap => "compare_and_swap",
            Operation::GetVersioned => "get_versioned",
            Operation::BatchGetVersioned => "batch_get_versioned",
            Operation::WriteIf => "write_if",
            Operation::Transact => "transact",
            Operation::Increment => "increment",
            Operation::Update => "update",
            Operation::Health => "health",
            Operation::Maintenance => "maintenance",
        }
    }

    /// Whether the operation reads or writes many keys at once (`batch_*`,
    /// `write_batch`).
    ///
    /// ```
    /// use kv_core::Operation;
    ///
    /// assert!(Operation::WriteBatch.is_batch());
    /// assert!(!Operation::Get.is_batch());
    /// ```
    pub fn is_batch(self) -> bool {
        matches!(
            self,
            Operation::BatchGet
                | Operation::BatchGetWithTtl
                | Operation::BatchSet
                | Operation::BatchDelete
                | Operation::WriteBatch
                | Operation::BatchGetVersioned
                | Operation::Transact
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every kv operation.
///
/// It carries an [`ErrorKind`] to match on, the backend's name, the
/// [`Operation`], the key where one applies, an optional message and the
/// driver's error as [`source`](StdError::source). Its `Display` and `Debug`
/// never contain a password, token or credentialed URL: backends map their
/// driver's errors in one function that guarantees it.
///
/// ```
/// use kv_core::{Error, ErrorKind, Operation};
///
/// let err = Error::new(ErrorKind::Unavailable, "redis", Operation::Get)
///     .with_key("users/1")
///     .with_message("connection refused");
/// assert!(err.is_temporary());
/// assert_eq!(err.key(), Some("users/1"));
/// assert_eq!(err.to_string(), "redis get: unavailable (key \"users/1\"): connection refused");
/// ```
pub struct Error {
    kind: ErrorKind,
    backend: &'static str,
    operation: Operation,
    key: Option<String>,
    message: Option<String>,
    temporary: Option<bool>,
    unsent: bool,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind`, raised by `backend` during `operation`.
    pub fn new(kind: ErrorKind, backend: &'static str, operation: Operation) -> Self {
        Self {
            kind,
            backend,
            operation,
            key: None,
            message: None,
            temporary: None,
            unsent: false,
            source: None,
        }
    }

    /// Names the key the error concerns. `Display` and `Debug` show it
    /// unless [`hide_keys_in_errors`] is on.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a human-readable explanation. It must not contain secrets.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Attaches the underlying error. It must not render secrets.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Overrides whether the error is worth retrying (by default
    /// [`ErrorKind::is_temporary`]).
    pub fn with_temporary(mut self, temporary: bool) -> Self {
        self.temporary = Some(temporary);
        self
    }

    /// Marks that the request never left the client (the connection was
    /// refused, the pool had no connection): nothing can have been applied,
    /// so even a non-idempotent call such as `compare_and_swap` may be
    /// repeated. Without this mark an error says nothing either way.
    pub fn with_request_unsent(mut self) -> Self {
        self.unsent = true;
        self
    }

    /// Replaces the backend name and operation, keeping everything else.
    /// Used when a validation error raised by a shared helper surfaces
    /// through a backend operation.
    pub fn in_context(mut self, backend: &'static str, operation: Operation) -> Self {
        self.backend = backend;
        self.operation = operation;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The backend that raised the error (`"memory"`, `"redis"`, ...).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The key the error concerns, if any.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The explanation, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// Whether retrying the same operation may succeed (timeouts, dropped
    /// connections, transaction conflicts). Retry layers retry only these.
    pub fn is_temporary(&self) -> bool {
        self.temporary.unwrap_or_else(|| self.kind.is_temporary())
    }

    /// Whether the request is known never to have reached the server (see
    /// [`with_request_unsent`](Self::with_request_unsent)); `false` means it
    /// may have. The retry layer repeats a failed `compare_and_swap` only
    /// when this is `true`.
    pub fn request_unsent(&self) -> bool {
        self.unsent
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.backend, self.operation, self.kind)?;
        match &self.key {
            Some(key) if keys_hidden_in_errors() => {
                write!(f, " (key hidden, {} bytes)", key.len())?;
            }
            Some(key) => write!(f, " (key {key:?})")?,
            None => {}
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("backend", &self.backend)
            .field("operation", &self.operation);
        match &self.key {
            Some(key) if keys_hidden_in_errors() => {
                d.field("key", &format_args!("<hidden, {} bytes>", key.len()));
            }
            Some(key) => {
                d.field("key", key);
            }
            None => {}
        }
        if let Some(message) = &self.message {
            d.field("message", message);
        }
        d.field("temporary", &self.is_temporary());
        if self.unsent {
            d.field("request_unsent", &true);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_follows_kind_unless_overridden() {
        let timeout = Error::new(ErrorKind::Timeout, "x", Operation::Get);
        assert!(timeout.is_temporary());
        let conflict = Error::new(ErrorKind::Backend, "x", Operation::Set).with_temporary(true);
        assert!(conflict.is_temporary());
        assert!(!Error::new(ErrorKind::Decode, "x", Operation::Get).is_temporary());
    }

    #[test]
    fn display_includes_source_and_source_is_reachable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::new(ErrorKind::Unavailable, "redis", Operation::Health).with_source(io);
        assert_eq!(err.to_string(), "redis health: unavailable: refused");
        assert!(StdError::source(&err).is_some());
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}

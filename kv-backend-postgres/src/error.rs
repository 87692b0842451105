//! The one place that maps `sqlx::Error` to [`kv_core::Error`].

use kv_core::{Error, ErrorKind, Operation};

pub(crate) const BACKEND: &str = "postgres";

/// Maps a driver error by its kind and SQLSTATE:
///
/// - pool timeout, I/O, TLS, a connection closed during TLS negotiation, `08xxx` connection exceptions, `57P01`-`57P03`
///   shutdowns, `53300` too many connections: `Unavailable`, temporary;
/// - `57014` (statement timeout, cancel): `Timeout`;
/// - `28xxx` (authentication) and `42501` (privilege): `PermissionDenied`;
/// - `40001` serialization failure and `40P01` deadlock: `Backend`, temporary;
/// - configuration errors: `Config`; anything else: `Backend`.
///
/// sqlx's messages carry no password (authentication errors name the user
/// only), and connection URLs are never put into errors.
pub(crate) fn map_sqlx_error(op: Operation, err: sqlx::Error) -> Error {
    if kv_core::backend::is_untrusted_certificate(&err) {
        return kv_core::backend::untrusted_certificate_error(BACKEND, op, err);
    }
    let (kind, temporary) = match &err {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            (ErrorKind::Unavailable, true)
        }
        // A connection closed before the server's one-byte answer to the
        // SSLRequest: sqlx 0.8 reads the end of the stream as the byte
        // 0x00 and reports a protocol error. It is a lost connection.
        sqlx::Error::Protocol(message) if message.contains("response from SSLRequest: 0x00") => {
            (ErrorKind::Unavailable, true)
        }
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => (ErrorKind::Unavailable, false),
        sqlx::Error::Configuration(_) => (ErrorKind::Config, false),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if code.starts_with("08") => (ErrorKind::Unavailable, true),
            Some("57P01" | "57P02" | "57P03" | "53300") => (ErrorKind::Unavailable, true),
            Some("57014") => (ErrorKind::Timeout, true),
            Some(code) if code.starts_with("28") => (ErrorKind::PermissionDenied, false),
            Some("42501") => (ErrorKind::PermissionDenied, false),
            Some("40001" | "40P01") => (ErrorKind::Backend, true),
            _ => (ErrorKind::Backend, false),
        },
        _ => (ErrorKind::Backend, false),
    };
    Error::new(kind, BACKEND, op)
        .with_temporary(temporary)
        .with_source(err)
}

/// A configuration error that never echoes the URL.
pub(crate) fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, Operation::Connect).with_message(message)
}

//! The one place that maps `sqlx::Error` to [`kv_core::Error`].

use kv_core::{Error, ErrorKind, Operation};
use sqlx::mysql::MySqlDatabaseError;

pub(crate) const BACKEND: &str = "mysql";

/// `ER_LOCK_DEADLOCK`: InnoDB rolled the transaction back; it may run again.
pub(crate) const DEADLOCK: u16 = 1213;
/// `ER_LOCK_WAIT_TIMEOUT`: a row lock was not granted in time.
pub(crate) const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `ER_DUP_ENTRY`: the key exists.
pub(crate) const DUPLICATE_KEY: u16 = 1062;

/// The server's error number, when the error is the server's.
pub(crate) fn number(err: &sqlx::Error) -> Option<u16> {
    match err {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number),
        _ => None,
    }
}

/// Maps a driver error by its kind and the server's error number:
///
/// - pool timeout, I/O, TLS, `1040` too many connections, `1053` server
///   shutdown, `1317` query interrupted, `1927` connection killed, `2002`,
///   `2006`, `2013` lost connections: `Unavailable`, temporary;
/// - `1205` lock wait timeout, `1969` (MariaDB) and `3024` (MySQL)
///   statement time limits: `Timeout`, temporary;
/// - `1213` deadlock: `Backend`, temporary (the server rolled back);
/// - `1044`, `1045`, `1142`, `1143`, `1227`, `1370`, `3159` (access
///   denied, TLS required): `PermissionDenied`;
/// - `1153` a packet over `max_allowed_packet`: `BatchTooLarge` (the store
///   checks the size before sending, so only a server whose limit shrank
///   answers this);
/// - configuration errors: `Config`; anything else: `Backend`.
///
/// sqlx's messages carry no password (access denied names the user only),
/// and connection URLs are never put into errors.
pub(crate) fn map_sqlx_error(op: Operation, err: sqlx::Error) -> Error {
    if kv_core::backend::is_untrusted_certificate(&err) {
        return kv_core::backend::untrusted_certificate_error(BACKEND, op, err);
    }
    let (kind, temporary) = match &err {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            (ErrorKind::Unavailable, true)
        }
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => (ErrorKind::Unavailable, false),
        sqlx::Error::Configuration(_) => (ErrorKind::Config, false),
        sqlx::Error::Database(_) => match number(&err) {
            Some(1040 | 1053 | 1317 | 1927 | 2002 | 2006 | 2013) => (ErrorKind::Unavailable, true),
            Some(LOCK_WAIT_TIMEOUT | 1969 | 3024) => (ErrorKind::Timeout, true),
            Some(DEADLOCK) => (ErrorKind::Backend, true),
            Some(1044 | 1045 | 1142 | 1143 | 1227 | 1370 | 3159) => {
                (ErrorKind::PermissionDenied, false)
            }
            Some(1153) => (ErrorKind::BatchTooLarge, false),
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

//! The one place that maps `sqlx::Error` to [`kv_core::Error`].

use kv_core::{Error, ErrorKind, Operation};

pub(crate) const BACKEND: &str = "sqlite";

/// Maps a driver error by SQLite's primary result code:
///
/// - `SQLITE_BUSY` (5: another connection, or another process, held the
///   write lock for the whole busy timeout) and `SQLITE_LOCKED` (6):
///   `Timeout`, temporary;
/// - `SQLITE_READONLY` (8), `SQLITE_PERM` (3), `SQLITE_AUTH` (23):
///   `PermissionDenied`;
/// - `SQLITE_CANTOPEN` (14), `SQLITE_NOTADB` (26): `Config` (the path is
///   not a database this store can open);
/// - `SQLITE_IOERR` (10), `SQLITE_FULL` (13, disk full), `SQLITE_CORRUPT`
///   (11) and anything else: `Backend`;
/// - a pool that timed out waiting for a connection: `Timeout`, temporary;
///   a closed pool: `Unavailable`.
pub(crate) fn map_sqlx_error(op: Operation, err: sqlx::Error) -> Error {
    let (kind, temporary) = match &err {
        sqlx::Error::PoolTimedOut => (ErrorKind::Timeout, true),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => (ErrorKind::Unavailable, false),
        sqlx::Error::Configuration(_) => (ErrorKind::Config, false),
        sqlx::Error::Database(db) => match primary_code(db.code().as_deref()) {
            Some(5 | 6) => (ErrorKind::Timeout, true),
            Some(3 | 8 | 23) => (ErrorKind::PermissionDenied, false),
            Some(14 | 26) => (ErrorKind::Config, false),
            _ => (ErrorKind::Backend, false),
        },
        _ => (ErrorKind::Backend, false),
    };
    Error::new(kind, BACKEND, op)
        .with_temporary(temporary)
        .with_source(err)
}

/// The primary result code of an extended one (its low byte).
fn primary_code(code: Option<&str>) -> Option<i32> {
    code.and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff)
}

/// A configuration error (it never echoes more than the option named).
pub(crate) fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, Operation::Connect).with_message(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_codes_map_by_their_primary_code() {
        assert_eq!(primary_code(Some("517")), Some(5)); // SQLITE_BUSY_SNAPSHOT
        assert_eq!(primary_code(Some("1032")), Some(8)); // SQLITE_READONLY_DBMOVED
        assert_eq!(primary_code(Some("x")), None);
        assert_eq!(primary_code(None), None);
    }
}

//! The one place that maps `rocksdb::Error` to [`kv_core::Error`].

use std::path::Path;

use kv_core::{Error, ErrorKind, Operation};
use rocksdb::ErrorKind as RocksKind;

pub(crate) const BACKEND: &str = "rocksdb";

/// Maps a RocksDB error. A database locked by another process (or opened
/// twice in this one) is `Unavailable` naming the path; a missing database
/// with `create_if_missing` off is `Config`; `Busy`, `TryAgain` and
/// `TimedOut` are temporary; corruption and the rest are `Backend`.
pub(crate) fn map_rocksdb_error(op: Operation, path: &Path, err: rocksdb::Error) -> Error {
    let text = err.to_string();
    let (kind, temporary, message) = match err.kind() {
        RocksKind::IOError if text.contains("lock") => (
            ErrorKind::Unavailable,
            false,
            Some(format!(
                "the database at {} is in use by another process (or already open in this one)",
                path.display()
            )),
        ),
        RocksKind::InvalidArgument if text.contains("does not exist") => (
            ErrorKind::Config,
            false,
            Some(format!(
                "no database at {} and create_if_missing is off",
                path.display()
            )),
        ),
        RocksKind::Busy | RocksKind::TryAgain | RocksKind::TimedOut => {
            (ErrorKind::Backend, true, None)
        }
        RocksKind::InvalidArgument | RocksKind::NotSupported => (ErrorKind::Config, false, None),
        _ => (ErrorKind::Backend, false, None),
    };
    let mut error = Error::new(kind, BACKEND, op)
        .with_temporary(temporary)
        .with_source(err);
    if let Some(message) = message {
        error = error.with_message(message);
    }
    error
}

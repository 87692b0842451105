//! The one place that maps `mongodb` errors (and server replies) to
//! [`kv_core::Error`].

use kv_core::{Error, ErrorKind, Operation};
use mongodb::bson::{Bson, Document};
use mongodb::error::{
    Error as MongoError, ErrorKind as MongoKind, TRANSIENT_TRANSACTION_ERROR,
    UNKNOWN_TRANSACTION_COMMIT_RESULT, WriteFailure,
};

pub(crate) const BACKEND: &str = "mongo";

/// The server's duplicate-key error.
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// Maps a driver error.
///
/// - Server selection, I/O, a cleared connection pool, and the server codes
///   of a primary stepping down or shutting down are `Unavailable`
///   (temporary); `MaxTimeMSExpired` and network timeouts are `Timeout`.
/// - Authentication failures and `Unauthorized` are `PermissionDenied`.
/// - An invalid connection string or TLS setting is `Config`.
/// - Errors labelled `TransientTransactionError` or
///   `UnknownTransactionCommitResult` are temporary whatever their kind: the
///   transaction did not commit, or may be committed by a retry.
///
/// The driver's messages name hosts and users, never passwords: credentials
/// travel only inside the SCRAM conversation.
pub(crate) fn map_mongo_error(op: Operation, err: MongoError) -> Error {
    if kv_core::backend::is_untrusted_certificate(&err) {
        return kv_core::backend::untrusted_certificate_error(BACKEND, op, err);
    }
    let kind = match err.kind.as_ref() {
        MongoKind::ServerSelection { .. }
        | MongoKind::Io(_)
        | MongoKind::ConnectionPoolCleared { .. }
        | MongoKind::DnsResolve { .. }
        | MongoKind::Shutdown => ErrorKind::Unavailable,
        MongoKind::Authentication { .. } => ErrorKind::PermissionDenied,
        MongoKind::InvalidArgument { .. } | MongoKind::InvalidTlsConfig { .. } => ErrorKind::Config,
        MongoKind::Command(command) => code_kind(op, command.code),
        MongoKind::Write(WriteFailure::WriteError(write)) => code_kind(op, write.code),
        MongoKind::Write(WriteFailure::WriteConcernError(concern)) => code_kind(op, concern.code),
        _ => ErrorKind::Backend,
    };
    let transient = is_transient(&err);
    let mapped = match ServerSaid::of(&err) {
        Some((code, name, message)) => {
            let labels = err.labels().iter().cloned().collect();
            Error::new(kind, BACKEND, op).with_source(ServerSaid {
                code,
                name,
                message,
                labels,
                driver: err,
            })
        }
        None => Error::new(kind, BACKEND, op).with_source(err),
    };
    if transient && !kind.is_temporary() {
        mapped.with_temporary(true)
    } else {
        mapped
    }
}

/// A server's error shown as the server said it (code, name, message,
/// labels) instead of the driver's `Display`, which appends the raw reply
/// as hex; the driver's error stays reachable as its
/// [`source`](std::error::Error::source).
#[derive(Debug)]
struct ServerSaid {
    code: i32,
    name: String,
    message: String,
    labels: Vec<String>,
    driver: MongoError,
}

impl ServerSaid {
    /// The code, code name and message of a command, write or write
    /// concern error; `None` for other kinds of errors.
    fn of(err: &MongoError) -> Option<(i32, String, String)> {
        match err.kind.as_ref() {
            MongoKind::Command(c) => Some((c.code, c.code_name.clone(), c.message.clone())),
            MongoKind::Write(WriteFailure::WriteError(w)) => Some((
                w.code,
                w.code_name.clone().unwrap_or_default(),
                w.message.clone(),
            )),
            MongoKind::Write(WriteFailure::WriteConcernError(w)) => {
                Some((w.code, w.code_name.clone(), w.message.clone()))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for ServerSaid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server error {}", self.code)?;
        if !self.name.is_empty() {
            write!(f, " ({})", self.name)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.labels.is_empty() {
            let mut labels = self.labels.clone();
            labels.sort();
            write!(f, " [labels: {}]", labels.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerSaid {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.driver)
    }
}

/// The kind of a server error code.
pub(crate) fn code_kind(op: Operation, code: i32) -> ErrorKind {
    match code {
        // MaxTimeMSExpired, ExceededTimeLimit, NetworkTimeout, LockTimeout.
        50 | 262 | 89 | 24 => ErrorKind::Timeout,
        // HostUnreachable, HostNotFound, ShutdownInProgress, WriteConflict,
        // NoSuchTransaction, PrimarySteppedDown, SocketException,
        // NotWritablePrimary, InterruptedAtShutdown,
        // InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk,
        // NotPrimaryOrSecondary.
        6 | 7 | 91 | 112 | 251 | 189 | 9001 | 10107 | 11600 | 11602 | 13435 | 13436 => {
            ErrorKind::Unavailable
        }
        // Unauthorized, AuthenticationFailed.
        13 | 18 => ErrorKind::PermissionDenied,
        // BSONObjectTooLarge.
        10334 => {
            if op.is_batch() {
                ErrorKind::BatchTooLarge
            } else {
                ErrorKind::ValueTooLarge
            }
        }
        _ => ErrorKind::Backend,
    }
}

/// Whether running the whole transaction again may succeed.
pub(crate) fn is_transient(err: &MongoError) -> bool {
    err.contains_label(TRANSIENT_TRANSACTION_ERROR)
        || matches!(err.kind.as_ref(), MongoKind::Command(c) if c.code == 112 || c.code == 251)
}

/// Whether a commit's outcome is unknown and committing again is safe.
pub(crate) fn is_unknown_commit_result(err: &MongoError) -> bool {
    err.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
}

/// The first write error or write concern error of a write command's
/// `ok: 1` reply (the server reports a failed statement that way, not as a
/// command failure), as an error; `None` when every statement succeeded.
pub(crate) fn reply_error(op: Operation, reply: &Document) -> Option<Error> {
    let (code, message) = reply_failure(reply)?;
    Some(
        Error::new(code_kind(op, code), BACKEND, op)
            .with_message(format!("server error {code}: {message}")),
    )
}

/// The code and message of the first write error, else of the write concern
/// error, of a write command's reply.
pub(crate) fn reply_failure(reply: &Document) -> Option<(i32, &str)> {
    let first_write_error = reply
        .get_array("writeErrors")
        .ok()
        .and_then(|errors| errors.first())
        .and_then(Bson::as_document);
    let found = first_write_error.or_else(|| reply.get_document("writeConcernError").ok())?;
    let code = match found.get("code") {
        Some(Bson::Int32(code)) => *code,
        Some(Bson::Int64(code)) => i32::try_from(*code).unwrap_or(0),
        Some(Bson::Double(code)) => *code as i32,
        _ => 0,
    };
    Some((code, found.get_str("errmsg").unwrap_or("")))
}

/// A configuration error that never echoes the URL or the password.
pub(crate) fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, Operation::Connect).with_message(message)
}

/// A document in the collection that kv did not write.
pub(crate) fn malformed(op: Operation, key: &str) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, op)
        .with_key(key)
        .with_message("the stored document is not in kv's format (written by another program?)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn server_codes_map_to_kinds() {
        assert_eq!(code_kind(Operation::Set, 50), ErrorKind::Timeout);
        assert_eq!(code_kind(Operation::Set, 189), ErrorKind::Unavailable);
        assert_eq!(code_kind(Operation::Get, 13), ErrorKind::PermissionDenied);
        assert_eq!(
            code_kind(Operation::BatchSet, 10334),
            ErrorKind::BatchTooLarge
        );
        assert_eq!(code_kind(Operation::Set, 10334), ErrorKind::ValueTooLarge);
        assert_eq!(code_kind(Operation::Set, DUPLICATE_KEY), ErrorKind::Backend);
    }

    #[test]
    fn write_errors_in_an_ok_reply_are_errors() {
        let reply = doc! {
            "ok": 1.0, "n": 1,
            "writeErrors": [{"index": 1, "code": 11000, "errmsg": "E11000 duplicate key"}],
        };
        let err = reply_error(Operation::BatchSet, &reply).unwrap();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.to_string().contains("11000"), "{err}");
        let concern = doc! {"ok": 1.0, "writeConcernError": {"code": 91, "errmsg": "shutdown"}};
        assert_eq!(
            reply_error(Operation::Set, &concern).unwrap().kind(),
            ErrorKind::Unavailable
        );
        assert!(reply_error(Operation::Set, &doc! {"ok": 1.0, "n": 3}).is_none());
    }

    #[test]
    fn a_server_error_reads_as_the_server_said_it() {
        let command: mongodb::error::CommandError = mongodb::bson::from_document(doc! {
            "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary",
        })
        .unwrap();
        let driver = MongoError::from(MongoKind::Command(command));
        let err = map_mongo_error(Operation::Set, driver);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(
            err.to_string(),
            "mongo set: unavailable: server error 10107 (NotWritablePrimary): not primary"
        );
        let source = std::error::Error::source(&err).unwrap();
        let driver = source.source().unwrap();
        assert!(driver.downcast_ref::<MongoError>().is_some(), "{driver:?}");
    }
}

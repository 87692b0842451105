//! The one place that maps etcd-client errors to [`kv_core::Error`].

use etcd_client::Error as EtcdError;
use kv_core::{Error, ErrorKind, Operation};
use tonic::Code;

pub(crate) const BACKEND: &str = "etcd";

/// Maps a driver error.
///
/// - `Unavailable` (no leader, leader changed, a member that is down or
///   unreachable, a transport failure) is `Unavailable`, temporary;
///   `DeadlineExceeded` and the client's request timeout (`Cancelled`,
///   "Timeout expired") are `Timeout`.
/// - `Unauthenticated`, `PermissionDenied` and etcd's "authentication
///   failed" are `PermissionDenied`.
/// - "too many operations in txn request" and "request is too large" are
///   `BatchTooLarge` (a batch operation) or `ValueTooLarge`; validation
///   against the configured limits catches both first, so these mean the
///   server was started with smaller limits than configured.
///
/// etcd's messages carry no credentials (the password travels only in the
/// Authenticate request, the token only in request metadata).
pub(crate) fn map_etcd_error(op: Operation, err: EtcdError) -> Error {
    if kv_core::backend::is_untrusted_certificate(&err) {
        return kv_core::backend::untrusted_certificate_error(BACKEND, op, err);
    }
    let kind = match &err {
        EtcdError::GRpcStatus(status) => status_kind(op, status.code(), status.message()),
        EtcdError::TransportError(_) | EtcdError::IoError(_) => ErrorKind::Unavailable,
        EtcdError::InvalidArgs(_) | EtcdError::InvalidUri(_) | EtcdError::EndpointError(_) => {
            ErrorKind::Config
        }
        _ => ErrorKind::Backend,
    };
    Error::new(kind, BACKEND, op).with_source(err)
}

fn status_kind(op: Operation, code: Code, message: &str) -> ErrorKind {
    match code {
        // tonic's own request timeout (the store's request timeout) comes
        // back as `Cancelled` with this message.
        Code::Cancelled if message.eq_ignore_ascii_case("timeout expired") => ErrorKind::Timeout,
        Code::Unavailable | Code::Cancelled | Code::Aborted => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::Timeout,
        Code::Unauthenticated | Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::InvalidArgument | Code::FailedPrecondition
            if message.contains("authentication failed")
                || message.contains("user name is empty")
                || message.contains("invalid auth token") =>
        {
            ErrorKind::PermissionDenied
        }
        Code::InvalidArgument | Code::ResourceExhausted
            if message.contains("too many operations")
                || message.contains("request is too large")
                || message.contains("message larger than max") =>
        {
            if op.is_batch() {
                ErrorKind::BatchTooLarge
            } else {
                ErrorKind::ValueTooLarge
            }
        }
        Code::Unknown if message.contains("transport") || message.contains("connection") => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Backend,
    }
}

/// Whether etcd rejected a request because a lease it names no longer
/// exists (revoked by someone else, or a server that lost its data). The
/// request was not applied.
pub(crate) fn is_lease_not_found(err: &EtcdError) -> bool {
    matches!(err, EtcdError::GRpcStatus(status)
        if status.code() == Code::NotFound && status.message().contains("lease not found"))
}

/// A configuration error that never echoes the URL or the password.
pub(crate) fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, Operation::Connect).with_message(message)
}

/// A value under the store's prefix that kv did not write.
pub(crate) fn malformed(op: Operation, key: &str) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, op)
        .with_key(key)
        .with_message("the stored value is not in kv's format (written by another program?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_kinds() {
        let kind = |code, msg| status_kind(Operation::BatchSet, code, msg);
        assert_eq!(
            kind(Code::Unavailable, "etcdserver: leader changed"),
            ErrorKind::Unavailable
        );
        assert_eq!(kind(Code::DeadlineExceeded, ""), ErrorKind::Timeout);
        assert_eq!(
            kind(
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password"
            ),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            kind(
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request"
            ),
            ErrorKind::BatchTooLarge
        );
        assert_eq!(
            status_kind(
                Operation::Set,
                Code::InvalidArgument,
                "etcdserver: request is too large"
            ),
            ErrorKind::ValueTooLarge
        );
        assert_eq!(
            kind(
                Code::InvalidArgument,
                "etcdserver: duplicate key given in txn request"
            ),
            ErrorKind::Backend
        );
    }
}

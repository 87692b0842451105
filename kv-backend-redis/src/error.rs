//! The one place that maps `RedisError` to [`kv_core::Error`].

use kv_core::{Error, ErrorKind, Operation};
use redis::{RedisError, ServerErrorKind};

pub(crate) const BACKEND: &str = "redis";

/// Maps a driver error. Connection refused, reset or dropped is
/// `Unavailable` (temporary); timeouts are `Timeout`; authentication and ACL
/// refusals are `PermissionDenied`; a server that is loading, a read-only
/// replica or `TRYAGAIN` are temporary `Unavailable`; a refused connection
/// is also marked [`request_unsent`](Error::request_unsent). The driver's messages
/// carry no credentials (redis-rs never echoes the URL or AUTH arguments).
pub(crate) fn map_redis_error(op: Operation, err: RedisError) -> Error {
    if kv_core::backend::is_untrusted_certificate(&err) {
        return kv_core::backend::untrusted_certificate_error(BACKEND, op, err);
    }
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_connection_refusal() || err.is_connection_dropped() || err.is_io_error() {
        ErrorKind::Unavailable
    } else {
        match err.kind() {
            redis::ErrorKind::AuthenticationFailed => ErrorKind::PermissionDenied,
            redis::ErrorKind::InvalidClientConfig => ErrorKind::Config,
            redis::ErrorKind::Server(ServerErrorKind::NoPerm) => ErrorKind::PermissionDenied,
            redis::ErrorKind::Server(kind) if is_topology(kind) => ErrorKind::Unavailable,
            // A cluster node that serves the slot cannot be reached (yet).
            redis::ErrorKind::ClusterConnectionNotFound => ErrorKind::Unavailable,
            _ if aborted_by_topology(&err) => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        }
    };
    let kind = match err.code() {
        Some("NOAUTH" | "WRONGPASS" | "NOPERM") => ErrorKind::PermissionDenied,
        Some(crate::index::UNINDEXED_CODE) => {
            return Error::new(ErrorKind::Config, BACKEND, op).with_message(
                "a store without the listing index (list_index = false) wrote under this \
                 prefix, so the index may miss keys and versions may be stale: stop those \
                 writers and run RedisStore::reindex(), or open this store with \
                 list_index = false too",
            );
        }
        _ => kind,
    };
    // A refused connection carried no request: safe to repeat, even a CAS.
    let unsent = err.is_connection_refusal();
    let error = Error::new(kind, BACKEND, op);
    let error = if unsent {
        error.with_request_unsent()
    } else {
        error
    };
    error.with_source(err)
}

/// A configuration error that never echoes the URL.
/// A server or cluster state that passes: loading, a read-only replica, a
/// slot that moved or is being moved, a cluster without a quorum.
fn is_topology(kind: ServerErrorKind) -> bool {
    matches!(
        kind,
        ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
    )
}

/// A MULTI/EXEC that Redis aborted (EXECABORT: nothing of it was applied)
/// because its commands were queued on a node that no longer serves their
/// slot, as during a cluster failover: the driver follows MOVED for plain
/// commands but not inside a transaction. Sending it again once the slot
/// map is current is safe.
pub(crate) fn aborted_by_topology(err: &RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(ServerErrorKind::ExecAbort)
        && err.clone().into_server_errors().is_some_and(|errors| {
            !errors.is_empty()
                && errors
                    .iter()
                    .all(|(_, e)| e.kind().is_some_and(is_topology))
        })
}

pub(crate) fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, Operation::Connect).with_message(message)
}

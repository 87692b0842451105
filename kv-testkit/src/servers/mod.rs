//! What only one kind of server offers: clusters, replica sets, TLS,
//! passwords. One file per server.

pub(crate) mod etcd;
pub(crate) mod mongo;
pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod redis;

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod connect;
mod error;
mod lease;
mod store;
mod txn;
mod versions;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS,
    DEFAULT_REQUEST_TIMEOUT, EtcdConfig, EtcdTls,
};
pub use connect::EtcdStoreBuilder;
pub use store::EtcdStore;

/// The native driver, re-exported so applications can reach it.
pub use etcd_client;

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod buckets;
mod config;
mod conn;
mod connect;
mod error;
mod index;
mod pipeline;
mod scripts;
mod store;
mod versions;

pub use config::{
    DEFAULT_CLUSTER_BUCKETS, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PURGE_INTERVAL,
    DEFAULT_RESPONSE_TIMEOUT, RedisConfig,
};
pub use conn::RedisConnection;
pub use connect::RedisStoreBuilder;
pub use index::{ENCODING_MEMBER, PurgeReport, ReindexReport};
pub use store::{MAX_VALUE_BYTES, RedisStore};

/// The native driver, re-exported so applications can reach it.
pub use redis;

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod error;
mod index;
mod scripts;
mod store;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_PURGE_INTERVAL, DEFAULT_RESPONSE_TIMEOUT, RedisConfig,
};
pub use index::{ENCODING_MEMBER, PurgeReport, ReindexReport};
pub use store::{MAX_VALUE_BYTES, RedisStore, RedisStoreBuilder};

/// The native driver, re-exported so applications can reach it.
pub use redis;

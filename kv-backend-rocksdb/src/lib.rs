#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod error;
mod inner;
mod open;
mod store;
mod versions;

pub use config::{Compression, RocksDbConfig};
pub use open::RocksDbStoreBuilder;
pub use store::{MAX_VALUE_BYTES, RocksDbStore};

/// The native crate, re-exported so applications can reach it.
pub use rocksdb;

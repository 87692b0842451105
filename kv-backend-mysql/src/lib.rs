#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod connect;
mod error;
mod sql;
mod store;
mod versions;

pub use config::{DEFAULT_TABLE, MysqlConfig};
pub use connect::MysqlStoreBuilder;
pub use store::{MAX_VALUE_BYTES, MysqlStore};

/// The native driver, re-exported so applications can reach it.
pub use sqlx;

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod connect;
mod copy;
mod error;
mod rows;
mod sql;
mod store;
mod versions;

pub use config::{DEFAULT_TABLE, PostgresConfig};
pub use connect::PostgresStoreBuilder;
pub use store::{MAX_VALUE_BYTES, PostgresStore};

/// The native driver, re-exported so applications can reach it.
pub use sqlx;

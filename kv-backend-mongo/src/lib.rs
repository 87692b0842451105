#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod connect;
mod doc;
mod error;
mod store;
mod topology;
mod txn;
mod versions;

pub use config::{
    DEFAULT_COLLECTION, DEFAULT_DATABASE, DEFAULT_MAX_BATCH_OPS, DEFAULT_MAX_STATEMENTS,
    MongoConfig,
};
pub use connect::MongoStoreBuilder;
pub use store::MongoStore;
pub use topology::Topology;

/// The native driver, re-exported so applications can reach it.
pub use mongodb;

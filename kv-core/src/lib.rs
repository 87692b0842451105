//! The kv contract: one async key-value API with typed serde values and real
//! batch operations, over pluggable backends.
//!
//! - [`KvStore`]: the object-safe trait every backend implements (raw bytes,
//!   native batches, TTL, listing, compare-and-swap), with its contract.
//! - [`KvStoreExt`]: helpers for every store (`list_stream`, `export` with
//!   remaining TTLs, `batch_exists`, `clear`).
//! - [`BulkWriter`] and [`copy`]: loading any number of entries through
//!   native batches in bounded memory, and moving a prefix between stores
//!   with its TTLs.
//! - [`Layer`]s: retry, timeout, concurrency limit, tracing (feature
//!   `tracing`) and metrics (feature `metrics`) around any store.
//! - [`Kv`]: the typed client applications use, with [`Codec`]s
//!   ([`Json`], `MessagePack` behind the `msgpack` feature, [`Raw`]) and
//!   namespaces.
//! - [`MemoryStore`]: the in-memory reference backend.
//! - [`Key`], [`Error`]/[`ErrorKind`], [`Capabilities`], the options and
//!   batch types.
//! - [`backend`]: what backend crates use to implement [`KvStore`] (the
//!   [`Validator`](backend::Validator) every operation calls first, the
//!   stored value format, background tasks).
//!
//! Applications usually depend on the facade, package `anykv` (library
//! `kv`), which re-exports all of this and connects to a backend by URL.
//! This crate is published as `anykv-core`; its library is `kv_core`.
//!
//! ```
//! use kv_core::{Kv, MemoryStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let kv = Kv::new(MemoryStore::new().into_dyn());
//! kv.batch_set([("a", 1), ("b", 2)]).await?;
//! assert_eq!(kv.batch_get::<i32, _>(["b", "missing", "a"]).await?, [Some(2), None, Some(1)]);
//! assert!(kv.compare_and_swap("a", Some(&1), Some(&10)).await?);
//! # Ok::<(), kv_core::Error>(())
//! # });
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod backend;
mod backoff;
mod batch;
mod bulk;
mod capabilities;
mod client;
mod codec;
mod error;
mod export;
mod ext;
mod key;
mod layer;
mod memory;
mod options;
mod prefix;
mod store;
mod stored;
mod support;
mod txn;
mod typed_batch;
mod typed_txn;
mod url;
mod validate;
mod version;
mod versioned_client;

pub use bytes::Bytes;

pub use batch::{Entry, WriteOp};
pub use bulk::{
    BulkItem, BulkReport, BulkWriter, ChunkInFlight, CopyOptions, CopyReport, DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY, DEFAULT_TTL_TOLERANCE, FailedChunk, MAX_REPORTED_FAILED_CHUNKS,
    MAX_REPORTED_FAILED_KEYS, MAX_REPORTED_MISMATCHES, Progress, VerifyReport, copy,
};
pub use capabilities::Capabilities;
pub use client::Kv;
#[cfg(feature = "msgpack")]
pub use codec::MessagePack;
pub use codec::{Codec, Json, Raw};
pub use error::{
    BoxError, Error, ErrorKind, Operation, Result, hide_keys_in_errors, keys_hidden_in_errors,
};
pub use export::{DEFAULT_READ_AHEAD, ExportOptions};
pub use ext::KvStoreExt;
pub use key::{Key, MAX_KEY_BYTES, prefix_successor, prefix_successor_str, validate_prefix};
pub use layer::{
    ConcurrencyLimitLayer, ConcurrencyLimitStore, Layer, RetryLayer, RetryStore, TimeoutLayer,
    TimeoutStore,
};
#[cfg(feature = "metrics")]
pub use layer::{MetricsLayer, MetricsStore};
#[cfg(feature = "tracing")]
pub use layer::{TracingLayer, TracingStore, db_system};
pub use memory::{DEFAULT_MEMORY_MAX_VALUE_BYTES, MemoryStore, MemoryStoreBuilder};
pub use options::{DEFAULT_LIST_LIMIT, ListOptions, MAX_LIST_LIMIT, MAX_TTL, Page, SetOptions};
pub use prefix::PrefixStore;
pub use store::{Health, KvStore};
pub use stored::Stored;
pub use txn::{Check, Transaction, TxnOutcome};
pub use typed_batch::Batch;
pub use typed_txn::Txn;
pub use url::{UrlParts, is_secret_param, lowercase_scheme, redact_url, url_secrets};
pub use version::{Condition, Version, Versioned};
pub use versioned_client::UPDATE_ATTEMPTS;

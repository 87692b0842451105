//! [`Capabilities`]: what a backend promises.

/// What a backend promises. A backend never claims what it cannot do, and the
/// conformance suite checks every claim.
///
/// ```
/// use kv_core::{KvStore, MemoryStore};
///
/// let caps = MemoryStore::new().capabilities();
/// assert!(caps.atomic_batch && caps.ttl && caps.cas);
/// assert!(caps.versions && caps.transactions && caps.counters);
/// assert_eq!(caps.max_batch_ops, None); // unlimited
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `batch_set`, `batch_delete` and `write_batch` apply all their
    /// operations or none, and no reader sees half of one.
    pub atomic_batch: bool,
    /// The most distinct keys one batch may touch; `None` is unlimited.
    /// A larger batch fails with [`ErrorKind::BatchTooLarge`](crate::ErrorKind)
    /// before any write.
    pub max_batch_ops: Option<usize>,
    /// The longest key in bytes this store accepts: [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES)
    /// for every backend, less under a namespace ([`PrefixStore`](crate::PrefixStore)).
    pub max_key_bytes: usize,
    /// The largest value in bytes; a larger one fails with
    /// [`ErrorKind::ValueTooLarge`](crate::ErrorKind) before any I/O.
    pub max_value_bytes: usize,
    /// Per-entry time-to-live is honoured exactly (expired keys are invisible
    /// to every read). When `false`, any TTL fails with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind).
    pub ttl: bool,
    /// `compare_and_swap` is atomic. When `false` it fails with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind).
    pub cas: bool,
    /// Versioned reads (`get_versioned`, `batch_get_versioned`) and
    /// `write_if` conditioned on a [`Version`](crate::Version), on absence
    /// or presence, atomic against every other writer. When `false` they
    /// fail with [`ErrorKind::Unsupported`](crate::ErrorKind).
    pub versions: bool,
    /// `transact`: checks and writes over several keys, all or nothing.
    /// When `false` it fails with [`ErrorKind::Unsupported`](crate::ErrorKind)
    /// (a MongoDB standalone server; single-key `write_if` still works).
    pub transactions: bool,
    /// `increment` is atomic under concurrency. When `false` it fails with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind).
    pub counters: bool,
    /// `list` works, and with it what is built on it:
    /// [`clear`](crate::KvStoreExt::clear), [`export`](crate::KvStoreExt::export),
    /// [`list_stream`](crate::KvStoreExt::list_stream) and copying from this
    /// store. When `false` (a Redis store without its listing index) they
    /// fail with [`ErrorKind::Unsupported`](crate::ErrorKind) and change
    /// nothing.
    pub listing: bool,
    /// `list` returns keys in ascending byte order (`false` when
    /// [`listing`](Self::listing) is).
    pub ordered_list: bool,
    /// `batch_get` reads all its keys from one consistent snapshot.
    pub snapshot_batch_get: bool,
    /// Data survives a process restart (an embedded database or a server).
    pub persistent: bool,
}

//! Batch inputs: [`Entry`] for `batch_set` and [`WriteOp`] for `write_batch`.

use std::time::Duration;

use bytes::Bytes;

use crate::key::Key;

/// One entry of [`KvStore::batch_set`](crate::KvStore::batch_set): a key, its
/// value and its own optional TTL.
///
/// ```
/// use std::time::Duration;
/// use kv_core::{Entry, Key};
///
/// let plain = Entry::new(Key::new("a")?, "1");
/// let expiring = Entry::new(Key::new("b")?, "2").with_ttl(Duration::from_secs(60));
/// assert_eq!(plain.ttl, None);
/// assert_eq!(expiring.ttl, Some(Duration::from_secs(60)));
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: Key,
    /// The raw value.
    pub value: Bytes,
    /// Time to live; `None` keeps the key (and clears an earlier TTL).
    pub ttl: Option<Duration>,
}

impl Entry {
    /// An entry without TTL.
    pub fn new(key: Key, value: impl Into<Bytes>) -> Self {
        Self {
            key,
            value: value.into(),
            ttl: None,
        }
    }

    /// Sets the entry's TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// One operation of [`KvStore::write_batch`](crate::KvStore::write_batch).
///
/// ```
/// use kv_core::{Entry, Key, WriteOp};
///
/// let ops = vec![
///     WriteOp::Put(Entry::new(Key::new("a")?, "1")),
///     WriteOp::Delete(Key::new("b")?),
/// ];
/// assert_eq!(ops[1].key().as_str(), "b");
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Upsert the entry.
    Put(Entry),
    /// Remove the key if present.
    Delete(Key),
}

impl WriteOp {
    /// The key the operation touches.
    pub fn key(&self) -> &Key {
        match self {
            WriteOp::Put(entry) => &entry.key,
            WriteOp::Delete(key) => key,
        }
    }
}

impl From<Entry> for WriteOp {
    fn from(entry: Entry) -> Self {
        WriteOp::Put(entry)
    }
}

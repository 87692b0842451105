//! [`Batch`]: a typed write batch.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::batch::{Entry, WriteOp};
use crate::client::Kv;
use crate::codec::Codec;
use crate::error::{Operation, Result};

/// Typed puts (each with its own TTL) and deletes, applied together by
/// [`Kv::write_batch`] in one native operation.
///
/// Building never fails: the first bad key or encode error is kept and
/// returned by `write_batch`, before anything is written.
///
/// ```
/// use std::time::Duration;
/// use kv_core::{Kv, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let kv = Kv::new(MemoryStore::new().into_dyn());
/// kv.set("old", &1).await?;
/// let batch = kv
///     .batch()
///     .put("a", &1)
///     .put_with_ttl("b", &2, Duration::from_secs(30))
///     .delete("old");
/// kv.write_batch(batch).await?;
/// assert_eq!(kv.batch_get::<i32, _>(["a", "b", "old"]).await?, [Some(1), Some(2), None]);
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
#[must_use = "a batch does nothing until passed to Kv::write_batch"]
pub struct Batch<C: Codec> {
    kv: Kv<C>,
    ops: Result<Vec<WriteOp>>,
}

impl<C: Codec> Batch<C> {
    pub(crate) fn new(kv: Kv<C>) -> Self {
        Self {
            kv,
            ops: Ok(Vec::new()),
        }
    }

    /// Adds a put without TTL.
    pub fn put<T: Serialize + ?Sized>(self, key: impl AsRef<str>, value: &T) -> Self {
        self.push_put(key.as_ref(), value, None)
    }

    /// Adds a put that expires after `ttl`.
    pub fn put_with_ttl<T: Serialize + ?Sized>(
        self,
        key: impl AsRef<str>,
        value: &T,
        ttl: Duration,
    ) -> Self {
        self.push_put(key.as_ref(), value, Some(ttl))
    }

    /// Adds a delete.
    pub fn delete(mut self, key: impl AsRef<str>) -> Self {
        let op = self
            .kv
            .key(Operation::WriteBatch, key.as_ref())
            .map(WriteOp::Delete);
        self.push(op);
        self
    }

    /// How many operations were added.
    pub fn len(&self) -> usize {
        self.ops.as_ref().map_or(0, Vec::len)
    }

    /// Whether no operation was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_put<T: Serialize + ?Sized>(
        mut self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Self {
        let op = Operation::WriteBatch;
        let put = self.kv.key(op, key).and_then(|key| {
            let value = self.kv.encode(op, &key, value)?;
            Ok(WriteOp::Put(Entry { key, value, ttl }))
        });
        self.push(put);
        self
    }

    fn push(&mut self, op: Result<WriteOp>) {
        if let Ok(ops) = &mut self.ops {
            match op {
                Ok(op) => ops.push(op),
                Err(e) => self.ops = Err(e),
            }
        }
    }

    /// The store of the client that built the batch.
    pub(crate) fn store(&self) -> &std::sync::Arc<dyn crate::KvStore> {
        self.kv.store()
    }

    pub(crate) fn into_ops(self) -> Result<Vec<WriteOp>> {
        self.ops
    }
}

impl<C: Codec> fmt::Debug for Batch<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.len())
            .field("failed", &self.ops.is_err())
            .finish()
    }
}

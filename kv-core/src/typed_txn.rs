//! [`Txn`]: a typed transaction.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::batch::{Entry, WriteOp};
use crate::client::Kv;
use crate::codec::Codec;
use crate::error::{Operation, Result};
use crate::txn::{Check, Transaction, TxnOutcome};
use crate::version::{Condition, Version};

/// Typed checks and writes applied **all or nothing** by [`Txn::commit`]:
/// every check held and every write landed, or nothing changed and the
/// outcome lists the checks that failed. Made by [`Kv::transaction`].
///
/// Building never fails: the first bad key or encode error is kept and
/// returned by `commit`, before anything is sent.
///
/// ```
/// use kv_core::{Kv, MemoryStore, TxnOutcome};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let kv = Kv::new(MemoryStore::new().into_dyn());
/// kv.batch_set([("alice", 100), ("bob", 0)]).await?;
///
/// // Move 30 from alice to bob, unless either changed since it was read.
/// let alice = kv.get_versioned::<i64>("alice").await?.unwrap();
/// let bob = kv.get_versioned::<i64>("bob").await?.unwrap();
/// let outcome = kv
///     .transaction()
///     .check_version("alice", &alice.version)
///     .check_version("bob", &bob.version)
///     .put("alice", &(alice.value - 30))
///     .put("bob", &(bob.value + 30))
///     .commit()
///     .await?;
/// assert_eq!(outcome, TxnOutcome::Committed);
///
/// // The versions read are stale now: nothing changes, both checks failed.
/// let again = kv
///     .transaction()
///     .check_version("alice", &alice.version)
///     .check_version("bob", &bob.version)
///     .put("alice", &0)
///     .commit()
///     .await?;
/// assert_eq!(again.failed_checks(), [0, 1]);
/// assert_eq!(kv.batch_get::<i64, _>(["alice", "bob"]).await?, [Some(70), Some(30)]);
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
#[must_use = "a transaction does nothing until committed"]
pub struct Txn<C: Codec> {
    kv: Kv<C>,
    parts: Result<(Vec<Check>, Vec<WriteOp>)>,
}

impl<C: Codec> Txn<C> {
    pub(crate) fn new(kv: Kv<C>) -> Self {
        Self {
            kv,
            parts: Ok((Vec::new(), Vec::new())),
        }
    }

    /// Requires the key to be at `version` (as read by
    /// [`Kv::get_versioned`]).
    pub fn check_version(self, key: impl AsRef<str>, version: &Version) -> Self {
        self.check(key.as_ref(), Condition::Version(version.clone()))
    }

    /// Requires the key to be absent (or expired).
    pub fn check_absent(self, key: impl AsRef<str>) -> Self {
        self.check(key.as_ref(), Condition::Absent)
    }

    /// Requires the key to be present.
    pub fn check_present(self, key: impl AsRef<str>) -> Self {
        self.check(key.as_ref(), Condition::Present)
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
        let key = self.kv.key(Operation::Transact, key.as_ref());
        self.push(key.map(|key| (None, Some(WriteOp::Delete(key)))));
        self
    }

    /// Applies the transaction in one native operation.
    ///
    /// # Errors
    ///
    /// The first bad key or encode error; `ValueTooLarge`, `InvalidArgument`
    /// for a TTL, `BatchTooLarge`, all before any I/O; `Unsupported` where
    /// the backend has no multi-key transactions; the backend's errors
    /// (after which the transaction may or may not have committed: it is
    /// never repeated by the retry layer).
    pub async fn commit(self) -> Result<TxnOutcome> {
        let (checks, writes) = self.parts?;
        self.kv
            .store()
            .transact(&Transaction::from_parts(checks, writes))
            .await
    }

    fn check(mut self, key: &str, condition: Condition) -> Self {
        let key = self.kv.key(Operation::Transact, key);
        self.push(key.map(|key| (Some(Check { key, condition }), None)));
        self
    }

    fn push_put<T: Serialize + ?Sized>(
        mut self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Self {
        let op = Operation::Transact;
        let put = self.kv.key(op, key).and_then(|key| {
            let value = self.kv.encode(op, &key, value)?;
            Ok((None, Some(WriteOp::Put(Entry { key, value, ttl }))))
        });
        self.push(put);
        self
    }

    fn push(&mut self, item: Result<(Option<Check>, Option<WriteOp>)>) {
        if let Ok((checks, writes)) = &mut self.parts {
            match item {
                Ok((check, write)) => {
                    checks.extend(check);
                    writes.extend(write);
                }
                Err(e) => self.parts = Err(e),
            }
        }
    }
}

impl<C: Codec> fmt::Debug for Txn<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (checks, writes) = self
            .parts
            .as_ref()
            .map_or((0, 0), |(c, w)| (c.len(), w.len()));
        f.debug_struct("Txn")
            .field("checks", &checks)
            .field("writes", &writes)
            .field("failed", &self.parts.is_err())
            .finish()
    }
}

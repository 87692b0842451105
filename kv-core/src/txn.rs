//! [`Transaction`]: checks and writes applied all or nothing, and its
//! [`TxnOutcome`].

use std::time::Duration;

use bytes::Bytes;

use crate::batch::{Entry, WriteOp};
use crate::key::Key;
use crate::version::{Condition, Version};

/// One check of a [`Transaction`]: `key` must meet `condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The key checked.
    pub key: Key,
    /// What it must be.
    pub condition: Condition,
}

/// Checks and writes applied **all or nothing** by
/// [`KvStore::transact`](crate::KvStore::transact): either every check held
/// and every write landed, or nothing changed and the outcome lists the
/// checks that failed. The typed client builds one with
/// [`Kv::transaction`](crate::Kv::transaction).
///
/// Writes are applied as if in order (the last write to a key wins), like
/// [`KvStore::write_batch`](crate::KvStore::write_batch). A key may be
/// checked and not written (to depend on it) or written and not checked.
///
/// ```
/// use kv_core::{Entry, Key, Transaction};
///
/// let txn = Transaction::new()
///     .check_absent(Key::new("users/by-email/ada@example.com")?)
///     .put(Entry::new(Key::new("users/by-email/ada@example.com")?, "7"))
///     .put(Entry::new(Key::new("users/7")?, r#"{"name":"Ada"}"#));
/// assert_eq!((txn.checks().len(), txn.writes().len()), (1, 2));
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    checks: Vec<Check>,
    writes: Vec<WriteOp>,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// The one-key transaction of a
    /// [`write_if`](crate::KvStore::write_if): `key` must meet `condition`;
    /// then `new` is written with `ttl`, or the key deleted when `None`.
    pub fn write_if(
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Self {
        let txn = Self::new().check(key.clone(), condition);
        match new {
            Some(value) => txn.put(Entry {
                key: key.clone(),
                value,
                ttl,
            }),
            None => txn.delete(key.clone()),
        }
    }

    /// Adds a check.
    pub fn check(mut self, key: Key, condition: Condition) -> Self {
        self.checks.push(Check { key, condition });
        self
    }

    /// Requires `key` to be at `version`.
    pub fn check_version(self, key: Key, version: Version) -> Self {
        self.check(key, Condition::Version(version))
    }

    /// Requires `key` to be absent (or expired).
    pub fn check_absent(self, key: Key) -> Self {
        self.check(key, Condition::Absent)
    }

    /// Requires `key` to be present.
    pub fn check_present(self, key: Key) -> Self {
        self.check(key, Condition::Present)
    }

    /// Adds a put (with the entry's TTL).
    pub fn put(mut self, entry: Entry) -> Self {
        self.writes.push(WriteOp::Put(entry));
        self
    }

    /// Adds a put of `value` expiring after `ttl`.
    pub fn put_with_ttl(self, key: Key, value: impl Into<Bytes>, ttl: Duration) -> Self {
        self.put(Entry::new(key, value).with_ttl(ttl))
    }

    /// Adds a delete.
    pub fn delete(mut self, key: Key) -> Self {
        self.writes.push(WriteOp::Delete(key));
        self
    }

    /// Adds a write.
    pub fn write(mut self, op: WriteOp) -> Self {
        self.writes.push(op);
        self
    }

    /// The checks, in the order added.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The writes, in the order added.
    pub fn writes(&self) -> &[WriteOp] {
        &self.writes
    }

    /// Takes the transaction apart: its checks and writes.
    pub fn into_parts(self) -> (Vec<Check>, Vec<WriteOp>) {
        (self.checks, self.writes)
    }

    /// A transaction from checks and writes.
    pub fn from_parts(checks: Vec<Check>, writes: Vec<WriteOp>) -> Self {
        Self { checks, writes }
    }

    /// Whether it has neither checks nor writes.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.writes.is_empty()
    }
}

/// The outcome of a [`Transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a transaction may have been rejected"]
pub enum TxnOutcome {
    /// Every check held and every write landed.
    Committed,
    /// At least one check failed; nothing was written. Holds the positions
    /// (in [`Transaction::checks`]) of the checks that failed, ascending.
    Rejected(Vec<usize>),
}

impl TxnOutcome {
    /// Whether the transaction committed.
    pub fn is_committed(&self) -> bool {
        matches!(self, TxnOutcome::Committed)
    }

    /// The positions of the checks that failed (empty when committed).
    pub fn failed_checks(&self) -> &[usize] {
        match self {
            TxnOutcome::Committed => &[],
            TxnOutcome::Rejected(failed) => failed,
        }
    }

    /// The outcome of checks evaluated against the current versions, one
    /// per check (`None`: absent): `Committed` when all hold. For backends
    /// that evaluate checks themselves.
    pub fn evaluate<'a>(
        checks: &[Check],
        current: impl IntoIterator<Item = Option<&'a Version>>,
    ) -> Self {
        let failed: Vec<usize> = checks
            .iter()
            .zip(current)
            .enumerate()
            .filter(|(_, (check, current))| !check.condition.holds(*current))
            .map(|(i, _)| i)
            .collect();
        if failed.is_empty() {
            TxnOutcome::Committed
        } else {
            TxnOutcome::Rejected(failed)
        }
    }
}

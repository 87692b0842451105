//! [`KvStore`]: the trait every backend implements.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::batch::{Entry, WriteOp};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::Key;
use crate::options::{ListOptions, Page, SetOptions};
use crate::txn::{Transaction, TxnOutcome};
use crate::version::{Condition, Versioned};

/// The outcome of [`KvStore::health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The backend's name.
    pub backend: &'static str,
    /// How long one round trip to the server took.
    pub latency: Duration,
}

/// An async key-value store over raw byte values.
///
/// Applications usually use the typed client [`Kv`](crate::Kv) on top of it;
/// backends implement this trait. It is object safe: use it as
/// `Arc<dyn KvStore>`.
///
/// # Contract
///
/// Every implementation keeps these rules, and the `kv-conformance` suite
/// checks each of them against it:
///
/// - **Keys** are [`Key`]s, already validated; they compare and list in
///   byte order and are literal everywhere: no character of a key or prefix
///   acts as a pattern.
/// - **Validation first**: a value over
///   [`max_value_bytes`](Capabilities::max_value_bytes), a bad TTL, a bad
///   prefix or limit fails before any I/O; in a batch, one bad item fails
///   the whole batch and nothing is written.
/// - **Batches** are one native operation, never a loop of single calls.
///   Empty input does no I/O. Results of `batch_get` and
///   `batch_get_with_ttl` are aligned with the input. In write batches the last write to a key wins, exactly as if
///   applied in order. A batch is atomic when
///   [`atomic_batch`](Capabilities::atomic_batch) says so; a batch over
///   [`max_batch_ops`](Capabilities::max_batch_ops) distinct keys fails with
///   [`ErrorKind::BatchTooLarge`](crate::ErrorKind) and writes nothing.
/// - **TTL** is per entry, in milliseconds. Once it elapses, the key is
///   absent for every read (`get`, `exists`, `batch_get`, `list`,
///   `compare_and_swap`, the counts of `delete` and `batch_delete`), whatever
///   the backend's own reaper lag; writing a key without TTL clears its TTL.
///   A backend without TTL returns [`ErrorKind::Unsupported`](crate::ErrorKind)
///   rather than ignoring one.
/// - **Versions** (where [`versions`](Capabilities::versions)): every write
///   gives its key a new [`Version`](crate::Version), even one of the same
///   bytes; a version never comes back after a delete and survives a
///   restart where the data does. [`write_if`](Self::write_if) checks and
///   writes in one atomic operation; [`transact`](Self::transact) applies
///   checks and writes over several keys all or nothing (where
///   [`transactions`](Capabilities::transactions));
///   [`increment`](Self::increment) is atomic (where
///   [`counters`](Capabilities::counters)).
/// - **Errors** are never swallowed into `None` or `false`.
/// - **Foreign data** written through a backend's own client in a form kv
///   cannot read is a *present key whose value cannot be read*: `get` and
///   `batch_get` fail with [`ErrorKind::Backend`](crate::ErrorKind) naming
///   the key; `exists` is `true`, `list` lists it, `delete`,
///   `batch_delete` and `clear` remove it and count it. A stored key that
///   is not a valid [`Key`] has no name in kv and is not listed.
///   (`kv_conformance::foreign` checks this over each escape hatch.)
///
/// # Implementing
///
/// Build a [`Validator`](crate::backend::Validator) from the backend's name and
/// capabilities and call it at the top of each operation; then map the
/// operation onto the server's native batch, transaction or bulk API, and
/// map driver errors in one function. Run `kv_conformance::suite!` against
/// the backend.
#[async_trait]
pub trait KvStore: Debug + Send + Sync + 'static {
    /// The backend's short name (`"memory"`, `"redis"`, ...), as errors
    /// carry it.
    fn backend(&self) -> &'static str;

    /// What this backend promises.
    fn capabilities(&self) -> Capabilities;

    /// Reads one key.
    ///
    /// # Behaviour
    ///
    /// - `Ok(None)` when the key is absent or expired.
    /// - A backend error is `Err`, never `Ok(None)`.
    async fn get(&self, key: &Key) -> Result<Option<Bytes>>;

    /// Writes one key (insert or overwrite).
    ///
    /// # Behaviour
    ///
    /// - `options.ttl` sets a TTL; `None` clears any earlier TTL.
    /// - A value over `max_value_bytes` is `ValueTooLarge` before any I/O.
    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()>;

    /// Removes one key.
    ///
    /// # Behaviour
    ///
    /// - Returns whether a live (present, unexpired) key was removed.
    async fn delete(&self, key: &Key) -> Result<bool>;

    /// Tells whether a live key exists.
    ///
    /// # Behaviour
    ///
    /// - `false` for absent and expired keys.
    async fn exists(&self, key: &Key) -> Result<bool>;

    /// Lists live keys that start with `prefix`, one page at a time.
    ///
    /// # Behaviour
    ///
    /// - The prefix is literal; the empty prefix lists every key.
    /// - Keys ascend in byte order (when `ordered_list`), start strictly
    ///   after `options.start_after`, and at most `options.limit` are returned.
    /// - Following [`Page::next`] until it is `None` returns each live key
    ///   exactly once, even when keys are written or deleted between pages
    ///   (a key written behind the cursor is not seen; one ahead of it is).
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page>;

    /// Reads many keys in one native operation.
    ///
    /// # Behaviour
    ///
    /// - The result has the input's length and order; a missing or expired
    ///   key is `None` at its position; a duplicate is answered at each of
    ///   its positions.
    /// - One consistent snapshot when `snapshot_batch_get`.
    /// - Empty input returns an empty vector without I/O.
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>>;

    /// Reads many keys with their remaining TTL, in one native operation:
    /// what export and copy use, so a migrated key expires when it would
    /// have.
    ///
    /// # Behaviour
    ///
    /// - As [`batch_get`](Self::batch_get): aligned with the input, `None`
    ///   for a missing or expired key, duplicates answered at each position,
    ///   one snapshot when `snapshot_batch_get`, empty input without I/O.
    /// - Each found key is an [`Entry`] whose `ttl` is `None` when the key
    ///   has no TTL, else the time it has left, at least one millisecond
    ///   (read in the same round trip as the value, so writing the entry
    ///   back sets the expiry it had, give or take the trip).
    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>>;

    /// Writes many entries in one native operation.
    ///
    /// # Behaviour
    ///
    /// - Each entry carries its own TTL.
    /// - All entries are validated first; one invalid entry fails the batch
    ///   and nothing is written.
    /// - The last entry for a duplicated key wins.
    /// - All or nothing when `atomic_batch`.
    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()>;

    /// [`batch_set`](KvStore::batch_set) for a caller that keeps its
    /// entries, because it may send them again: the retry layer and the
    /// bulk writer call this for every attempt instead of copying the batch.
    ///
    /// # Behaviour
    ///
    /// - Exactly [`batch_set`](KvStore::batch_set)'s contract.
    /// - The default copies the entries into `batch_set`; a backend that
    ///   only reads a batch to build its request overrides it to skip the
    ///   copy (Redis does), and a wrapper forwards it.
    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        self.batch_set(entries.to_vec()).await
    }

    /// Removes many keys in one native operation.
    ///
    /// # Behaviour
    ///
    /// - Returns how many live keys were removed; a duplicate counts once.
    async fn batch_delete(&self, keys: &[Key]) -> Result<u64>;

    /// Applies puts and deletes in one native operation.
    ///
    /// # Behaviour
    ///
    /// - As if applied in order: the last operation on a key wins.
    /// - Validated whole first; all or nothing when `atomic_batch`.
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()>;

    /// [`write_batch`](KvStore::write_batch) for a caller that keeps its
    /// operations, like [`batch_set_borrowed`](KvStore::batch_set_borrowed).
    ///
    /// # Behaviour
    ///
    /// - Exactly [`write_batch`](KvStore::write_batch)'s contract.
    /// - The default copies the operations into `write_batch`.
    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        self.write_batch(ops.to_vec()).await
    }

    /// Atomically replaces the value of `key` if it currently equals
    /// `expected`.
    ///
    /// # Behaviour
    ///
    /// - `expected: None` means "the key is absent (or expired)".
    /// - `new: None` deletes the key; `Some` writes it with `options.ttl`.
    /// - Returns `true` when the current value matched and the write (or
    ///   delete) was applied, `false` when it did not match and nothing
    ///   changed.
    /// - Atomic against every other writer when `cas`; otherwise
    ///   `Unsupported`.
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool>;

    /// Reads one key with its [`Version`](crate::Version).
    ///
    /// # Behaviour
    ///
    /// - `Ok(None)` when the key is absent or expired.
    /// - The default reads through
    ///   [`batch_get_versioned`](Self::batch_get_versioned).
    /// - `Unsupported` without [`versions`](Capabilities::versions).
    async fn get_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        let mut found = self
            .batch_get_versioned(std::slice::from_ref(key))
            .await
            .map_err(|e| e.in_context(self.backend(), Operation::GetVersioned))?;
        Ok(found.pop().flatten())
    }

    /// Reads many keys with their [`Version`](crate::Version)s in one native operation.
    ///
    /// # Behaviour
    ///
    /// - As [`batch_get`](Self::batch_get): aligned with the input, `None`
    ///   for a missing or expired key, one snapshot when
    ///   `snapshot_batch_get`, empty input without I/O.
    /// - A version changes with every write to its key (even of the same
    ///   bytes), never comes back after a delete, and survives a restart
    ///   where the data does.
    /// - `Unsupported` without [`versions`](Capabilities::versions) (the
    ///   default).
    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        let _ = keys;
        Err(unsupported(
            self.backend(),
            Operation::BatchGetVersioned,
            "versions",
        ))
    }

    /// Writes `new` (or deletes, when `None`) only if `key` meets
    /// `condition`; returns whether it wrote.
    ///
    /// # Behaviour
    ///
    /// - Atomic against every other writer: the check and the write are
    ///   one native operation.
    /// - `Condition::Version(v)`: the key is present at version `v`;
    ///   `Absent`: absent or expired; `Present`: present at any version.
    /// - `new: Some` writes with `options.ttl` (none clears a TTL);
    ///   `None` deletes.
    /// - `false` when the condition does not hold: nothing changed.
    /// - `Unsupported` without [`versions`](Capabilities::versions). The
    ///   default runs a one-check [`transact`](Self::transact).
    async fn write_if(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let txn = Transaction::write_if(key, condition, new, options.ttl);
        self.transact(&txn)
            .await
            .map(|outcome| outcome.is_committed())
            .map_err(|e| e.in_context(self.backend(), Operation::WriteIf))
    }

    /// Applies a [`Transaction`] all or nothing: every check held and
    /// every write landed, or nothing changed and the outcome lists the
    /// checks that failed.
    ///
    /// # Behaviour
    ///
    /// - One native operation (see each backend's README).
    /// - Validated whole first; more distinct keys (checked or written)
    ///   than `max_batch_ops` is `BatchTooLarge` before any I/O.
    /// - Writes apply as if in order (the last write to a key wins), with
    ///   each put's TTL.
    /// - A transaction without checks commits its writes atomically; an
    ///   empty one commits without I/O.
    /// - `Unsupported` without [`transactions`](Capabilities::transactions)
    ///   (the default).
    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let _ = txn;
        Err(unsupported(
            self.backend(),
            Operation::Transact,
            "multi-key transactions",
        ))
    }

    /// Adds `delta` to the counter at `key` and returns the new value,
    /// atomically under concurrency.
    ///
    /// # Behaviour
    ///
    /// - An absent or expired key counts as 0. A counter is stored as the
    ///   decimal text of an `i64` ([`counter`](crate::backend::counter)),
    ///   readable with the JSON codec as an integer.
    /// - `options.ttl` applies when the increment creates the key; an
    ///   existing key keeps its TTL (or having none): a fixed window.
    /// - A value that is not a counter is `NotACounter`, a result past
    ///   `i64`'s range is `Overflow`; both change nothing.
    /// - `Unsupported` without [`counters`](Capabilities::counters) (the
    ///   default).
    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        let _ = (delta, options);
        Err(unsupported(self.backend(), Operation::Increment, "counters").with_key(key.as_str()))
    }

    /// Makes one round trip to the server and reports its latency.
    async fn health(&self) -> Result<Health>;
}

fn unsupported(backend: &'static str, operation: Operation, what: &str) -> Error {
    Error::new(ErrorKind::Unsupported, backend, operation)
        .with_message(format!("this backend has no {what}"))
}

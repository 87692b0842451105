//! [`PrefixStore`]: a namespace over another store.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::batch::{Entry, WriteOp};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{Key, MAX_KEY_BYTES};
use crate::options::{ListOptions, Page, SetOptions};
use crate::store::{Health, KvStore};
use crate::txn::{Check, Transaction, TxnOutcome};
use crate::version::{Condition, Versioned};

/// A store whose keys are those of `inner` that start with a fixed prefix,
/// with the prefix removed. [`Kv::namespace`](crate::Kv::namespace) uses it.
///
/// Writes add the prefix; `list` strips it; the empty list prefix lists only
/// this namespace. Inner keys equal to the bare prefix have no name here and
/// are not listed. A key whose full form exceeds 1024 bytes is
/// [`ErrorKind::InvalidKey`] before any I/O.
///
/// ```
/// use std::sync::Arc;
/// use kv_core::{Key, KvStore, ListOptions, MemoryStore, PrefixStore, SetOptions};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let root: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
/// let users = PrefixStore::new(root.clone(), "users:")?;
/// users.set(&Key::new("1")?, "ada".into(), SetOptions::default()).await?;
/// assert!(root.exists(&Key::new("users:1")?).await?);
/// assert_eq!(users.list("", ListOptions::default()).await?.keys, ["1"]);
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct PrefixStore {
    inner: Arc<dyn KvStore>,
    prefix: Key,
}

impl PrefixStore {
    /// Wraps `inner`, prefixing every key with `prefix`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidKey`] when `prefix` is empty, contains NUL or
    /// leaves no room for a key (1024 bytes or more).
    pub fn new(inner: Arc<dyn KvStore>, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        if prefix.len() >= MAX_KEY_BYTES {
            return Err(
                Error::new(ErrorKind::InvalidKey, inner.backend(), Operation::Validate)
                    .with_message("a namespace prefix must be shorter than 1024 bytes"),
            );
        }
        let prefix =
            Key::new(prefix).map_err(|e| e.in_context(inner.backend(), Operation::Validate))?;
        Ok(Self { inner, prefix })
    }

    /// The prefix added to every key.
    pub fn prefix(&self) -> &str {
        self.prefix.as_str()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn KvStore> {
        &self.inner
    }

    fn full(&self, op: Operation, key: &Key) -> Result<Key> {
        let len = self.prefix.as_str().len() + key.as_str().len();
        if len > MAX_KEY_BYTES {
            return Err(Error::new(ErrorKind::InvalidKey, self.inner.backend(), op)
                .with_key(key.as_str())
                .with_message(format!(
                    "with the namespace prefix {:?} the key is {len} bytes, over 1024",
                    self.prefix.as_str()
                )));
        }
        Key::new(format!("{}{}", self.prefix, key))
            .map_err(|e| e.in_context(self.inner.backend(), op))
    }

    fn full_keys(&self, op: Operation, keys: &[Key]) -> Result<Vec<Key>> {
        keys.iter().map(|key| self.full(op, key)).collect()
    }

    fn full_entry(&self, op: Operation, entry: Entry) -> Result<Entry> {
        Ok(Entry {
            key: self.full(op, &entry.key)?,
            ..entry
        })
    }

    fn strip(&self, key: Key) -> Option<Key> {
        key.as_str()
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| Key::new(rest).ok())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for PrefixStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        let inner = self.inner.capabilities();
        Capabilities {
            max_key_bytes: inner
                .max_key_bytes
                .saturating_sub(self.prefix.as_str().len()),
            ..inner
        }
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.inner.get(&self.full(Operation::Get, key)?).await
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        self.inner
            .set(&self.full(Operation::Set, key)?, value, options)
            .await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.inner.delete(&self.full(Operation::Delete, key)?).await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.inner.exists(&self.full(Operation::Exists, key)?).await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        // Start after the bare prefix at least, so it is never listed (it has
        // no name in this namespace) and never becomes the cursor.
        let start_after = match &options.start_after {
            Some(after) => self.full(Operation::List, after)?,
            None => self.prefix.clone(),
        };
        let inner = ListOptions {
            start_after: Some(start_after),
            limit: options.limit,
        };
        let page = self.inner.list(&full_prefix, inner).await?;
        Ok(Page {
            keys: page
                .keys
                .into_iter()
                .filter_map(|k| self.strip(k))
                .collect(),
            next: page.next.and_then(|k| self.strip(k)),
        })
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.inner
            .batch_get(&self.full_keys(Operation::BatchGet, keys)?)
            .await
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        let found = self
            .inner
            .batch_get_with_ttl(&self.full_keys(Operation::BatchGetWithTtl, keys)?)
            .await?;
        // Answer with the caller's keys: the inner store names them in full.
        Ok(found
            .into_iter()
            .zip(keys)
            .map(|(entry, key)| {
                entry.map(|e| Entry {
                    key: key.clone(),
                    ..e
                })
            })
            .collect())
    }

    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        let entries = entries
            .into_iter()
            .map(|e| self.full_entry(Operation::BatchSet, e))
            .collect::<Result<_>>()?;
        self.inner.batch_set(entries).await
    }

    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        let entries = entries
            .iter()
            .map(|e| self.full_entry(Operation::BatchSet, e.clone()))
            .collect::<Result<_>>()?;
        self.inner.batch_set(entries).await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        self.inner
            .batch_delete(&self.full_keys(Operation::BatchDelete, keys)?)
            .await
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        let op = Operation::WriteBatch;
        let ops = ops
            .into_iter()
            .map(|o| match o {
                WriteOp::Put(entry) => self.full_entry(op, entry).map(WriteOp::Put),
                WriteOp::Delete(key) => self.full(op, &key).map(WriteOp::Delete),
            })
            .collect::<Result<_>>()?;
        self.inner.write_batch(ops).await
    }

    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        let op = Operation::WriteBatch;
        let ops = ops
            .iter()
            .map(|o| match o {
                WriteOp::Put(entry) => self.full_entry(op, entry.clone()).map(WriteOp::Put),
                WriteOp::Delete(key) => self.full(op, key).map(WriteOp::Delete),
            })
            .collect::<Result<_>>()?;
        self.inner.write_batch(ops).await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let key = self.full(Operation::CompareAndSwap, key)?;
        self.inner
            .compare_and_swap(&key, expected, new, options)
            .await
    }

    async fn get_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        let key = self.full(Operation::GetVersioned, key)?;
        self.inner.get_versioned(&key).await
    }

    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        self.inner
            .batch_get_versioned(&self.full_keys(Operation::BatchGetVersioned, keys)?)
            .await
    }

    async fn write_if(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let key = self.full(Operation::WriteIf, key)?;
        self.inner.write_if(&key, condition, new, options).await
    }

    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let op = Operation::Transact;
        let checks = txn
            .checks()
            .iter()
            .map(|c| {
                Ok(Check {
                    key: self.full(op, &c.key)?,
                    condition: c.condition.clone(),
                })
            })
            .collect::<Result<_>>()?;
        let writes = txn
            .writes()
            .iter()
            .map(|o| match o {
                WriteOp::Put(entry) => self.full_entry(op, entry.clone()).map(WriteOp::Put),
                WriteOp::Delete(key) => self.full(op, key).map(WriteOp::Delete),
            })
            .collect::<Result<_>>()?;
        self.inner
            .transact(&Transaction::from_parts(checks, writes))
            .await
    }

    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        let key = self.full(Operation::Increment, key)?;
        self.inner.increment(&key, delta, options).await
    }

    async fn health(&self) -> Result<Health> {
        self.inner.health().await
    }
}

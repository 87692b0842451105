//! [`Validator`]: the checks every backend runs before any I/O.
//!
//! Each backend builds one from its name and [`Capabilities`] and calls it at
//! the top of every operation, so the batch rules of the contract (validate
//! the whole batch first, deduplicate with the last write winning, respect
//! the limits) are implemented once.

use std::time::Duration;

use bytes::Bytes;

use crate::backend::counter;
use crate::batch::{Entry, WriteOp};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{Key, prefix_successor, validate_prefix};
use crate::options::{DEFAULT_LIST_LIMIT, ListOptions, MAX_LIST_LIMIT, MAX_TTL, SetOptions};
use crate::txn::{Check, Transaction};

/// Validates input against a backend's [`Capabilities`] before any I/O.
///
/// ```
/// use kv_core::backend::Validator;
/// use kv_core::{Entry, ErrorKind, Key, KvStore, MemoryStore};
///
/// let v = Validator::new("memory", MemoryStore::new().capabilities());
/// let a = Key::new("a")?;
/// // Duplicates: the last write wins; the result is sorted by key.
/// let entries = v.entries(vec![Entry::new(a.clone(), "1"), Entry::new(a.clone(), "2")])?;
/// assert_eq!(entries.len(), 1);
/// assert_eq!(entries[0].value, "2");
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Validator {
    backend: &'static str,
    caps: Capabilities,
}

/// A validated entry of a borrowed batch ([`Validator::entries_borrowed`]):
/// the caller's key and value, and the TTL rounded up to whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedEntry<'a> {
    /// The key.
    pub key: &'a Key,
    /// The raw value.
    pub value: &'a Bytes,
    /// The validated TTL; `None` keeps the key.
    pub ttl: Option<Duration>,
}

/// A validated operation of a borrowed `write_batch`
/// ([`Validator::write_ops_borrowed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckedOp<'a> {
    /// Writes the entry.
    Put(CheckedEntry<'a>),
    /// Deletes the key.
    Delete(&'a Key),
}

impl CheckedEntry<'_> {
    /// The entry, owned: the key copied, the value shared (no copy).
    pub fn to_entry(&self) -> Entry {
        Entry {
            key: self.key.clone(),
            value: self.value.clone(),
            ttl: self.ttl,
        }
    }
}

/// The puts (owned, values shared) and the deletes of validated writes,
/// for backends that send them as two lists.
pub fn split_writes<'a>(writes: &[CheckedOp<'a>]) -> (Vec<Entry>, Vec<&'a Key>) {
    let (mut puts, mut deletes) = (Vec::new(), Vec::new());
    for write in writes {
        match write {
            CheckedOp::Put(entry) => puts.push(entry.to_entry()),
            CheckedOp::Delete(key) => deletes.push(*key),
        }
    }
    (puts, deletes)
}

impl<'a> CheckedOp<'a> {
    /// The key the operation touches.
    pub fn key(&self) -> &'a Key {
        match self {
            CheckedOp::Put(entry) => entry.key,
            CheckedOp::Delete(key) => key,
        }
    }
}

/// A validated `list` request: the key range and page size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRange {
    /// The literal prefix every listed key starts with.
    pub prefix: String,
    /// List keys strictly greater than this one; `None` starts at `prefix`.
    /// Set only when it lies inside the prefix range.
    pub start_after: Option<Key>,
    /// The exclusive upper bound in bytes ([`prefix_successor`]); `None` is
    /// unbounded (empty prefix).
    pub end: Option<Vec<u8>>,
    /// The page size, at least 1.
    pub limit: usize,
    /// Whether the range is empty (the cursor is past the prefix range):
    /// answer an empty page without I/O.
    pub exhausted: bool,
}

impl ListRange {
    /// Whether `key` belongs to this listing (has the prefix and lies after
    /// the cursor). Backends that read a wider range filter with it.
    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(self.prefix.as_str())
            && self
                .start_after
                .as_ref()
                .is_none_or(|after| key.as_bytes() > after.as_bytes())
    }

    /// The inclusive lower bound in bytes when there is no cursor, else the
    /// cursor (exclusive). Convenience for backends building range scans.
    pub fn lower(&self) -> (&[u8], bool) {
        match &self.start_after {
            Some(after) => (after.as_bytes(), false),
            None => (self.prefix.as_bytes(), true),
        }
    }
}

impl Validator {
    /// A validator for `backend` with these capabilities.
    pub fn new(backend: &'static str, caps: Capabilities) -> Self {
        Self { backend, caps }
    }

    /// The backend name errors carry.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The capabilities checked against.
    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn error(&self, kind: ErrorKind, op: Operation) -> Error {
        Error::new(kind, self.backend, op)
    }

    /// Checks a value's size.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ValueTooLarge`] above `max_value_bytes`.
    pub fn value(&self, op: Operation, key: &Key, value: &[u8]) -> Result<()> {
        if value.len() > self.caps.max_value_bytes {
            return Err(self
                .error(ErrorKind::ValueTooLarge, op)
                .with_key(key.as_str())
                .with_message(format!(
                    "{} bytes exceeds the limit of {} bytes",
                    value.len(),
                    self.caps.max_value_bytes
                )));
        }
        Ok(())
    }

    /// Checks a TTL and rounds it up to a whole millisecond.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] when the backend has no TTL;
    /// [`ErrorKind::InvalidArgument`] for zero or more than [`MAX_TTL`].
    pub fn ttl(&self, op: Operation, key: &Key, ttl: Option<Duration>) -> Result<Option<Duration>> {
        let Some(ttl) = ttl else { return Ok(None) };
        if !self.caps.ttl {
            return Err(self
                .error(ErrorKind::Unsupported, op)
                .with_key(key.as_str())
                .with_message("this backend does not support TTL"));
        }
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(self
                .error(ErrorKind::InvalidArgument, op)
                .with_key(key.as_str())
                .with_message(format!(
                    "a TTL must be between 1 ms and 10 years, got {ttl:?}"
                )));
        }
        let millis = ttl.as_nanos().div_ceil(1_000_000);
        // MAX_TTL is about 3.2e11 ms, far below u64::MAX.
        let millis = u64::try_from(millis).unwrap_or(u64::MAX);
        Ok(Some(Duration::from_millis(millis)))
    }

    /// Checks a single `set`; returns the rounded TTL.
    ///
    /// # Errors
    ///
    /// As [`Validator::value`] and [`Validator::ttl`].
    pub fn set(&self, key: &Key, value: &[u8], options: SetOptions) -> Result<Option<Duration>> {
        self.value(Operation::Set, key, value)?;
        self.ttl(Operation::Set, key, options.ttl)
    }

    fn batch_size(&self, op: Operation, distinct: usize) -> Result<()> {
        match self.caps.max_batch_ops {
            Some(max) if distinct > max => Err(self
                .error(ErrorKind::BatchTooLarge, op)
                .with_message(format!(
                    "{distinct} distinct keys exceed this backend's atomic limit of {max}; \
                     split the batch or use a bulk writer"
                ))),
            _ => Ok(()),
        }
    }

    fn entry(&self, op: Operation, mut entry: Entry) -> Result<Entry> {
        entry.ttl = self.checked(op, &entry)?.ttl;
        Ok(entry)
    }

    /// Validates a whole `batch_set` before any write: every value and TTL,
    /// then deduplicates (the last entry for a key wins) and checks the
    /// batch size. The result is sorted by key, which gives backends a
    /// consistent lock order.
    ///
    /// # Errors
    ///
    /// The first invalid entry's error, or [`ErrorKind::BatchTooLarge`].
    pub fn entries(&self, entries: Vec<Entry>) -> Result<Vec<Entry>> {
        let entries = entries
            .into_iter()
            .map(|entry| self.entry(Operation::BatchSet, entry))
            .collect::<Result<Vec<_>>>()?;
        let distinct = last_per_key(entries, |e| &e.key);
        self.batch_size(Operation::BatchSet, distinct.len())?;
        Ok(distinct)
    }

    /// Validates a whole `write_batch` like [`Validator::entries`]: the last
    /// operation on a key wins (a put then a delete is a delete).
    ///
    /// # Errors
    ///
    /// The first invalid operation's error, or [`ErrorKind::BatchTooLarge`].
    pub fn write_ops(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOp>> {
        let ops = ops
            .into_iter()
            .map(|op| match op {
                WriteOp::Put(entry) => self.entry(Operation::WriteBatch, entry).map(WriteOp::Put),
                delete @ WriteOp::Delete(_) => Ok(delete),
            })
            .collect::<Result<Vec<_>>>()?;
        let distinct = last_per_key(ops, WriteOp::key);
        self.batch_size(Operation::WriteBatch, distinct.len())?;
        Ok(distinct)
    }

    /// Validates a borrowed `batch_set` exactly like [`Validator::entries`]
    /// without taking or copying the entries: the result refers to them,
    /// with each TTL rounded as [`Validator::ttl`] does. For backends that
    /// only read a batch to build their request (see
    /// [`KvStore::batch_set_borrowed`](crate::KvStore::batch_set_borrowed)).
    ///
    /// # Errors
    ///
    /// The first invalid entry's error, or [`ErrorKind::BatchTooLarge`].
    pub fn entries_borrowed<'a>(&self, entries: &'a [Entry]) -> Result<Vec<CheckedEntry<'a>>> {
        let checked = entries
            .iter()
            .map(|entry| self.checked(Operation::BatchSet, entry))
            .collect::<Result<Vec<_>>>()?;
        let distinct = last_per_key(checked, |e| e.key);
        self.batch_size(Operation::BatchSet, distinct.len())?;
        Ok(distinct)
    }

    /// Validates a borrowed `write_batch` exactly like
    /// [`Validator::write_ops`], referring to the caller's operations.
    ///
    /// # Errors
    ///
    /// The first invalid operation's error, or [`ErrorKind::BatchTooLarge`].
    pub fn write_ops_borrowed<'a>(&self, ops: &'a [WriteOp]) -> Result<Vec<CheckedOp<'a>>> {
        let checked = ops
            .iter()
            .map(|op| match op {
                WriteOp::Put(entry) => self
                    .checked(Operation::WriteBatch, entry)
                    .map(CheckedOp::Put),
                WriteOp::Delete(key) => Ok(CheckedOp::Delete(key)),
            })
            .collect::<Result<Vec<_>>>()?;
        let distinct = last_per_key(checked, |op| op.key());
        self.batch_size(Operation::WriteBatch, distinct.len())?;
        Ok(distinct)
    }

    fn checked<'a>(&self, op: Operation, entry: &'a Entry) -> Result<CheckedEntry<'a>> {
        self.value(op, &entry.key, &entry.value)?;
        Ok(CheckedEntry {
            key: &entry.key,
            value: &entry.value,
            ttl: self.ttl(op, &entry.key, entry.ttl)?,
        })
    }

    /// Checks that `keys` touch no more distinct keys than `max_batch_ops`,
    /// counting distinct keys only when the input is longer than the limit
    /// (no work at all without a limit).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BatchTooLarge`].
    pub fn check_batch_keys(&self, op: Operation, keys: &[Key]) -> Result<()> {
        match self.caps.max_batch_ops {
            Some(max) if keys.len() > max => {
                let distinct: std::collections::BTreeSet<&Key> = keys.iter().collect();
                self.batch_size(op, distinct.len())
            }
            _ => Ok(()),
        }
    }

    /// The distinct keys of a `batch_get` or `batch_delete`, sorted, after
    /// checking the batch size.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BatchTooLarge`].
    pub fn distinct_keys<'a>(&self, op: Operation, keys: &'a [Key]) -> Result<Vec<&'a Key>> {
        let mut distinct: Vec<&Key> = keys.iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        self.batch_size(op, distinct.len())?;
        Ok(distinct)
    }

    /// Checks a `compare_and_swap`: the capability, both values' sizes and
    /// the TTL; returns the rounded TTL.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`], [`ErrorKind::ValueTooLarge`],
    /// [`ErrorKind::InvalidArgument`].
    pub fn cas(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        options: SetOptions,
    ) -> Result<Option<Duration>> {
        let op = Operation::CompareAndSwap;
        if !self.caps.cas {
            return Err(self
                .error(ErrorKind::Unsupported, op)
                .with_key(key.as_str())
                .with_message("this backend has no atomic compare-and-swap"));
        }
        for value in [expected, new].into_iter().flatten() {
            self.value(op, key, value)?;
        }
        if new.is_none() {
            return Ok(None);
        }
        self.ttl(op, key, options.ttl)
    }

    fn unsupported(&self, op: Operation, what: &str) -> Error {
        self.error(ErrorKind::Unsupported, op)
            .with_message(format!("this backend has no {what}"))
    }

    /// Checks a versioned read: the capability and the batch size.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] without
    /// [`versions`](Capabilities::versions), [`ErrorKind::BatchTooLarge`].
    pub fn versioned_keys(&self, op: Operation, keys: &[Key]) -> Result<()> {
        if !self.caps.versions {
            return Err(self.unsupported(op, "versions"));
        }
        self.check_batch_keys(op, keys)
    }

    /// Checks a `write_if`: the capability, the value's size and the TTL;
    /// returns the rounded TTL.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] without
    /// [`versions`](Capabilities::versions), [`ErrorKind::ValueTooLarge`],
    /// [`ErrorKind::InvalidArgument`].
    pub fn write_if(
        &self,
        key: &Key,
        new: Option<&[u8]>,
        options: SetOptions,
    ) -> Result<Option<Duration>> {
        let op = Operation::WriteIf;
        if !self.caps.versions {
            return Err(self.unsupported(op, "versions").with_key(key.as_str()));
        }
        match new {
            Some(value) => {
                self.value(op, key, value)?;
                self.ttl(op, key, options.ttl)
            }
            None => Ok(None),
        }
    }

    /// Validates a whole [`Transaction`] before any I/O: the capability,
    /// every write's value and TTL, and the number of distinct keys checked
    /// or written against `max_batch_ops`. Returns the checks in their
    /// order (failed checks are reported by position) and the writes as
    /// [`Validator::write_ops_borrowed`] gives them: the last write to a
    /// key wins, sorted by key.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] without
    /// [`transactions`](Capabilities::transactions), the first invalid
    /// write's error, [`ErrorKind::BatchTooLarge`].
    pub fn transaction<'a>(
        &self,
        txn: &'a Transaction,
    ) -> Result<(&'a [Check], Vec<CheckedOp<'a>>)> {
        let op = Operation::Transact;
        if !self.caps.transactions {
            return Err(self.unsupported(op, "multi-key transactions"));
        }
        let writes = txn
            .writes()
            .iter()
            .map(|w| match w {
                WriteOp::Put(entry) => self.checked(op, entry).map(CheckedOp::Put),
                WriteOp::Delete(key) => Ok(CheckedOp::Delete(key)),
            })
            .collect::<Result<Vec<_>>>()?;
        let writes = last_per_key(writes, |w| w.key());
        if let Some(max) = self.caps.max_batch_ops {
            let mut keys: std::collections::BTreeSet<&Key> =
                txn.checks().iter().map(|c| &c.key).collect();
            keys.extend(writes.iter().map(|w| w.key()));
            if keys.len() > max {
                return Err(self
                    .error(ErrorKind::BatchTooLarge, op)
                    .with_message(format!(
                        "{} distinct keys exceed this backend's atomic limit of {max}",
                        keys.len()
                    )));
            }
        }
        Ok((txn.checks(), writes))
    }

    /// Checks an `increment`: the capability and the TTL; returns the
    /// rounded TTL (applied only when the increment creates the key).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] without
    /// [`counters`](Capabilities::counters), [`ErrorKind::InvalidArgument`].
    pub fn increment(&self, key: &Key, options: SetOptions) -> Result<Option<Duration>> {
        let op = Operation::Increment;
        if !self.caps.counters {
            return Err(self.unsupported(op, "counters").with_key(key.as_str()));
        }
        self.ttl(op, key, options.ttl)
    }

    /// Adds `delta` to the counter stored as `current` (`None`: absent,
    /// which counts as 0), as [`KvStore::increment`](crate::KvStore::increment)
    /// defines it, for backends that compute it themselves.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotACounter`] when `current` is not a decimal `i64`,
    /// [`ErrorKind::Overflow`] past `i64`'s range, both naming the key.
    pub fn add_to_counter(&self, key: &Key, current: Option<&[u8]>, delta: i64) -> Result<i64> {
        let current = match current {
            None => 0,
            Some(bytes) => counter::parse(bytes).ok_or_else(|| self.not_a_counter(key))?,
        };
        current
            .checked_add(delta)
            .ok_or_else(|| self.overflow(key, current, delta))
    }

    /// The error of an increment over a value that is not a counter.
    pub fn not_a_counter(&self, key: &Key) -> Error {
        self.error(ErrorKind::NotACounter, Operation::Increment)
            .with_key(key.as_str())
            .with_message("the stored value is not a decimal 64-bit integer")
    }

    /// The error of an increment past `i64`'s range.
    pub fn overflow(&self, key: &Key, current: i64, delta: i64) -> Error {
        self.error(ErrorKind::Overflow, Operation::Increment)
            .with_key(key.as_str())
            .with_message(format!("{current} + {delta} overflows a 64-bit integer"))
    }

    /// Validates a `list` request into a [`ListRange`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] without
    /// [`listing`](Capabilities::listing),
    /// [`ErrorKind::InvalidKey`] for a bad prefix,
    /// [`ErrorKind::InvalidArgument`] for a zero limit or one over
    /// [`MAX_LIST_LIMIT`].
    pub fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListRange> {
        if !self.caps.listing {
            return Err(self
                .error(ErrorKind::Unsupported, Operation::List)
                .with_message(
                    "this store keeps no listing index: list, and clear, export and copy \
                 (which list), are unsupported",
                ));
        }
        validate_prefix(prefix).map_err(|e| e.in_context(self.backend, Operation::List))?;
        let limit = options.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if limit == 0 {
            return Err(self
                .error(ErrorKind::InvalidArgument, Operation::List)
                .with_message("a list limit must be at least 1"));
        }
        if limit > MAX_LIST_LIMIT {
            return Err(self
                .error(ErrorKind::InvalidArgument, Operation::List)
                .with_message(format!(
                    "a list limit of {limit} is over the maximum of {MAX_LIST_LIMIT} keys \
                     per page; read more with more pages"
                )));
        }
        let end = prefix_successor(prefix.as_bytes());
        let start_after = options
            .start_after
            .clone()
            .filter(|after| after.as_bytes() >= prefix.as_bytes());
        let exhausted = match (&start_after, &end) {
            (Some(after), Some(end)) => after.as_bytes() >= end.as_slice(),
            _ => false,
        };
        Ok(ListRange {
            prefix: prefix.to_owned(),
            start_after,
            end,
            limit,
            exhausted,
        })
    }
}

/// Sorts by key and keeps, for each key, the last item in input order.
/// Already sorted, distinct input (the common case) costs one pass.
fn last_per_key<T>(mut items: Vec<T>, key: impl Fn(&T) -> &Key) -> Vec<T> {
    if items.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
        return items;
    }
    // A stable sort keeps equal keys in input order: the last one wins.
    items.sort_by(|a, b| key(a).cmp(key(b)));
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        match out.last_mut() {
            Some(last) if key(last) == key(&item) => *last = item,
            _ => out.push(item),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Capabilities {
        Capabilities {
            atomic_batch: true,
            max_batch_ops: Some(2),
            max_key_bytes: 1024,
            max_value_bytes: 4,
            ttl: true,
            cas: true,
            versions: true,
            transactions: true,
            counters: true,
            listing: true,
            ordered_list: true,
            snapshot_batch_get: true,
            persistent: false,
        }
    }

    fn key(k: &str) -> Key {
        Key::new(k).unwrap()
    }

    #[test]
    fn ttl_rounds_up_to_whole_milliseconds() {
        let v = Validator::new("t", caps());
        let got = v.ttl(Operation::Set, &key("a"), Some(Duration::from_micros(1500)));
        assert_eq!(got.unwrap(), Some(Duration::from_millis(2)));
        let zero = v.ttl(Operation::Set, &key("a"), Some(Duration::ZERO));
        assert_eq!(zero.unwrap_err().kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn duplicates_count_once_against_the_limit() {
        let v = Validator::new("t", caps());
        let entries = vec![
            Entry::new(key("b"), "1"),
            Entry::new(key("a"), "2"),
            Entry::new(key("b"), "3"),
        ];
        let out = v.entries(entries).unwrap();
        assert_eq!(
            out.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(out[1].value, "3");
        let three = vec![
            Entry::new(key("a"), ""),
            Entry::new(key("b"), ""),
            Entry::new(key("c"), ""),
        ];
        assert_eq!(
            v.entries(three).unwrap_err().kind(),
            ErrorKind::BatchTooLarge
        );
    }

    #[test]
    fn last_per_key_keeps_the_last_of_each_key_in_input_order() {
        let items = vec![("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5), ("b", 6)];
        let keyed: Vec<(Key, i32)> = items.into_iter().map(|(k, v)| (key(k), v)).collect();
        let out = last_per_key(keyed, |(k, _)| k);
        let got: Vec<(&str, i32)> = out.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, [("a", 5), ("b", 6), ("c", 4)]);
    }

    #[test]
    fn write_ops_last_operation_wins() {
        let v = Validator::new("t", caps());
        let ops = vec![
            WriteOp::Put(Entry::new(key("a"), "1")),
            WriteOp::Delete(key("a")),
        ];
        assert_eq!(v.write_ops(ops).unwrap(), vec![WriteOp::Delete(key("a"))]);
    }

    #[test]
    fn list_range_drops_cursor_before_prefix_and_detects_cursor_past_it() {
        let v = Validator::new("t", caps());
        let before = v
            .list("b", &ListOptions::default().start_after(key("a")))
            .unwrap();
        assert_eq!(before.start_after, None);
        assert!(!before.exhausted);
        let past = v
            .list("b", &ListOptions::default().start_after(key("c")))
            .unwrap();
        assert!(past.exhausted);
        let zero = v.list("b", &ListOptions::default().limit(0));
        assert_eq!(zero.unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
}

//! [`MemoryStore`]: the in-memory reference backend.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::backend::counter;
use crate::batch::{Entry, WriteOp};
use crate::capabilities::Capabilities;
use crate::error::{Operation, Result};
use crate::key::{Key, MAX_KEY_BYTES};
use crate::options::{ListOptions, Page, SetOptions};
use crate::store::{Health, KvStore};
use crate::txn::{Transaction, TxnOutcome};
use crate::validate::{CheckedOp, Validator};
use crate::version::{Version, Versioned};

const BACKEND: &str = "memory";

/// The default [`Capabilities::max_value_bytes`] of a [`MemoryStore`]: 512 MiB.
pub const DEFAULT_MEMORY_MAX_VALUE_BYTES: usize = 512 * 1024 * 1024;

/// The in-memory backend and reference implementation of the contract.
///
/// Every batch is atomic (one lock), `batch_get` reads one snapshot, TTLs are
/// exact to the millisecond, listing is ordered, CAS is atomic. Expired
/// entries are invisible at once and are removed on the next write, so
/// memory does not grow with dead entries. Clones share the same data.
///
/// ```
/// use kv_core::{Kv, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let kv = Kv::new(MemoryStore::new().into_dyn());
/// kv.set("greeting", "hello").await?;
/// assert_eq!(kv.get::<String>("greeting").await?.as_deref(), Some("hello"));
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<RwLock<State>>,
    validator: Validator,
}

/// Builds a [`MemoryStore`] with limits other than the defaults.
///
/// ```
/// use kv_core::{KvStore, MemoryStore};
///
/// let small = MemoryStore::builder().max_value_bytes(1024).max_batch_ops(Some(128)).build();
/// assert_eq!(small.capabilities().max_batch_ops, Some(128));
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder {
    caps: Capabilities,
}

impl MemoryStoreBuilder {
    /// The largest value accepted (default 512 MiB).
    pub fn max_value_bytes(mut self, max: usize) -> Self {
        self.caps.max_value_bytes = max;
        self
    }

    /// The most distinct keys one batch may touch (default unlimited). A
    /// limit lets applications test their handling of
    /// [`ErrorKind::BatchTooLarge`](crate::ErrorKind) without a server.
    pub fn max_batch_ops(mut self, max: Option<usize>) -> Self {
        self.caps.max_batch_ops = max;
        self
    }

    /// Whether TTLs are accepted (default `true`). With `false` the store
    /// behaves like a backend without expiry: any TTL is
    /// [`ErrorKind::Unsupported`](crate::ErrorKind). For testing code that
    /// must run on such backends.
    pub fn ttl(mut self, enabled: bool) -> Self {
        self.caps.ttl = enabled;
        self
    }

    /// Whether keys can be listed (default `true`). With `false` the store
    /// behaves like a backend without a listing index (a Redis store with
    /// `list_index(false)`): `list`, and `clear`, `export` and copying from
    /// it, are [`ErrorKind::Unsupported`](crate::ErrorKind). For testing
    /// code that must run on such stores.
    pub fn listing(mut self, enabled: bool) -> Self {
        self.caps.listing = enabled;
        self.caps.ordered_list = enabled;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            state: Arc::default(),
            validator: Validator::new(BACKEND, self.caps),
        }
    }
}

/// The most expired entries one write purges (see [`State::purge`]).
const PURGE_PER_WRITE: usize = 1024;

#[derive(Default)]
struct State {
    map: BTreeMap<Key, Slot>,
    /// Every key with a TTL, by expiry: lets a write purge expired entries
    /// in order, at a cost proportional to what it removes.
    expiries: BTreeSet<(Instant, Key)>,
    /// The version the last write gave its key: each write takes the next,
    /// so no version is ever given twice.
    last_version: u64,
}

struct Slot {
    value: Bytes,
    expires_at: Option<Instant>,
    /// Set from [`State::last_version`] by the write that stored it.
    version: u64,
}

impl Slot {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl State {
    fn live(&self, key: &Key, now: Instant) -> Option<&Bytes> {
        self.map
            .get(key)
            .filter(|slot| slot.is_live(now))
            .map(|slot| &slot.value)
    }

    fn live_slot(&self, key: &Key, now: Instant) -> Option<&Slot> {
        self.map.get(key).filter(|slot| slot.is_live(now))
    }

    fn version(&self, key: &Key, now: Instant) -> Option<Version> {
        self.live_slot(key, now)
            .map(|slot| Version::from_u64(slot.version))
    }

    /// Removes up to [`PURGE_PER_WRITE`] entries expired at `now`, oldest
    /// first: a write after a mass expiry does bounded work under the lock,
    /// and the next writes go on where it stopped. Expired entries may
    /// remain after it; every read and write checks liveness.
    fn purge(&mut self, now: Instant) {
        for _ in 0..PURGE_PER_WRITE {
            match self.expiries.first() {
                Some((at, _)) if *at <= now => {}
                _ => break,
            }
            if let Some((_, key)) = self.expiries.pop_first() {
                self.map.remove(&key);
            }
        }
    }

    fn put(&mut self, key: Key, value: Bytes, ttl: Option<Duration>, now: Instant) {
        self.remove(&key, now);
        let expires_at = ttl.map(|ttl| now + ttl);
        if let Some(at) = expires_at {
            self.expiries.insert((at, key.clone()));
        }
        self.last_version += 1;
        let version = self.last_version;
        self.map.insert(
            key,
            Slot {
                value,
                expires_at,
                version,
            },
        );
    }

    /// Removes `key`; returns whether it was live at `now` (an expired
    /// entry not yet purged is removed too, and does not count).
    fn remove(&mut self, key: &Key, now: Instant) -> bool {
        match self.map.remove(key) {
            Some(slot) => {
                if let Some(at) = slot.expires_at {
                    self.expiries.remove(&(at, key.clone()));
                }
                slot.is_live(now)
            }
            None => false,
        }
    }
}

impl MemoryStore {
    /// An empty store with the default limits.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for other limits.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            caps: Capabilities {
                atomic_batch: true,
                max_batch_ops: None,
                max_key_bytes: MAX_KEY_BYTES,
                max_value_bytes: DEFAULT_MEMORY_MAX_VALUE_BYTES,
                ttl: true,
                cas: true,
                versions: true,
                transactions: true,
                counters: true,
                listing: true,
                ordered_list: true,
                snapshot_batch_get: true,
                persistent: false,
            },
        }
    }

    /// This store as `Arc<dyn KvStore>`, as [`Kv`](crate::Kv) takes it.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// How many entries are held, expired ones not yet purged included.
    pub fn stored_entries(&self) -> usize {
        self.read().map.len()
    }

    // A panic while holding the lock cannot leave `State` half-updated in a
    // way that breaks an invariant readers rely on, so poisoning is ignored.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> (RwLockWriteGuard<'_, State>, Instant) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        state.purge(now);
        (state, now)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.stored_entries())
            .field("capabilities", &self.validator.capabilities())
            .finish()
    }
}

#[async_trait]
impl KvStore for MemoryStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.validator.capabilities()
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        Ok(self.read().live(key, Instant::now()).cloned())
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        let ttl = self.validator.set(key, &value, options)?;
        let (mut state, now) = self.write();
        state.put(key.clone(), value, ttl, now);
        Ok(())
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let (mut state, now) = self.write();
        Ok(state.remove(key, now))
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.read().live(key, Instant::now()).is_some())
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        let range = self.validator.list(prefix, &options)?;
        if range.exhausted {
            return Ok(Page::default());
        }
        let state = self.read();
        let now = Instant::now();
        let lower = match &range.start_after {
            Some(after) => Bound::Excluded(after.as_str()),
            None => Bound::Included(range.prefix.as_str()),
        };
        let keys = state
            .map
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.as_str().starts_with(range.prefix.as_str()))
            .filter(|(_, slot)| slot.is_live(now))
            .map(|(key, _)| key.clone())
            .take(range.limit.saturating_add(1))
            .collect();
        Ok(Page::from_fetched(keys, range.limit))
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.validator.check_batch_keys(Operation::BatchGet, keys)?;
        let state = self.read();
        let now = Instant::now();
        Ok(keys
            .iter()
            .map(|key| state.live(key, now).cloned())
            .collect())
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.validator
            .check_batch_keys(Operation::BatchGetWithTtl, keys)?;
        let state = self.read();
        let now = Instant::now();
        Ok(keys
            .iter()
            .map(|key| {
                let slot = state.map.get(key).filter(|slot| slot.is_live(now))?;
                Some(Entry {
                    key: key.clone(),
                    value: slot.value.clone(),
                    ttl: slot
                        .expires_at
                        .map(|at| at.duration_since(now).max(Duration::from_millis(1))),
                })
            })
            .collect())
    }

    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        let entries = self.validator.entries(entries)?;
        if entries.is_empty() {
            return Ok(());
        }
        let (mut state, now) = self.write();
        for entry in entries {
            state.put(entry.key, entry.value, entry.ttl, now);
        }
        Ok(())
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        let keys = self.validator.distinct_keys(Operation::BatchDelete, keys)?;
        if keys.is_empty() {
            return Ok(0);
        }
        let (mut state, now) = self.write();
        Ok(keys
            .into_iter()
            .filter(|key| state.remove(key, now))
            .count() as u64)
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        let ops = self.validator.write_ops(ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let (mut state, now) = self.write();
        for op in ops {
            match op {
                WriteOp::Put(entry) => state.put(entry.key, entry.value, entry.ttl, now),
                WriteOp::Delete(key) => {
                    state.remove(&key, now);
                }
            }
        }
        Ok(())
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let ttl = self
            .validator
            .cas(key, expected.as_deref(), new.as_deref(), options)?;
        let (mut state, now) = self.write();
        if state.live(key, now) != expected.as_ref() {
            return Ok(false);
        }
        match new {
            Some(value) => state.put(key.clone(), value, ttl, now),
            None => {
                state.remove(key, now);
            }
        }
        Ok(true)
    }

    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        self.validator
            .versioned_keys(Operation::BatchGetVersioned, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let state = self.read();
        let now = Instant::now();
        Ok(keys
            .iter()
            .map(|key| {
                state.live_slot(key, now).map(|slot| Versioned {
                    value: slot.value.clone(),
                    version: Version::from_u64(slot.version),
                })
            })
            .collect())
    }

    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let (checks, writes) = self.validator.transaction(txn)?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        let (mut state, now) = self.write();
        let current: Vec<Option<Version>> = checks
            .iter()
            .map(|check| state.version(&check.key, now))
            .collect();
        let outcome = TxnOutcome::evaluate(checks, current.iter().map(Option::as_ref));
        if outcome.is_committed() {
            for write in writes {
                match write {
                    CheckedOp::Put(entry) => {
                        state.put(entry.key.clone(), entry.value.clone(), entry.ttl, now);
                    }
                    CheckedOp::Delete(key) => {
                        state.remove(key, now);
                    }
                }
            }
        }
        Ok(outcome)
    }

    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        let ttl = self.validator.increment(key, options)?;
        let (mut state, now) = self.write();
        let (current, expires_at) = match state.live_slot(key, now) {
            Some(slot) => (Some(slot.value.clone()), Some(slot.expires_at)),
            None => (None, None),
        };
        let next = self
            .validator
            .add_to_counter(key, current.as_deref(), delta)?;
        // A new key takes the TTL asked for; an existing one keeps its own.
        let ttl = match expires_at {
            Some(at) => at.map(|at| at.saturating_duration_since(now)),
            None => ttl,
        };
        state.put(key.clone(), counter::encode(next), ttl, now);
        Ok(next)
    }

    async fn health(&self) -> Result<Health> {
        let started = Instant::now();
        drop(self.read());
        Ok(Health {
            backend: BACKEND,
            latency: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_purge_expired_entries() {
        let store = MemoryStore::new();
        let short = SetOptions::ttl(Duration::from_millis(5));
        for i in 0..100 {
            let key = Key::new(format!("k{i}")).unwrap();
            store
                .set(&key, Bytes::from_static(b"v"), short)
                .await
                .unwrap();
        }
        assert_eq!(store.stored_entries(), 100);
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.delete(&Key::new("other").unwrap()).await.unwrap();
        assert_eq!(store.stored_entries(), 0);
    }

    /// After a mass expiry, each write purges at most `PURGE_PER_WRITE`
    /// entries (bounded work under the lock); expired entries left behind
    /// are never seen, not counted by deletes, and go with later writes.
    #[tokio::test]
    async fn a_write_after_a_mass_expiry_purges_a_bounded_number() {
        let store = MemoryStore::new();
        let n = PURGE_PER_WRITE * 3 + 10;
        let entries = (0..n)
            .map(|i| {
                Entry::new(Key::new(format!("k{i:05}")).unwrap(), "v")
                    .with_ttl(Duration::from_millis(5))
            })
            .collect();
        store.batch_set(entries).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        store
            .set(
                &Key::new("live").unwrap(),
                "v".into(),
                SetOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(store.stored_entries(), n - PURGE_PER_WRITE + 1);
        // Not yet purged, yet expired: invisible, and a delete counts none.
        let last = Key::new(format!("k{:05}", n - 1)).unwrap();
        assert_eq!(store.get(&last).await.unwrap(), None);
        assert_eq!(
            store
                .list("k", ListOptions::default())
                .await
                .unwrap()
                .keys
                .len(),
            0
        );
        assert!(!store.delete(&last).await.unwrap());
        assert_eq!(
            store
                .batch_delete(&[Key::new("k00000").unwrap()])
                .await
                .unwrap(),
            0
        );
        for _ in 0..3 {
            store.delete(&Key::new("other").unwrap()).await.unwrap();
        }
        assert_eq!(store.stored_entries(), 1);
    }

    #[tokio::test]
    async fn overwrite_drops_the_old_expiry() {
        let store = MemoryStore::new();
        let key = Key::new("k").unwrap();
        store
            .set(&key, "a".into(), SetOptions::ttl(Duration::from_millis(5)))
            .await
            .unwrap();
        store
            .set(&key, "b".into(), SetOptions::default())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.delete(&Key::new("other").unwrap()).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"b"[..]));
        assert!(store.read().expiries.is_empty());
    }
}

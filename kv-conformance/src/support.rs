//! Helpers the cases share: a unique key space per case, paging, probes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::{
    Capabilities, Condition, Entry, ErrorKind, Health, Key, KvStore, KvStoreExt, ListOptions, Page,
    Result, SetOptions, Transaction, TxnOutcome, Versioned, WriteOp,
};

/// A TTL short enough to wait out in a test.
pub const SHORT_TTL: Duration = Duration::from_millis(400);

/// A TTL no test outlives.
pub const LONG_TTL: Duration = Duration::from_secs(3600);

/// Sleeps until a key written now with [`SHORT_TTL`] has expired, with a
/// margin for clock granularity (the contract allows no reaper lag).
pub async fn wait_past_short_ttl() {
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(350)).await;
}

/// Whether a read that ends now still falls well inside the [`SHORT_TTL`]
/// of a write that started at `started`: only then must the key read as
/// live. On a loaded 2-core machine, or against a slow test server, the
/// write and the read alone can use up 400 ms; asserting liveness then
/// would fail for the wrong reason. (Expiry itself is checked after
/// [`wait_past_short_ttl`], which no slowness can cross.)
pub fn within_short_ttl(started: Instant) -> bool {
    started.elapsed() + Duration::from_millis(50) < SHORT_TTL
}

/// A unique random key space for one case, so cases run in parallel against
/// one server without seeing each other's keys.
#[derive(Debug, Clone)]
pub struct Space {
    prefix: String,
}

impl Space {
    /// A fresh space named after the case: `kvc/<case>/<random>/`.
    pub fn new(case: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        Self {
            prefix: format!("kvc/{case}/{:016x}/", hasher.finish()),
        }
    }

    /// The space's prefix, ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `prefix + name`, as a full string. Every valid key made here (or
    /// by [`Space::key`]) is remembered, so a store that cannot list
    /// ([`Capabilities::listing`] off) can still be checked for what is
    /// left ([`live_keys`]) and cleaned up.
    pub fn raw(&self, name: &str) -> String {
        let raw = format!("{}{name}", self.prefix);
        if Key::new(raw.as_str()).is_ok() {
            made_keys().insert(raw.clone());
        }
        raw
    }

    /// Remembers `prefix + name` for each of `names`: keys a case writes
    /// by other means than [`Space::key`] (through a namespace), so
    /// [`live_keys`] and [`Space::cleanup`] see them on a store that cannot
    /// list.
    pub fn track(&self, names: &[&str]) {
        for name in names {
            self.raw(name);
        }
    }

    /// `prefix + name`, as a key.
    pub fn key(&self, name: &str) -> Key {
        Key::new(self.raw(name)).expect("test key must be valid")
    }

    /// The keys for `names`.
    pub fn keys(&self, names: &[&str]) -> Vec<Key> {
        names.iter().map(|n| self.key(n)).collect()
    }

    /// Strips the prefix from listed keys.
    pub fn names(&self, keys: &[Key]) -> Vec<String> {
        keys.iter()
            .map(|k| {
                k.as_str()
                    .strip_prefix(self.prefix.as_str())
                    .unwrap_or_else(|| {
                        panic!("listed key {k:?} is outside the space {:?}", self.prefix)
                    })
                    .to_owned()
            })
            .collect()
    }

    /// Removes everything in the space and checks it is gone. On a store
    /// that cannot list, deletes the keys [`Space::key`] made (and those
    /// [`Space::track`] named) instead; keys a typed namespace wrote under
    /// other names stay on the test server.
    pub async fn cleanup(&self, store: &dyn KvStore) {
        if !store.capabilities().listing {
            let keys = keys_made_under(&self.prefix);
            delete_all(store, &keys).await;
            let left = live_among(store, &keys).await;
            assert!(left.is_empty(), "cleanup left {left:?}");
            forget_keys_under(&self.prefix);
            return;
        }
        forget_keys_under(&self.prefix);
        store
            .clear(&self.prefix)
            .await
            .expect("cleanup: clear failed");
        let left = store
            .list(&self.prefix, ListOptions::default().limit(1))
            .await
            .expect("cleanup: list failed");
        assert!(left.keys.is_empty(), "cleanup left {:?}", left.keys);
    }
}

/// `Bytes` from a string.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Writes without TTL, panicking on error.
pub async fn put(store: &dyn KvStore, key: &Key, value: &str) {
    store
        .set(key, b(value), SetOptions::default())
        .await
        .unwrap_or_else(|e| panic!("set {key:?}: {e}"));
}

/// Writes `entries` for a case's setup in as few `batch_set`s as the
/// backend's `max_batch_ops` allows, panicking on error. For cases about
/// something else than one batch (listing, expiry), so they run on backends
/// with any limit.
pub async fn set_all(store: &dyn KvStore, entries: Vec<Entry>) {
    let chunk = store
        .capabilities()
        .max_batch_ops
        .unwrap_or(usize::MAX)
        .max(1);
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let batch: Vec<Entry> = entries.by_ref().take(chunk).collect();
        store
            .batch_set(batch)
            .await
            .unwrap_or_else(|e| panic!("batch_set: {e}"));
    }
}

/// Reads, panicking on error.
pub async fn get(store: &dyn KvStore, key: &Key) -> Option<Bytes> {
    store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("get {key:?}: {e}"))
}

/// Asserts that `result` failed with `kind`.
#[track_caller]
pub fn assert_kind<T: std::fmt::Debug>(result: Result<T>, kind: ErrorKind) {
    match result {
        Err(e) => assert_eq!(e.kind(), kind, "expected {kind:?}, got error {e}"),
        Ok(v) => panic!("expected {kind:?}, got Ok({v:?})"),
    }
}

/// Every key ever made by [`Space::key`] in this process (until its
/// space's cleanup).
fn made_keys() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<String>> {
    static MADE: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    MADE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The keys [`Space::key`] made that start with `prefix`, ascending.
fn names_under(made: &std::collections::BTreeSet<String>, prefix: &str) -> Vec<String> {
    made.range(prefix.to_owned()..)
        .take_while(|k| k.starts_with(prefix))
        .cloned()
        .collect()
}

/// [`names_under`] as keys.
fn keys_made_under(prefix: &str) -> Vec<Key> {
    names_under(&made_keys(), prefix)
        .into_iter()
        .map(|k| Key::new(k).expect("made by Space::key"))
        .collect()
}

/// Forgets the keys [`Space::key`] made under `prefix` (its space is
/// cleaned up), so the record stays as small as the cases running.
fn forget_keys_under(prefix: &str) {
    let mut made = made_keys();
    for name in names_under(&made, prefix) {
        made.remove(&name);
    }
}

/// The chunk size that fits the store's `max_batch_ops`.
fn batch_chunk(store: &dyn KvStore) -> usize {
    store
        .capabilities()
        .max_batch_ops
        .unwrap_or(1000)
        .clamp(1, 1000)
}

/// Which of `keys` are live, in their order.
async fn live_among(store: &dyn KvStore, keys: &[Key]) -> Vec<Key> {
    let mut live = Vec::new();
    for chunk in keys.chunks(batch_chunk(store)) {
        let found = store
            .batch_exists(chunk)
            .await
            .unwrap_or_else(|e| panic!("batch_exists: {e}"));
        live.extend(
            chunk
                .iter()
                .zip(found)
                .filter(|(_, found)| *found)
                .map(|(k, _)| k.clone()),
        );
    }
    live
}

async fn delete_all(store: &dyn KvStore, keys: &[Key]) {
    for chunk in keys.chunks(batch_chunk(store)) {
        store
            .batch_delete(chunk)
            .await
            .unwrap_or_else(|e| panic!("batch_delete: {e}"));
    }
}

/// The live keys under `prefix`, ascending: [`list_all`] with `limit` on a
/// store that lists; on one that cannot ([`Capabilities::listing`] off),
/// those of the keys [`Space::key`] made under `prefix` that are live. For
/// cases about something else than listing, checking what a write left.
pub async fn live_keys(store: &dyn KvStore, prefix: &str, limit: usize) -> Vec<Key> {
    if store.capabilities().listing {
        return list_all(store, prefix, limit).await;
    }
    live_among(store, &keys_made_under(prefix)).await
}

/// Lists every key with `prefix` page by page with `limit`, checking the
/// paging rules on every page: ascending, at most `limit`, a page with a
/// cursor is full and its cursor is its last key.
pub async fn list_all(store: &dyn KvStore, prefix: &str, limit: usize) -> Vec<Key> {
    let mut all: Vec<Key> = Vec::new();
    let mut cursor = None;
    for _ in 0..100_000 {
        let options = ListOptions {
            start_after: cursor.take(),
            limit: Some(limit),
        };
        let page = store
            .list(prefix, options)
            .await
            .unwrap_or_else(|e| panic!("list {prefix:?} limit {limit}: {e}"));
        check_page(&page, limit, store.capabilities());
        if let (Some(last), Some(first)) = (all.last(), page.keys.first())
            && store.capabilities().ordered_list
        {
            assert!(
                last < first,
                "pages overlap or go backwards: {last:?} then {first:?}"
            );
        }
        all.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("listing {prefix:?} did not end");
}

fn check_page(page: &Page, limit: usize, caps: Capabilities) {
    assert!(
        page.keys.len() <= limit,
        "page of {} keys over limit {limit}",
        page.keys.len()
    );
    if caps.ordered_list {
        assert!(
            page.keys.windows(2).all(|w| w[0] < w[1]),
            "page not ascending: {:?}",
            page.keys
        );
    }
    if let Some(next) = &page.next {
        assert_eq!(page.keys.len(), limit, "a page with a cursor must be full");
        assert_eq!(
            page.keys.last(),
            Some(next),
            "the cursor must be the page's last key"
        );
    }
}

/// A store wrapper that counts the calls reaching the inner store: proves
/// that invalid input is rejected before any I/O.
#[derive(Debug)]
pub struct Probe {
    inner: Arc<dyn KvStore>,
    calls: AtomicU64,
}

impl Probe {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn KvStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: AtomicU64::new(0),
        })
    }

    /// How many calls reached the inner store.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for Probe {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.hit();
        self.inner.get(key).await
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        self.hit();
        self.inner.set(key, value, options).await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.hit();
        self.inner.delete(key).await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.hit();
        self.inner.exists(key).await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.hit();
        self.inner.list(prefix, options).await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.hit();
        self.inner.batch_get(keys).await
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        self.hit();
        self.inner.batch_get_with_ttl(keys).await
    }

    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        self.hit();
        self.inner.batch_set(entries).await
    }

    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        self.hit();
        self.inner.batch_set_borrowed(entries).await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        self.hit();
        self.inner.batch_delete(keys).await
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        self.hit();
        self.inner.write_batch(ops).await
    }

    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        self.hit();
        self.inner.write_batch_borrowed(ops).await
    }

    async fn get_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        self.hit();
        self.inner.get_versioned(key).await
    }

    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        self.hit();
        self.inner.batch_get_versioned(keys).await
    }

    async fn write_if(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        self.hit();
        self.inner.write_if(key, condition, new, options).await
    }

    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        self.hit();
        self.inner.transact(txn).await
    }

    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        self.hit();
        self.inner.increment(key, delta, options).await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        self.hit();
        self.inner
            .compare_and_swap(key, expected, new, options)
            .await
    }

    async fn health(&self) -> Result<Health> {
        self.hit();
        self.inner.health().await
    }
}

/// The share, in percent, of the full size that the two large cases write
/// (the 50,000-entry bulk load and the 20,000-key export); 100 unless a
/// test binary called [`scale_large_cases`].
static LARGE_CASES_PERCENT: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(100);

/// Scales the suite's two large cases (the bulk load of 50,000 entries and
/// the export of 20,000 keys) to `percent` of their size, for a test server
/// that is a slow stand-in for the real one: the MongoDB suite calls it
/// with 20 when its server is SecantusDB, whose range scans and
/// transactions cost far more than mongod's (the two cases took about six
/// minutes of its run), and runs the full size against a real mongod. Call
/// it from the suite's factory, before the store is returned; it holds for
/// the whole test binary. At least 1% (and 100 entries) is kept.
pub fn scale_large_cases(percent: usize) {
    LARGE_CASES_PERCENT.store(percent.clamp(1, 100), std::sync::atomic::Ordering::Relaxed);
}

/// `full` scaled by [`scale_large_cases`], at least 100.
pub(crate) fn large(full: usize) -> usize {
    let percent = LARGE_CASES_PERCENT.load(std::sync::atomic::Ordering::Relaxed);
    (full * percent / 100).max(100)
}

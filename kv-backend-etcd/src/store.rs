//! [`EtcdStore`]: the `KvStore` implementation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::proto::PbKeyValue;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KvClient, PutOptions, Txn, TxnOp,
    TxnResponse,
};
use kv_core::backend::Validator;
use kv_core::backend::stamp::{self, now_millis};
use kv_core::{
    Capabilities, Condition, Entry, Key, KvStore, ListOptions, Operation, Page, Result, SetOptions,
    Transaction, TxnOutcome, Versioned, WriteOp,
};

use crate::config::EtcdConfig;
use crate::error::{BACKEND, is_lease_not_found, map_etcd_error};
use crate::lease::Leases;
use crate::txn::{self, OP_OVERHEAD, TXN_OVERHEAD};

/// How many times `compare_and_swap` re-reads after losing a race before it
/// gives up with a temporary error.
const CAS_ATTEMPTS: usize = 64;

/// The etcd backend: one gRPC channel balanced over the endpoints, every
/// batch one Txn, exact TTL on shared leases.
///
/// Cheap to clone; clones share the channel and the lease cache.
///
/// ```no_run
/// use kv_backend_etcd::EtcdStore;
/// use kv_core::Kv;
///
/// # async fn demo() -> kv_core::Result<()> {
/// let store = EtcdStore::builder()
///     .endpoints(["10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"])
///     .user("app", "s3cret")
///     .key_prefix("myapp/")
///     .connect()
///     .await?;
/// let kv = Kv::new(store.into_dyn());
/// kv.batch_set([("a", 1), ("b", 2)]).await?; // one Txn
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct EtcdStore {
    pub(crate) client: Client,
    pub(crate) kv: KvClient,
    pub(crate) leases: Arc<Leases>,
    pub(crate) prefix: Arc<[u8]>,
    pub(crate) validator: Validator,
    pub(crate) config: Arc<EtcdConfig>,
}

impl EtcdStore {
    /// This store as `Arc<dyn KvStore>`.
    pub fn into_dyn(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }

    /// The etcd-client connection, for requests of your own.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.config.key_prefix
    }

    /// How many lease buckets the store has cached (each is one etcd lease).
    pub fn cached_leases(&self) -> usize {
        self.leases.cached()
    }

    /// The stored form of one key (kv's stamp and the value), as etcd
    /// holds it; `None` when absent.
    async fn stored(&self, op: Operation, key: &Key) -> Result<Option<Vec<u8>>> {
        Ok(self.stored_kv(op, key).await?.map(|kv| kv.value))
    }

    /// The key-value etcd holds for one key, revisions included; `None`
    /// when absent.
    pub(crate) async fn stored_kv(&self, op: Operation, key: &Key) -> Result<Option<PbKeyValue>> {
        let mut resp = self
            .kv
            .clone()
            .get(self.full_key(key), Some(self.get_options()))
            .await
            .map_err(|e| map_etcd_error(op, e))?;
        Ok(resp.take_kvs().pop().map(|kv| {
            let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
            let (version, lease) = (kv.version(), kv.lease());
            let (key, value) = kv.into_key_value();
            PbKeyValue {
                key,
                create_revision,
                mod_revision,
                version,
                value,
                lease,
            }
        }))
    }

    pub(crate) fn full_key(&self, key: &Key) -> Vec<u8> {
        txn::full_key(&self.prefix, key.as_str().as_bytes())
    }

    /// One Txn of Ranges over the distinct `keys`, each found key-value
    /// read by `decode(key, kv, now)`; the answer aligned with the input.
    pub(crate) async fn read_kvs<T: Clone>(
        &self,
        op: Operation,
        keys: &[Key],
        decode: impl Fn(&Key, PbKeyValue, u64) -> Result<Option<T>>,
    ) -> Result<Vec<Option<T>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let distinct = self.validator.distinct_keys(op, keys)?;
        self.check_request_bytes(op, &[], &distinct)?;
        let ops: Vec<TxnOp> = distinct
            .iter()
            .map(|k| TxnOp::get(self.full_key(k), Some(self.get_options())))
            .collect();
        let resp = self.txn(op, ops).await?;
        let now = now_millis();
        let found = txn::range_kvs(resp)
            .map(|kvs| kvs.and_then(|mut kvs| kvs.pop()))
            .zip(&distinct)
            .map(|(stored, key)| match stored {
                Some(stored) => decode(key, stored, now),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        if found.len() != distinct.len() {
            return Err(txn::short_answer(op));
        }
        Ok(txn::align(keys, &distinct, found))
    }

    fn get_options(&self) -> GetOptions {
        let options = GetOptions::new();
        if self.config.serializable_reads {
            options.with_serializable()
        } else {
            options
        }
    }

    /// One round trip: a count-only Range of the prefix key itself.
    pub(crate) async fn ping(&self, op: Operation) -> Result<()> {
        let key = if self.prefix.is_empty() {
            vec![0]
        } else {
            self.prefix.to_vec()
        };
        self.kv
            .clone()
            .get(key, Some(self.get_options().with_count_only()))
            .await
            .map_err(|e| map_etcd_error(op, e))?;
        Ok(())
    }

    /// Fails with `BatchTooLarge` when a Txn putting `entries` and naming
    /// `keys` (reads or deletes) would exceed the server's
    /// `--max-request-bytes`.
    pub(crate) fn check_request_bytes(
        &self,
        op: Operation,
        entries: &[&Entry],
        keys: &[&Key],
    ) -> Result<()> {
        let bytes = TXN_OVERHEAD
            + entries
                .iter()
                .map(|e| txn::put_bytes(&self.prefix, e))
                .sum::<usize>()
            + keys
                .iter()
                .map(|k| OP_OVERHEAD + self.prefix.len() + k.as_str().len())
                .sum::<usize>();
        if bytes > self.config.max_request_bytes {
            return Err(
                kv_core::Error::new(kv_core::ErrorKind::BatchTooLarge, BACKEND, op).with_message(
                    format!(
                        "the Txn would be about {bytes} bytes, over the server's max request bytes \
                     ({}); split the batch",
                        self.config.max_request_bytes
                    ),
                ),
            );
        }
        Ok(())
    }

    /// Sends one Txn of `ops` without conditions.
    async fn txn(&self, op: Operation, ops: Vec<TxnOp>) -> Result<TxnResponse> {
        self.kv
            .clone()
            .txn(Txn::new().and_then(ops))
            .await
            .map_err(|e| map_etcd_error(op, e))
    }

    /// Runs a write that may name leases; when etcd no longer knows one of
    /// them (it rejects the whole request, so nothing was applied), forgets
    /// the cache and runs it once more with fresh leases.
    pub(crate) async fn write<T, F, Fut>(&self, op: Operation, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        match attempt().await {
            Err(e) if is_lease_not_found(&e) => {
                self.leases.forget_all();
                attempt().await
            }
            other => other,
        }
        .map_err(|e| map_etcd_error(op, e))
    }

    /// The Put of `entry` in kv's stored format, on the lease of its expiry.
    pub(crate) async fn put_op(
        &self,
        entry: &Entry,
        now: u64,
    ) -> std::result::Result<TxnOp, etcd_client::Error> {
        let options = self.put_options(entry.ttl, now).await?;
        let mut stored = Vec::new();
        stamp::encode_into(&mut stored, &entry.value, entry.ttl, now);
        Ok(TxnOp::put(self.full_key(&entry.key), stored, options))
    }

    async fn put_options(
        &self,
        ttl: Option<Duration>,
        now: u64,
    ) -> std::result::Result<Option<PutOptions>, etcd_client::Error> {
        Ok(match ttl {
            Some(ttl) => Some(PutOptions::new().with_lease(self.leases.lease_for(ttl, now).await?)),
            // No lease: a put without TTL detaches any earlier lease.
            None => None,
        })
    }

    /// One Txn of `ops` (puts of `entries` and deletes of `deletes`).
    async fn put_and_delete(
        &self,
        op: Operation,
        entries: &[&Entry],
        deletes: &[&Key],
    ) -> Result<()> {
        self.check_request_bytes(op, entries, deletes)?;
        self.write(op, || async move {
            let now = now_millis();
            let mut ops = Vec::with_capacity(entries.len() + deletes.len());
            for entry in entries {
                ops.push(self.put_op(entry, now).await?);
            }
            ops.extend(
                deletes
                    .iter()
                    .map(|k| TxnOp::delete(self.full_key(k), None)),
            );
            self.kv.clone().txn(Txn::new().and_then(ops)).await
        })
        .await?;
        Ok(())
    }
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.config.endpoints)
            .field("user", &self.config.user)
            .field("key_prefix", &self.config.key_prefix)
            .field("cached_leases", &self.leases.cached())
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KvStore for EtcdStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.validator.capabilities()
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let op = Operation::Get;
        match self.stored(op, key).await? {
            Some(stored) => txn::live_value(op, key.as_str(), stored, now_millis()),
            None => Ok(None),
        }
    }

    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        let ttl = self.validator.set(key, &value, options)?;
        let value = &value;
        self.write(Operation::Set, || async move {
            let now = now_millis();
            let options = self.put_options(ttl, now).await?;
            let mut stored = Vec::new();
            stamp::encode_into(&mut stored, value, ttl, now);
            self.kv
                .clone()
                .put(self.full_key(key), stored, options)
                .await
        })
        .await?;
        Ok(())
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let op = Operation::Delete;
        let resp = self
            .kv
            .clone()
            .delete(
                self.full_key(key),
                Some(DeleteOptions::new().with_prev_key()),
            )
            .await
            .map_err(|e| map_etcd_error(op, e))?;
        Ok(txn::count_live(resp.prev_kvs().iter().map(|kv| (kv.key(), kv.value()))) > 0)
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        // A value in another format is a present key, as on every backend.
        Ok(self
            .stored(Operation::Exists, key)
            .await?
            .is_some_and(|stored| !stamp::expired(&stored, now_millis())))
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        let op = Operation::List;
        let range = self.validator.list(prefix, &options)?;
        if range.exhausted {
            return Ok(Page::default());
        }
        let (mut from, end) = txn::list_bounds(&self.prefix, &range);
        let want = range.limit.saturating_add(1);
        let mut keys = Vec::with_capacity(want.min(1024));
        let mut revision = None;
        // Expired keys are skipped; a page stays full by reading on from
        // the last key seen, at the revision of the first read.
        loop {
            let missing = i64::try_from(want - keys.len()).unwrap_or(i64::MAX);
            let mut options = self
                .get_options()
                .with_range(end.clone())
                .with_limit(missing);
            if let Some(revision) = revision {
                options = options.with_revision(revision);
            }
            let mut resp = self
                .kv
                .clone()
                .get(from.clone(), Some(options))
                .await
                .map_err(|e| map_etcd_error(op, e))?;
            revision = revision.or(resp.header().map(|h| h.revision()));
            let more = resp.more();
            let kvs = resp.take_kvs();
            let now = now_millis();
            for kv in &kvs {
                if let Some(key) = txn::listed_key(&self.prefix, kv.key(), kv.value(), now) {
                    keys.push(key);
                }
            }
            match kvs.last() {
                Some(last) if more && keys.len() < want => from = txn::successor(last.key()),
                _ => break,
            }
        }
        Ok(Page::from_fetched(keys, range.limit))
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let op = Operation::BatchGet;
        self.read_kvs(op, keys, |key, kv, now| {
            txn::live_value(op, key.as_str(), kv.value, now)
        })
        .await
    }

    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        let op = Operation::BatchGetWithTtl;
        // The stamp holds the expiry: the TTL comes with the value.
        self.read_kvs(op, keys, |key, kv, now| {
            Ok(
                txn::live_value_with_ttl(op, key.as_str(), kv.value, now)?.map(|(value, ttl)| {
                    Entry {
                        key: key.clone(),
                        value,
                        ttl,
                    }
                }),
            )
        })
        .await
    }

    /// Copies the entries into [`batch_set`](Self::batch_set): the Txn is built from validated owned entries.
    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        self.batch_set(entries.to_vec()).await
    }

    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        let entries = self.validator.entries(entries)?;
        if entries.is_empty() {
            return Ok(());
        }
        let refs: Vec<&Entry> = entries.iter().collect();
        self.put_and_delete(Operation::BatchSet, &refs, &[]).await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let op = Operation::BatchDelete;
        let distinct = self.validator.distinct_keys(op, keys)?;
        self.check_request_bytes(op, &[], &distinct)?;
        let ops: Vec<TxnOp> = distinct
            .iter()
            .map(|k| TxnOp::delete(self.full_key(k), Some(DeleteOptions::new().with_prev_key())))
            .collect();
        let resp = self.txn(op, ops).await?;
        txn::count_live_deleted(op, resp)
    }

    /// Copies the operations into [`write_batch`](Self::write_batch): the Txn is built from validated owned entries.
    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        self.write_batch(ops.to_vec()).await
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        let ops = self.validator.write_ops(ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let (mut puts, mut deletes) = (Vec::new(), Vec::new());
        for op in &ops {
            match op {
                WriteOp::Put(entry) => puts.push(entry),
                WriteOp::Delete(key) => deletes.push(key),
            }
        }
        self.put_and_delete(Operation::WriteBatch, &puts, &deletes)
            .await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let op = Operation::CompareAndSwap;
        let ttl = self
            .validator
            .cas(key, expected.as_deref(), new.as_deref(), options)?;
        let full = self.full_key(key);
        // First guess, right for keys without TTL: absent (version 0), or
        // the expected value stored without expiry. When the guess fails the
        // Txn reads the key instead; if its live value still matches
        // (an expired key, a value with a TTL), the next Txn is guarded by
        // that exact revision. A lost race re-reads and decides again.
        let mut guard = match &expected {
            None => Compare::version(full.clone(), CompareOp::Equal, 0),
            Some(value) => {
                let mut plain = Vec::new();
                stamp::encode_into(&mut plain, value, None, 0);
                Compare::value(full.clone(), CompareOp::Equal, plain)
            }
        };
        let (full_key, new) = (&full, &new);
        for _ in 0..CAS_ATTEMPTS {
            let guarded = &guard;
            let resp = self
                .write(op, || async move {
                    let now = now_millis();
                    let write = match new {
                        Some(value) => {
                            let options = self.put_options(ttl, now).await?;
                            let mut stored = Vec::new();
                            stamp::encode_into(&mut stored, value, ttl, now);
                            TxnOp::put(full_key.clone(), stored, options)
                        }
                        None => TxnOp::delete(full_key.clone(), None),
                    };
                    let txn = Txn::new()
                        .when([guarded.clone()])
                        .and_then([write])
                        .or_else([TxnOp::get(full_key.clone(), None)]);
                    self.kv.clone().txn(txn).await
                })
                .await?;
            if resp.succeeded() {
                return Ok(true);
            }
            let current = txn::range_kvs(resp)
                .next()
                .flatten()
                .and_then(|mut kvs| kvs.pop());
            let now = now_millis();
            let live = match &current {
                Some(kv) => txn::live_slice(op, key.as_str(), &kv.value, now)?,
                None => None,
            };
            if live != expected.as_deref() {
                return Ok(false);
            }
            guard = match current {
                Some(kv) => Compare::mod_revision(full.clone(), CompareOp::Equal, kv.mod_revision),
                None => Compare::version(full.clone(), CompareOp::Equal, 0),
            };
        }
        Err(
            kv_core::Error::new(kv_core::ErrorKind::Backend, BACKEND, op)
                .with_key(key.as_str())
                .with_temporary(true)
                .with_message(format!(
                    "the key changed under every one of {CAS_ATTEMPTS} attempts; try again"
                )),
        )
    }

    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        self.read_versioned(keys).await
    }

    async fn get_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        self.read_one_versioned(key).await
    }

    async fn write_if(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let ttl = self.validator.write_if(key, new.as_deref(), options)?;
        let txn = Transaction::write_if(key, condition, new, ttl);
        Ok(self.transact_txn(&txn).await?.is_committed())
    }

    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        self.transact_txn(txn).await
    }

    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        self.increment_counter(key, delta, options).await
    }

    async fn health(&self) -> Result<kv_core::Health> {
        let started = Instant::now();
        self.ping(Operation::Health).await?;
        Ok(kv_core::Health {
            backend: BACKEND,
            latency: started.elapsed(),
        })
    }
}

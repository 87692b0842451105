//! [`Kv`]: the typed client applications use.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::Entry;
use crate::bulk::{BulkReport, BulkWriter};
use crate::capabilities::Capabilities;
use crate::codec::{Codec, Json};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::ext::KvStoreExt;
use crate::key::Key;
use crate::options::{ListOptions, Page, SetOptions};
use crate::prefix::PrefixStore;
use crate::store::{Health, KvStore};
use crate::stored::Stored;
use crate::typed_batch::Batch;

/// The typed client: serde values over any [`KvStore`], encoded with a
/// [`Codec`] ([`Json`] by default).
///
/// Cheap to clone (an `Arc` and a codec), `Send + Sync`. Keys are `&str`
/// (or anything `AsRef<str>`) and are validated before any I/O.
///
/// ```
/// use std::time::Duration;
/// use serde::{Deserialize, Serialize};
/// use kv_core::{Kv, MemoryStore};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct User { name: String, admin: bool }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let kv = Kv::new(MemoryStore::new().into_dyn());
/// let users = kv.namespace("users")?;
///
/// users.set("1", &User { name: "Ada".into(), admin: true }).await?;
/// users.batch_set([("2", User { name: "Bob".into(), admin: false })]).await?;
/// let found: Vec<Option<User>> = users.batch_get(["1", "2", "3"]).await?;
/// assert_eq!(found[0].as_ref().map(|u| u.name.as_str()), Some("Ada"));
/// assert!(found[2].is_none());
///
/// kv.set_with_ttl("session", "token", Duration::from_secs(60)).await?;
/// assert_eq!(users.list("", Default::default()).await?.keys, ["1", "2"]);
/// assert_eq!(users.clear().await?, 2);
/// assert!(kv.exists("session").await?);
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
#[derive(Clone)]
pub struct Kv<C: Codec = Json> {
    store: Arc<dyn KvStore>,
    codec: C,
}

impl Kv<Json> {
    /// A client over `store` with the JSON codec.
    pub fn new(store: Arc<dyn KvStore>) -> Self {
        Self { store, codec: Json }
    }
}

impl<C: Codec> Kv<C> {
    /// A client over `store` with `codec`.
    pub fn with_codec(store: Arc<dyn KvStore>, codec: C) -> Self {
        Self { store, codec }
    }

    /// The same store with another codec.
    pub fn codec<D: Codec>(&self, codec: D) -> Kv<D> {
        Kv {
            store: self.store.clone(),
            codec,
        }
    }

    /// The same client over its store wrapped in `layer`; the layer added
    /// last sees each call first. See [`Layer`](crate::Layer) for the order
    /// that works.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_core::{Kv, MemoryStore, RetryLayer, TimeoutLayer};
    ///
    /// let kv = Kv::new(MemoryStore::new().into_dyn())
    ///     .layer(TimeoutLayer::new(Duration::from_secs(1)))
    ///     .layer(RetryLayer::new());
    /// assert_eq!(kv.store().backend(), "memory");
    /// ```
    pub fn layer(self, layer: impl crate::Layer) -> Self {
        Self {
            store: layer.layer(self.store),
            codec: self.codec,
        }
    }

    /// The raw store, for byte-level access.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// What the backend promises.
    pub fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }

    /// One round trip to the server.
    ///
    /// # Errors
    ///
    /// The backend's error when the server does not answer.
    pub async fn health(&self) -> Result<Health> {
        self.store.health().await
    }

    pub(crate) fn key(&self, op: Operation, key: &str) -> Result<Key> {
        Key::new(key).map_err(|e| e.in_context(self.store.backend(), op))
    }

    fn keys<K: AsRef<str>>(
        &self,
        op: Operation,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Key>> {
        keys.into_iter().map(|k| self.key(op, k.as_ref())).collect()
    }

    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        op: Operation,
        key: &Key,
        value: &T,
    ) -> Result<Bytes> {
        self.codec.encode(value).map(Bytes::from).map_err(|source| {
            Error::new(ErrorKind::Encode, self.store.backend(), op)
                .with_key(key.as_str())
                .with_message(format!("{} codec", self.codec.name()))
                .with_source(source)
        })
    }

    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        op: Operation,
        key: &Key,
        bytes: &[u8],
    ) -> Result<T> {
        self.codec.decode(bytes).map_err(|source| {
            Error::new(ErrorKind::Decode, self.store.backend(), op)
                .with_key(key.as_str())
                .with_message(format!(
                    "{} codec could not decode the stored value as {}",
                    self.codec.name(),
                    std::any::type_name::<T>()
                ))
                .with_source(source)
        })
    }

    /// Reads and decodes one value; `None` when absent or expired.
    ///
    /// # Errors
    ///
    /// `InvalidKey`; `Decode` (naming the key) when the stored bytes are not
    /// a `T`; the backend's errors.
    pub async fn get<T: DeserializeOwned>(&self, key: impl AsRef<str>) -> Result<Option<T>> {
        let key = self.key(Operation::Get, key.as_ref())?;
        match self.store.get(&key).await? {
            Some(bytes) => self.decode(Operation::Get, &key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Encodes and writes one value without TTL (clearing an earlier TTL).
    ///
    /// # Errors
    ///
    /// `InvalidKey`, `Encode`, `ValueTooLarge`; the backend's errors.
    pub async fn set<T: Serialize + ?Sized>(&self, key: impl AsRef<str>, value: &T) -> Result<()> {
        self.set_with(key.as_ref(), value, SetOptions::default())
            .await
    }

    /// Encodes and writes one value that expires after `ttl`.
    ///
    /// # Errors
    ///
    /// As [`Kv::set`], and `Unsupported` where the backend has no TTL,
    /// `InvalidArgument` for a zero TTL.
    pub async fn set_with_ttl<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<str>,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        self.set_with(key.as_ref(), value, SetOptions::ttl(ttl))
            .await
    }

    async fn set_with<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        options: SetOptions,
    ) -> Result<()> {
        let key = self.key(Operation::Set, key)?;
        let bytes = self.encode(Operation::Set, &key, value)?;
        self.store.set(&key, bytes, options).await
    }

    /// Removes one key; returns whether a live key was removed.
    ///
    /// # Errors
    ///
    /// `InvalidKey`; the backend's errors.
    pub async fn delete(&self, key: impl AsRef<str>) -> Result<bool> {
        let key = self.key(Operation::Delete, key.as_ref())?;
        self.store.delete(&key).await
    }

    /// Whether a live key exists.
    ///
    /// # Errors
    ///
    /// `InvalidKey`; the backend's errors.
    pub async fn exists(&self, key: impl AsRef<str>) -> Result<bool> {
        let key = self.key(Operation::Exists, key.as_ref())?;
        self.store.exists(&key).await
    }

    /// Reads many values in one native operation, aligned with `keys`.
    ///
    /// # Errors
    ///
    /// `InvalidKey` (before any I/O), `BatchTooLarge`, `Decode`; the
    /// backend's errors.
    pub async fn batch_get<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<T>>> {
        let keys = self.keys(Operation::BatchGet, keys)?;
        let values = self.store.batch_get(&keys).await?;
        keys.iter()
            .zip(values)
            .map(|(key, value)| match value {
                Some(bytes) => self.decode(Operation::BatchGet, key, &bytes).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// Writes many values without TTL in one native operation (atomic where
    /// the backend says so). The last value for a repeated key wins.
    ///
    /// # Errors
    ///
    /// `InvalidKey`, `Encode`, `ValueTooLarge`, `BatchTooLarge` before any
    /// write; the backend's errors.
    pub async fn batch_set<K: AsRef<str>, V: Serialize>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        self.batch_set_with(entries, None).await
    }

    /// Like [`Kv::batch_set`], every entry expiring after `ttl`. For a TTL
    /// per entry, use [`Kv::batch`].
    ///
    /// # Errors
    ///
    /// As [`Kv::batch_set`], and `Unsupported`/`InvalidArgument` for the TTL.
    pub async fn batch_set_with_ttl<K: AsRef<str>, V: Serialize>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
        ttl: Duration,
    ) -> Result<()> {
        self.batch_set_with(entries, Some(ttl)).await
    }

    /// A [`BulkWriter`] into this client's store, with its defaults; tune
    /// it and pass it to [`Kv::bulk_set_with`].
    pub fn bulk_writer(&self) -> BulkWriter {
        BulkWriter::new(self.store.clone())
    }

    /// Loads any number of `(key, value)` pairs without TTL through a
    /// default [`BulkWriter`]: native batches, several at once, bounded
    /// memory, temporary errors retried. See [`Kv::bulk_set_with`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_core::Result<()> {
    /// let kv = kv_core::Kv::new(kv_core::MemoryStore::new().into_dyn());
    /// let report = kv.bulk_set((0..5_000).map(|i| (format!("user:{i}"), i))).await;
    /// assert!(report.is_complete());
    /// assert_eq!(kv.get::<i32>("user:4999").await?, Some(4999));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn bulk_set<K: AsRef<str>, V: Serialize>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> BulkReport {
        self.bulk_set_with(&self.bulk_writer(), entries, None).await
    }

    /// Loads `(key, value)` pairs through `writer`, each expiring after
    /// `ttl` if given. Values are encoded as the input is read; a pair
    /// whose key is invalid or whose value does not encode is skipped and
    /// reported as a failed chunk of its own, and the rest load.
    ///
    /// The writer must come from this client's [`Kv::bulk_writer`] (or be
    /// a clone of it): a writer writes into its own store, so one made by
    /// the root client would load a namespace's keys without their prefix.
    /// Such a writer is refused before the input is read: the report has
    /// one failed chunk with an `InvalidArgument` error and
    /// `stopped_early`.
    pub async fn bulk_set_with<K: AsRef<str>, V: Serialize>(
        &self,
        writer: &BulkWriter,
        entries: impl IntoIterator<Item = (K, V)>,
        ttl: Option<Duration>,
    ) -> BulkReport {
        let op = Operation::BatchSet;
        if !self.same_store(writer.store()) {
            return BulkReport::refused(self.foreign(op, "bulk writer", "bulk_writer()"));
        }
        let entries = entries.into_iter().map(|(key, value)| {
            let key = self.key(op, key.as_ref())?;
            let value = self.encode(op, &key, &value)?;
            Ok(Entry { key, value, ttl })
        });
        writer.write_results(futures::stream::iter(entries)).await
    }

    async fn batch_set_with<K: AsRef<str>, V: Serialize>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let op = Operation::BatchSet;
        let entries = entries
            .into_iter()
            .map(|(key, value)| {
                let key = self.key(op, key.as_ref())?;
                let value = self.encode(op, &key, &value)?;
                Ok(Entry { key, value, ttl })
            })
            .collect::<Result<Vec<_>>>()?;
        self.store.batch_set(entries).await
    }

    /// Removes many keys in one native operation; returns how many live keys
    /// were removed.
    ///
    /// # Errors
    ///
    /// `InvalidKey`, `BatchTooLarge` before any write; the backend's errors.
    pub async fn batch_delete<K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        let keys = self.keys(Operation::BatchDelete, keys)?;
        self.store.batch_delete(&keys).await
    }

    /// Starts a typed [`Batch`] of puts (each with its own TTL) and deletes,
    /// to apply with [`Kv::write_batch`].
    pub fn batch(&self) -> Batch<C> {
        Batch::new(self.clone())
    }

    /// Applies a [`Batch`] in one native operation (atomic where the backend
    /// says so).
    ///
    /// The batch must come from this client (or a clone of it): its keys
    /// were checked and namespaced by the client that built it, so a batch
    /// built on `users` and passed to the root client would write outside
    /// the namespace. Such a batch is refused and nothing is written.
    ///
    /// ```
    /// use kv_core::{ErrorKind, Kv, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let kv = Kv::new(MemoryStore::new().into_dyn());
    /// let users = kv.namespace("users")?;
    /// let err = kv.write_batch(users.batch().put("1", "ada")).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    /// users.write_batch(users.batch().put("1", "ada")).await?;
    /// assert_eq!(kv.get::<String>("users:1").await?.as_deref(), Some("ada"));
    /// # Ok::<(), kv_core::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidArgument` for a batch built by another client; the first
    /// error met while building the batch (bad key, encode failure), then
    /// the validation errors, all before any write; the backend's errors.
    pub async fn write_batch(&self, batch: Batch<C>) -> Result<()> {
        if !self.same_store(batch.store()) {
            return Err(self.foreign(Operation::WriteBatch, "batch", "batch()"));
        }
        let ops = batch.into_ops()?;
        self.store.write_batch(ops).await
    }

    /// Whether `store` is this client's store (the same object, not only
    /// the same backend: two namespaces share a backend).
    fn same_store(&self, store: &Arc<dyn KvStore>) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.store), Arc::as_ptr(store))
    }

    fn foreign(&self, op: Operation, what: &str, maker: &str) -> Error {
        Error::new(ErrorKind::InvalidArgument, self.store.backend(), op).with_message(format!(
            "this {what} was made by another client (another namespace, layer or store) and \
             would write outside this one; make it with this client's {maker}"
        ))
    }

    /// Atomically writes `new` (or deletes, when `None`) if the stored bytes
    /// equal the encoding of `expected` (`None` = absent). Returns whether
    /// it wrote.
    ///
    /// **It compares bytes, not values.** `expected` is encoded again and
    /// compared with what the store holds, so a value whose stored bytes
    /// differ from the encoding of its decoded form never matches: one
    /// written with a field the type skips or no longer has, before a
    /// `#[serde(default)]` field was added, by another program, or with a
    /// float or map printed differently. A loop `get`, change,
    /// `compare_and_swap(Some(&current), ..)` over such a value conflicts
    /// for ever. For that loop, read with [`Kv::get_stored`] and swap with
    /// [`Kv::compare_and_swap_stored`], which compare against the bytes
    /// read. Use this method for values you wrote yourself with this codec
    /// and type (a lock owner, a counter), or `None` for "absent".
    ///
    /// # Errors
    ///
    /// `InvalidKey`, `Encode`, `ValueTooLarge`; `Unsupported` where the
    /// backend has no atomic CAS; the backend's errors.
    pub async fn compare_and_swap<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<str>,
        expected: Option<&T>,
        new: Option<&T>,
    ) -> Result<bool> {
        self.cas_with(key.as_ref(), expected, new, SetOptions::default())
            .await
    }

    /// Like [`Kv::compare_and_swap`], the new value expiring after `ttl`.
    ///
    /// # Errors
    ///
    /// As [`Kv::compare_and_swap`], and `Unsupported`/`InvalidArgument` for
    /// the TTL.
    pub async fn compare_and_swap_with_ttl<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<str>,
        expected: Option<&T>,
        new: Option<&T>,
        ttl: Duration,
    ) -> Result<bool> {
        self.cas_with(key.as_ref(), expected, new, SetOptions::ttl(ttl))
            .await
    }

    /// Reads and decodes one value, keeping the bytes it was decoded from,
    /// for [`Kv::compare_and_swap_stored`]; `None` when absent or expired.
    ///
    /// # Errors
    ///
    /// As [`Kv::get`].
    pub async fn get_stored<T: DeserializeOwned>(
        &self,
        key: impl AsRef<str>,
    ) -> Result<Option<Stored<T>>> {
        let key = self.key(Operation::Get, key.as_ref())?;
        match self.store.get(&key).await? {
            Some(bytes) => {
                let value = self.decode(Operation::Get, &key, &bytes)?;
                Ok(Some(Stored::new(value, bytes)))
            }
            None => Ok(None),
        }
    }

    /// Atomically writes `new` (or deletes, when `None`) if the store still
    /// holds exactly the bytes `expected` was read from (`None` = absent).
    /// Returns whether it wrote. The read-change-swap loop that works
    /// whatever the stored bytes look like:
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use kv_core::{Kv, MemoryStore};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Counter { hits: u64 }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let kv = Kv::new(MemoryStore::new().into_dyn());
    /// // Written by an older version with a field `Counter` no longer has:
    /// // re-encoding a `Counter` never gives these bytes back.
    /// kv.set("page", &serde_json::json!({ "hits": 1, "owner": "ada" })).await?;
    /// loop {
    ///     let current = kv.get_stored::<Counter>("page").await?;
    ///     let hits = current.as_ref().map_or(0, |c| c.hits);
    ///     let next = Counter { hits: hits + 1 };
    ///     if kv.compare_and_swap_stored("page", current.as_ref(), Some(&next)).await? {
    ///         break;
    ///     }
    /// }
    /// assert_eq!(kv.get::<Counter>("page").await?.map(|c| c.hits), Some(2));
    /// # Ok::<(), kv_core::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Kv::compare_and_swap`].
    pub async fn compare_and_swap_stored<T: Serialize + ?Sized, U>(
        &self,
        key: impl AsRef<str>,
        expected: Option<&Stored<U>>,
        new: Option<&T>,
    ) -> Result<bool> {
        self.cas_stored_with(key.as_ref(), expected, new, SetOptions::default())
            .await
    }

    /// Like [`Kv::compare_and_swap_stored`], the new value expiring after
    /// `ttl`.
    ///
    /// # Errors
    ///
    /// As [`Kv::compare_and_swap_with_ttl`].
    pub async fn compare_and_swap_stored_with_ttl<T: Serialize + ?Sized, U>(
        &self,
        key: impl AsRef<str>,
        expected: Option<&Stored<U>>,
        new: Option<&T>,
        ttl: Duration,
    ) -> Result<bool> {
        self.cas_stored_with(key.as_ref(), expected, new, SetOptions::ttl(ttl))
            .await
    }

    async fn cas_stored_with<T: Serialize + ?Sized, U>(
        &self,
        key: &str,
        expected: Option<&Stored<U>>,
        new: Option<&T>,
        options: SetOptions,
    ) -> Result<bool> {
        let key = self.key(Operation::CompareAndSwap, key)?;
        let expected = expected.map(|s| s.bytes().clone());
        self.swap(key, expected, new, options).await
    }

    async fn cas_with<T: Serialize + ?Sized>(
        &self,
        key: &str,
        expected: Option<&T>,
        new: Option<&T>,
        options: SetOptions,
    ) -> Result<bool> {
        let op = Operation::CompareAndSwap;
        let key = self.key(op, key)?;
        let expected = expected.map(|v| self.encode(op, &key, v)).transpose()?;
        self.swap(key, expected, new, options).await
    }

    /// Encodes `new` and swaps it in if the store holds exactly `expected`.
    async fn swap<T: Serialize + ?Sized>(
        &self,
        key: Key,
        expected: Option<Bytes>,
        new: Option<&T>,
        options: SetOptions,
    ) -> Result<bool> {
        let new = new
            .map(|v| self.encode(Operation::CompareAndSwap, &key, v))
            .transpose()?;
        self.store
            .compare_and_swap(&key, expected, new, options)
            .await
    }

    /// One page of live keys starting with `prefix` (literal), ascending.
    ///
    /// # Errors
    ///
    /// `InvalidKey` for a bad prefix, `InvalidArgument` for a zero limit;
    /// the backend's errors.
    pub async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.store.list(prefix, options).await
    }

    /// Every live key starting with `prefix`, fetched page by page.
    pub fn list_stream<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<Key>> {
        self.store.list_stream(prefix)
    }

    /// A client for the namespace `name`: its keys are stored as
    /// `name:key`, lists strip the `name:` prefix, and [`Kv::clear`] removes
    /// only them. Namespaces nest (`a` then `b` is `a:b:`).
    ///
    /// # Errors
    ///
    /// `InvalidKey` when `name` is empty, contains NUL or is too long.
    pub fn namespace(&self, name: &str) -> Result<Kv<C>> {
        if name.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                self.store.backend(),
                Operation::Validate,
            )
            .with_message("a namespace name must not be empty"));
        }
        let store = PrefixStore::new(self.store.clone(), format!("{name}:"))?;
        Ok(Kv {
            store: Arc::new(store),
            codec: self.codec.clone(),
        })
    }

    /// Removes every key this client can see: the whole namespace for a
    /// namespaced client, **the whole store** for a root client. Runs in
    /// batches (each atomic where the backend says so, the whole not).
    ///
    /// # Errors
    ///
    /// The backend's errors; keys removed before the error stay removed.
    pub async fn clear(&self) -> Result<u64> {
        self.store.clear("").await
    }
}

impl<C: Codec> fmt::Debug for Kv<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kv")
            .field("store", &self.store)
            .field("codec", &self.codec.name())
            .finish()
    }
}

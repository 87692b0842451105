//! The typed client's versions, conditional writes, read-modify-write
//! loop and counters.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::RaceBackoff;
use crate::client::Kv;
use crate::codec::Codec;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::options::SetOptions;
use crate::typed_txn::Txn;
use crate::version::{Condition, Versioned};

/// How many times [`Kv::update`] reads and tries to write before it gives
/// up with [`ErrorKind::Conflict`].
pub const UPDATE_ATTEMPTS: u32 = 32;

impl<C: Codec> Kv<C> {
    /// Reads and decodes one value with its [`Version`](crate::Version);
    /// `None` when absent or expired. Pass the version to
    /// [`Kv::set_if`], [`Kv::delete_if`] or a [`Kv::transaction`] check.
    ///
    /// # Errors
    ///
    /// As [`Kv::get`]; `Unsupported` where the backend has no versions.
    pub async fn get_versioned<T: DeserializeOwned>(
        &self,
        key: impl AsRef<str>,
    ) -> Result<Option<Versioned<T>>> {
        let op = Operation::GetVersioned;
        let key = self.key(op, key.as_ref())?;
        match self.store().get_versioned(&key).await? {
            Some(found) => Ok(Some(Versioned {
                value: self.decode(op, &key, &found.value)?,
                version: found.version,
            })),
            None => Ok(None),
        }
    }

    /// Reads many values with their versions in one native operation,
    /// aligned with `keys`.
    ///
    /// # Errors
    ///
    /// As [`Kv::batch_get`]; `Unsupported` where the backend has no
    /// versions.
    pub async fn batch_get_versioned<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Versioned<T>>>> {
        let op = Operation::BatchGetVersioned;
        let keys = keys
            .into_iter()
            .map(|k| self.key(op, k.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let found = self.store().batch_get_versioned(&keys).await?;
        found
            .into_iter()
            .zip(&keys)
            .map(|(found, key)| {
                found
                    .map(|f| {
                        Ok(Versioned {
                            value: self.decode(op, key, &f.value)?,
                            version: f.version,
                        })
                    })
                    .transpose()
            })
            .collect()
    }

    /// Writes `value` only if the key meets `condition` (at a version read
    /// before, absent, present); returns whether it wrote. Atomic against
    /// every other writer; the value is stored without TTL.
    ///
    /// ```
    /// use kv_core::{Condition, Kv, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let kv = Kv::new(MemoryStore::new().into_dyn());
    /// // An idempotency key: only the first request claims it.
    /// assert!(kv.set_if("request/42", Condition::Absent, "worker-a").await?);
    /// assert!(!kv.set_if("request/42", Condition::Absent, "worker-b").await?);
    ///
    /// let read = kv.get_versioned::<String>("request/42").await?.unwrap();
    /// kv.set("request/42", "worker-a").await?; // the same bytes, a new version
    /// assert!(!kv.set_if("request/42", Condition::Version(read.version), "done").await?);
    /// # Ok::<(), kv_core::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidKey`, `Encode`, `ValueTooLarge`; `Unsupported` where the
    /// backend has no versions; the backend's errors (after which the
    /// write may or may not have happened: it is never repeated by the
    /// retry layer).
    pub async fn set_if<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<str>,
        condition: Condition,
        value: &T,
    ) -> Result<bool> {
        self.write_if(key.as_ref(), condition, Some(value), SetOptions::default())
            .await
    }

    /// Like [`Kv::set_if`], the value expiring after `ttl`.
    ///
    /// # Errors
    ///
    /// As [`Kv::set_if`], and `Unsupported`/`InvalidArgument` for the TTL.
    pub async fn set_if_with_ttl<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<str>,
        condition: Condition,
        value: &T,
        ttl: Duration,
    ) -> Result<bool> {
        self.write_if(key.as_ref(), condition, Some(value), SetOptions::ttl(ttl))
            .await
    }

    /// Deletes the key only if it meets `condition`; returns whether it
    /// deleted (with `Condition::Absent`, whether the key was absent).
    ///
    /// # Errors
    ///
    /// As [`Kv::set_if`].
    pub async fn delete_if(&self, key: impl AsRef<str>, condition: Condition) -> Result<bool> {
        self.write_if::<()>(key.as_ref(), condition, None, SetOptions::default())
            .await
    }

    async fn write_if<T: Serialize + ?Sized>(
        &self,
        key: &str,
        condition: Condition,
        value: Option<&T>,
        options: SetOptions,
    ) -> Result<bool> {
        let op = Operation::WriteIf;
        let key = self.key(op, key)?;
        let value = value.map(|v| self.encode(op, &key, v)).transpose()?;
        self.store().write_if(&key, condition, value, options).await
    }

    /// Reads the value, applies `change` and writes the result only if
    /// nobody wrote the key in between (checked by [`Version`](crate::Version),
    /// not by comparing bytes); on a conflict reads again and retries, at
    /// most [`UPDATE_ATTEMPTS`] times with a random pause that grows with
    /// each lost race (its ceiling starts at the length of the attempt that
    /// lost and doubles, up to 1 s: `kv_core::backend::RaceBackoff`). `change`
    /// gets `None` when the key is absent and returns the new value, or
    /// `None` to delete it (or leave it absent). Returns what was written.
    ///
    /// `change` may run more than once, so it must not have side effects.
    /// The new value is stored without TTL ([`Kv::update_with_ttl`] sets
    /// one). It works whatever the stored bytes look like: a value written
    /// by another program, or before a field was added, updates like any.
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use kv_core::{Kv, MemoryStore};
    ///
    /// #[derive(Serialize, Deserialize, Default)]
    /// struct Cart { items: Vec<String> }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let kv = Kv::new(MemoryStore::new().into_dyn());
    /// let cart = kv
    ///     .update("cart/7", |cart: Option<Cart>| {
    ///         let mut cart = cart.unwrap_or_default();
    ///         cart.items.push("tea".into());
    ///         Some(cart)
    ///     })
    ///     .await?;
    /// assert_eq!(cart.map(|c| c.items), Some(vec!["tea".to_string()]));
    /// # Ok::<(), kv_core::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// `Conflict` when every attempt lost the race (nothing written by the
    /// last one); `Decode` when the stored value is not a `T`; as
    /// [`Kv::set_if`] otherwise.
    pub async fn update<T, F>(&self, key: impl AsRef<str>, change: F) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        self.update_inner(key.as_ref(), SetOptions::default(), change)
            .await
    }

    /// Like [`Kv::update`], the written value expiring after `ttl`.
    ///
    /// # Errors
    ///
    /// As [`Kv::update`], and `Unsupported`/`InvalidArgument` for the TTL.
    pub async fn update_with_ttl<T, F>(
        &self,
        key: impl AsRef<str>,
        ttl: Duration,
        change: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        self.update_inner(key.as_ref(), SetOptions::ttl(ttl), change)
            .await
    }

    async fn update_inner<T, F>(
        &self,
        key: &str,
        options: SetOptions,
        mut change: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        let op = Operation::Update;
        let key = self.key(op, key)?;
        let mut backoff = RaceBackoff::start();
        for attempt in 1..=UPDATE_ATTEMPTS {
            if attempt > 1 {
                backoff.lost().await;
            }
            let current = self.store().get_versioned(&key).await?;
            let (old, condition) = match current {
                Some(found) => (
                    Some(self.decode::<T>(op, &key, &found.value)?),
                    Condition::Version(found.version),
                ),
                None => (None, Condition::Absent),
            };
            let was_absent = old.is_none();
            let new = change(old);
            let bytes: Option<Bytes> =
                new.as_ref().map(|v| self.encode(op, &key, v)).transpose()?;
            if was_absent && bytes.is_none() {
                return Ok(None);
            }
            if self
                .store()
                .write_if(&key, condition, bytes, options)
                .await?
            {
                return Ok(new);
            }
        }
        Err(Error::new(ErrorKind::Conflict, self.store().backend(), op)
            .with_key(key.as_str())
            .with_message(format!(
                "other writers changed the key during each of {UPDATE_ATTEMPTS} attempts"
            )))
    }

    /// Adds `delta` to the counter at `key` and returns its new value,
    /// atomically (an absent key counts as 0). A counter reads back with
    /// `get::<i64>` under the JSON codec.
    ///
    /// ```
    /// use kv_core::{Kv, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let kv = Kv::new(MemoryStore::new().into_dyn());
    /// assert_eq!(kv.increment("visits", 1).await?, 1);
    /// assert_eq!(kv.increment("visits", 41).await?, 42);
    /// assert_eq!(kv.get::<i64>("visits").await?, Some(42));
    /// # Ok::<(), kv_core::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// `NotACounter` when the stored value is not a decimal `i64`,
    /// `Overflow` past `i64`'s range (both change nothing); `Unsupported`
    /// where the backend has no counters; the backend's errors (after
    /// which the increment may or may not have happened: it is never
    /// repeated by the retry layer).
    pub async fn increment(&self, key: impl AsRef<str>, delta: i64) -> Result<i64> {
        let key = self.key(Operation::Increment, key.as_ref())?;
        self.store()
            .increment(&key, delta, SetOptions::default())
            .await
    }

    /// Like [`Kv::increment`]; when the increment creates the counter, it
    /// expires after `ttl`, and an existing counter keeps its expiry: a
    /// fixed window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_core::{Kv, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let kv = Kv::new(MemoryStore::new().into_dyn());
    /// let window = Duration::from_secs(60);
    /// let calls = kv.increment_with_ttl("rate/ada/29871", 1, window).await?;
    /// assert!(calls <= 100, "allowed");
    /// # Ok::<(), kv_core::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Kv::increment`], and `Unsupported`/`InvalidArgument` for the TTL.
    pub async fn increment_with_ttl(
        &self,
        key: impl AsRef<str>,
        delta: i64,
        ttl: Duration,
    ) -> Result<i64> {
        let key = self.key(Operation::Increment, key.as_ref())?;
        self.store()
            .increment(&key, delta, SetOptions::ttl(ttl))
            .await
    }

    /// Starts a typed [`Txn`]: checks and writes applied all or nothing by
    /// [`Txn::commit`].
    pub fn transaction(&self) -> Txn<C> {
        Txn::new(self.clone())
    }
}

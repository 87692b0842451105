//! Versions, transactions and counters on Redis.
//!
//! Each bucket keeps a hash of its keys' versions beside its index, written
//! in the same MULTI/EXEC or script as the data: every write sets a new
//! version, every delete removes it (as do the purge and the listing when
//! they find a key expired). A version is 16 bytes made by the client: a
//! random number drawn when the store connects and a counter, so it is
//! never given twice by one store and two stores draw the same number with
//! a probability of 2^-64.
//!
//! `write_if` and `transact` are one script that checks and then writes,
//! all or nothing; `increment` is one script around INCRBY. A script may
//! only touch one hash slot: on a Redis Cluster without a hash tag in the
//! prefix (keys spread over buckets), `transact` is `Unsupported`;
//! `write_if` and `increment` touch one key and work everywhere.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use kv_core::backend::{CheckedOp, millis};
use kv_core::{
    Condition, Error, ErrorKind, Key, Operation, Result, SetOptions, Transaction, TxnOutcome,
    Version, Versioned,
};
use redis::{ParsingError, RedisResult, ScriptInvocation};

use crate::error::{BACKEND, map_redis_error};
use crate::index::{Layout, now_millis};
use crate::store::RedisStore;

/// Where a store's versions come from.
#[derive(Debug)]
pub(crate) struct VersionSource {
    seed: u64,
    next: AtomicU64,
}

/// The first of a run of versions taken together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Taken {
    seed: u64,
    first: u64,
}

impl VersionSource {
    pub(crate) fn new() -> Self {
        Self {
            seed: fastrand::u64(..),
            next: AtomicU64::new(0),
        }
    }

    /// Takes `n` versions.
    pub(crate) fn take(&self, n: usize) -> Taken {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        Taken {
            seed: self.seed,
            first: self.next.fetch_add(n, Ordering::Relaxed),
        }
    }

    /// The `i`th version of a run.
    pub(crate) fn token(taken: Taken, i: usize) -> [u8; 16] {
        let n = taken
            .first
            .wrapping_add(u64::try_from(i).unwrap_or(u64::MAX));
        let mut token = [0u8; 16];
        token[..8].copy_from_slice(&taken.seed.to_be_bytes());
        token[8..].copy_from_slice(&n.to_be_bytes());
        token
    }
}

/// A write of a transaction, as the script's six arguments take it.
struct ScriptWrite<'a> {
    key: &'a Key,
    value: Option<&'a [u8]>,
    px: String,
    at: u64,
}

impl<'a> ScriptWrite<'a> {
    fn of(key: &'a Key, value: Option<&'a [u8]>, ttl: Option<std::time::Duration>) -> Self {
        Self {
            key,
            value,
            px: ttl.map_or(String::new(), |t| millis(t).to_string()),
            at: ttl.map_or(0, |t| now_millis().saturating_add(millis(t))),
        }
    }
}

/// The condition as the script takes it: kind and version.
fn condition_args(condition: &Condition) -> (&'static str, &[u8]) {
    match condition {
        Condition::Absent => ("a", &[]),
        Condition::Present => ("p", &[]),
        Condition::Version(v) => ("v", v.as_bytes()),
    }
}

impl RedisStore {
    /// Adds the keys the CAS and increment scripts keep in step after the
    /// data key (index, expiry schedule, versions); none on a store
    /// without the index, which the scripts read from the key count.
    pub(crate) fn index_keys(&self, call: &mut ScriptInvocation<'_>, layout: &Layout) {
        if self.config.list_index {
            call.key(&layout.index[..])
                .key(&layout.expiries[..])
                .key(&layout.versions[..]);
        }
    }

    pub(crate) async fn read_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        let op = Operation::BatchGetVersioned;
        self.validator.versioned_keys(op, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Per bucket, MULTI MGET HMGET EXEC: values and versions of one
        // moment.
        let groups = self.buckets.group(0..keys.len(), |i| &keys[*i]);
        let answers = futures::future::try_join_all(groups.iter().map(|(b, positions)| {
            let layout = self.buckets.get(*b);
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.add_command(Self::data_keys_cmd(
                layout,
                "MGET",
                positions.iter().map(|i| &keys[*i]),
            ));
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&layout.versions[..]);
            for i in positions {
                hmget.arg(keys[*i].as_str());
            }
            pipe.add_command(hmget);
            async move {
                let (values, versions): (Vec<Option<Bytes>>, Vec<Option<Vec<u8>>>) = self
                    .read(op, |mut c| {
                        let pipe = &pipe;
                        async move { pipe.query_async(&mut c).await }
                    })
                    .await?;
                if values.len() != positions.len() || versions.len() != positions.len() {
                    return Err(map_redis_error(
                        op,
                        ParsingError::from("MULTI MGET HMGET: a reply per key was expected").into(),
                    ));
                }
                Ok(values
                    .into_iter()
                    .zip(versions)
                    .map(|(value, version)| {
                        Some(Versioned {
                            value: value?,
                            version: Version::from_bytes(version.unwrap_or_default()),
                        })
                    })
                    .collect::<Vec<_>>())
            }
        }))
        .await?;
        let mut out = vec![None; keys.len()];
        for ((_, positions), found) in groups.iter().zip(answers) {
            for (i, found) in positions.iter().zip(found) {
                out[*i] = found;
            }
        }
        Ok(out)
    }

    /// The transaction script over checks and writes of one bucket;
    /// returns the (0-based) positions of the failed checks.
    async fn run_transact(
        &self,
        op: Operation,
        layout: &Layout,
        checks: &[(&Key, &Condition)],
        writes: &[ScriptWrite<'_>],
    ) -> Result<Vec<usize>> {
        let mut call: ScriptInvocation<'_> = self.scripts.transact.prepare_invoke();
        call.key(&layout.index[..])
            .key(&layout.expiries[..])
            .key(&layout.versions[..])
            .key(&layout.unindexed[..]);
        for (key, _) in checks {
            call.key(layout.data_key(key));
        }
        for write in writes {
            call.key(layout.data_key(write.key));
        }
        call.arg(checks.len()).arg(writes.len());
        for (key, condition) in checks {
            let (kind, version) = condition_args(condition);
            call.arg(key.as_str()).arg(kind).arg(version);
        }
        let taken = self.versions.take(writes.len());
        for (i, write) in writes.iter().enumerate() {
            call.arg(if write.value.is_some() { "p" } else { "d" })
                .arg(write.key.as_str())
                .arg(write.value.unwrap_or_default())
                .arg(&write.px)
                .arg(write.at)
                .arg(&VersionSource::token(taken, i)[..]);
        }
        let failed: Vec<usize> = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_redis_error(op, e))?;
        Ok(failed.into_iter().map(|i| i.saturating_sub(1)).collect())
    }

    pub(crate) async fn write_if_one(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let op = Operation::WriteIf;
        let ttl = self.validator.write_if(key, new.as_deref(), options)?;
        let write = ScriptWrite::of(key, new.as_deref(), ttl);
        let failed = self
            .run_transact(op, self.buckets.of(key), &[(key, &condition)], &[write])
            .await?;
        Ok(failed.is_empty())
    }

    pub(crate) async fn transact_script(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let op = Operation::Transact;
        let (checks, writes) = self.validator.transaction(txn)?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        // Transactions are claimed only by one-bucket stores (validated
        // above), so every key is in bucket 0.
        let layout = self.buckets.get(0);
        let checks: Vec<(&Key, &Condition)> =
            checks.iter().map(|c| (&c.key, &c.condition)).collect();
        let writes: Vec<ScriptWrite<'_>> = writes
            .iter()
            .map(|w| match w {
                CheckedOp::Put(e) => ScriptWrite::of(e.key, Some(&e.value[..]), e.ttl),
                CheckedOp::Delete(key) => ScriptWrite::of(key, None, None),
            })
            .collect();
        let failed = self.run_transact(op, layout, &checks, &writes).await?;
        Ok(if failed.is_empty() {
            TxnOutcome::Committed
        } else {
            TxnOutcome::Rejected(failed)
        })
    }

    pub(crate) async fn increment_script(
        &self,
        key: &Key,
        delta: i64,
        options: SetOptions,
    ) -> Result<i64> {
        let op = Operation::Increment;
        let ttl = self.validator.increment(key, options)?;
        let layout = self.buckets.of(key);
        let px = ttl.map_or(String::new(), |t| millis(t).to_string());
        let at = ttl.map_or(0, |t| now_millis().saturating_add(millis(t)));
        let version = VersionSource::token(self.versions.take(1), 0);
        let mut increment = self.scripts.increment.key(layout.data_key(key));
        self.index_keys(&mut increment, layout);
        let answer: RedisResult<Vec<u8>> = increment
            .arg(key.as_str())
            .arg(delta)
            .arg(px)
            .arg(at)
            .arg(&version[..])
            .invoke_async(&mut self.conn.clone())
            .await;
        match answer {
            Ok(text) => kv_core::backend::counter::parse(&text)
                .ok_or_else(|| self.validator.not_a_counter(key)),
            // INCRBY's own refusals, raised before the script wrote anything.
            Err(e) if e.code() == Some("WRONGTYPE") => Err(self.validator.not_a_counter(key)),
            Err(e) if e.to_string().contains("would overflow") => {
                Err(Error::new(ErrorKind::Overflow, BACKEND, op)
                    .with_key(key.as_str())
                    .with_message("the counter would overflow a 64-bit integer"))
            }
            Err(e) if e.to_string().contains("not an integer") => {
                Err(self.validator.not_a_counter(key))
            }
            Err(e) => Err(map_redis_error(op, e)),
        }
    }
}

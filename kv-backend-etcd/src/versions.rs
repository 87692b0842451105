//! Versions, transactions and counters on etcd: a key's version is its
//! `mod_revision` (with the expiry kv stamps on it), and every conditional
//! write is one Txn whose compares guard the revisions the checks were
//! decided on. An increment reads the counter (a Range), then writes the
//! sum in a Txn guarded by the revision it read; after a lost race it
//! pauses (full jitter from the attempt's own length, doubling up to 1 s:
//! `RaceBackoff`), reads again and retries.
//!
//! A compare can only see what etcd keeps: a key whose stamp has expired
//! is absent for kv but still in etcd until its lease ends. So a Txn first
//! guesses compares that are safe to succeed on (a version's
//! `mod_revision` when its expiry is ahead, `version == 0` for "absent");
//! when they fail, the same Txn's failure branch reads every checked key
//! at one revision, the checks are decided on those live values, and a
//! Txn guarded by exactly those revisions tries again. A lost race reads
//! and decides again, at most [`ATTEMPTS`] times.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::proto::PbKeyValue;
use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnResponse};
use kv_core::backend::stamp::{self, Malformed, now_millis};
use kv_core::backend::{RaceBackoff, split_writes};
use kv_core::{
    Condition, Entry, Error, ErrorKind, Key, Operation, Result, SetOptions, Transaction,
    TxnOutcome, Version, Versioned, backend::counter, backend::millis,
};

use crate::error::{BACKEND, malformed};
use crate::store::EtcdStore;
use crate::txn;

/// How many times a transaction or an increment decides again after
/// losing a race before it gives up with a temporary error.
pub(crate) const ATTEMPTS: usize = 64;

/// The version of a key etcd holds as `kv` (`None`: absent or expired):
/// its `mod_revision`, and its expiry when it has one. A value kv cannot
/// read is present, at its revision.
fn version_of(kv: &PbKeyValue, now: u64) -> Option<Version> {
    match stamp::decode_with_ttl(&kv.value, now) {
        Ok(Some((_, ttl))) => Some(token(
            kv.mod_revision,
            ttl.map(|t| now.saturating_add(millis(t))),
        )),
        Ok(None) => None,
        Err(Malformed) => Some(token(kv.mod_revision, None)),
    }
}

fn token(revision: i64, expires_at: Option<u64>) -> Version {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&revision.to_be_bytes());
    if let Some(at) = expires_at {
        bytes.extend_from_slice(&at.to_be_bytes());
    }
    Version::from_bytes(bytes)
}

/// The revision and expiry in a version this backend made; `None` for any
/// other token (it matches no key).
fn parse_token(version: &Version) -> Option<(i64, Option<u64>)> {
    let bytes = version.as_bytes();
    let word =
        |range: std::ops::Range<usize>| bytes.get(range).and_then(|b| <[u8; 8]>::try_from(b).ok());
    match bytes.len() {
        8 => Some((i64::from_be_bytes(word(0..8)?), None)),
        16 => Some((
            i64::from_be_bytes(word(0..8)?),
            Some(u64::from_be_bytes(word(8..16)?)),
        )),
        _ => None,
    }
}

/// A compare no key meets: sends the Txn to its failure branch, which
/// reads the checked keys.
fn never(full: Vec<u8>) -> Compare {
    Compare::version(full, CompareOp::Less, 0)
}

/// The compare guarding an observed state of a key: still the same stored
/// value (live or expired), or still not in etcd.
fn exactly(full: Vec<u8>, observed: Option<&PbKeyValue>) -> Compare {
    match observed {
        Some(kv) => Compare::mod_revision(full, CompareOp::Equal, kv.mod_revision),
        None => Compare::version(full, CompareOp::Equal, 0),
    }
}

fn gave_up(op: Operation) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, op)
        .with_temporary(true)
        .with_message(format!(
            "the keys changed under every one of {ATTEMPTS} attempts; try again"
        ))
}

impl EtcdStore {
    pub(crate) async fn read_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        let op = Operation::BatchGetVersioned;
        self.validator.versioned_keys(op, keys)?;
        self.read_kvs(op, keys, |key, kv, now| {
            let Some(version) = version_of(&kv, now) else {
                return Ok(None);
            };
            let value = txn::live_value(op, key.as_str(), kv.value, now)?
                .ok_or_else(|| malformed(op, key.as_str()))?;
            Ok(Some(Versioned { value, version }))
        })
        .await
    }

    /// One key with its version, by a plain Range.
    pub(crate) async fn read_one_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        let op = Operation::GetVersioned;
        self.validator
            .versioned_keys(op, std::slice::from_ref(key))?;
        let Some(kv) = self.stored_kv(op, key).await? else {
            return Ok(None);
        };
        let now = now_millis();
        let Some(version) = version_of(&kv, now) else {
            return Ok(None);
        };
        let value = txn::live_value(op, key.as_str(), kv.value, now)?
            .ok_or_else(|| malformed(op, key.as_str()))?;
        Ok(Some(Versioned { value, version }))
    }

    /// Applies `txn` in one Txn (two when a check needs the keys read
    /// first), as the module says.
    pub(crate) async fn transact_txn(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let op = Operation::Transact;
        let (checks, writes) = self.validator.transaction(txn)?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        let (puts, deletes) = split_writes(&writes);
        let puts: Vec<&Entry> = puts.iter().collect();
        let mut checked: Vec<&Key> = checks.iter().map(|c| &c.key).collect();
        checked.sort_unstable();
        checked.dedup();
        let mut named = deletes.clone();
        named.extend(checked.iter().copied());
        self.check_request_bytes(op, &puts, &named)?;

        let now = now_millis();
        // First guesses, safe to succeed on.
        let mut compares: Vec<Compare> = checks
            .iter()
            .map(|check| {
                let full = self.full_key(&check.key);
                match &check.condition {
                    Condition::Absent => Compare::version(full, CompareOp::Equal, 0),
                    Condition::Present => never(full),
                    Condition::Version(v) => match parse_token(v) {
                        Some((revision, expires)) if expires.is_none_or(|at| at > now) => {
                            Compare::mod_revision(full, CompareOp::Equal, revision)
                        }
                        _ => never(full),
                    },
                }
            })
            .collect();
        for _ in 0..ATTEMPTS {
            let resp = self
                .guarded(op, &compares, &puts, &deletes, &checked)
                .await?;
            if resp.succeeded() {
                return Ok(TxnOutcome::Committed);
            }
            let observed = observed(op, resp, &checked)?;
            let now = now_millis();
            let current: Vec<Option<Version>> = checks
                .iter()
                .map(|c| {
                    observed
                        .get(&c.key)
                        .and_then(|kv| kv.as_ref())
                        .and_then(|kv| version_of(kv, now))
                })
                .collect();
            let outcome = TxnOutcome::evaluate(checks, current.iter().map(Option::as_ref));
            if !outcome.is_committed() {
                return Ok(outcome);
            }
            compares = checks
                .iter()
                .map(|c| {
                    let seen = observed.get(&c.key).and_then(|kv| kv.as_ref());
                    exactly(self.full_key(&c.key), seen)
                })
                .collect();
        }
        Err(gave_up(op))
    }

    /// One Txn: when `compares` hold, the writes; otherwise a read of every
    /// checked key.
    async fn guarded(
        &self,
        op: Operation,
        compares: &[Compare],
        puts: &[&Entry],
        deletes: &[&Key],
        checked: &[&Key],
    ) -> Result<TxnResponse> {
        self.write(op, || async move {
            let now = now_millis();
            let mut ops = Vec::with_capacity(puts.len() + deletes.len());
            for entry in puts {
                ops.push(self.put_op(entry, now).await?);
            }
            ops.extend(
                deletes
                    .iter()
                    .map(|k| TxnOp::delete(self.full_key(k), None)),
            );
            let reads: Vec<TxnOp> = checked
                .iter()
                .map(|k| TxnOp::get(self.full_key(k), None))
                .collect();
            let txn = Txn::new()
                .when(compares.to_vec())
                .and_then(ops)
                .or_else(reads);
            self.kv.clone().txn(txn).await
        })
        .await
    }

    /// Adds `delta` to a counter: a Txn guarded by the revision the new
    /// value was computed from, read again and retried on a lost race.
    pub(crate) async fn increment_counter(
        &self,
        key: &Key,
        delta: i64,
        options: SetOptions,
    ) -> Result<i64> {
        let op = Operation::Increment;
        let ttl = self.validator.increment(key, options)?;
        let full = self.full_key(key);
        let mut backoff = RaceBackoff::start();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // A lost race: let the contenders spread out, then read
                // afresh (an answer read before the pause would be stale).
                backoff.lost().await;
            }
            let seen = self.stored_kv(op, key).await?;
            let (guard, current) = observe(&full, seen, self, key)?;
            let (value, keep) = match &current {
                Some((value, keep)) => (Some(value.as_slice()), *keep),
                None => (None, ttl),
            };
            let next = self.validator.add_to_counter(key, value, delta)?;
            let entry = Entry {
                key: key.clone(),
                value: counter::encode(next),
                ttl: keep,
            };
            let (guard, entry) = (&guard, &entry);
            let resp = self
                .write(op, || async move {
                    let put = self.put_op(entry, now_millis()).await?;
                    let txn = Txn::new().when([guard.clone()]).and_then([put]);
                    self.kv.clone().txn(txn).await
                })
                .await?;
            if resp.succeeded() {
                return Ok(next);
            }
        }
        Err(gave_up(op).with_key(key.as_str()))
    }
}

/// What a counter's read decides: the compare guarding the next write
/// (still this stored value, or still absent) and the live value with its
/// remaining TTL (`None`: absent or expired, counting from 0).
#[allow(clippy::type_complexity)]
fn observe(
    full: &[u8],
    seen: Option<PbKeyValue>,
    store: &EtcdStore,
    key: &Key,
) -> Result<(Compare, Option<(Vec<u8>, Option<Duration>)>)> {
    let now = now_millis();
    let current = match &seen {
        Some(kv) => match stamp::decode_with_ttl(&kv.value, now) {
            Ok(Some((value, left))) => Some((value.to_vec(), left)),
            Ok(None) => None,
            Err(Malformed) => return Err(store.validator.not_a_counter(key)),
        },
        None => None,
    };
    Ok((exactly(full.to_vec(), seen.as_ref()), current))
}

/// The key-values the failure branch read, by kv key (`None`: not in etcd).
fn observed<'k>(
    op: Operation,
    resp: TxnResponse,
    checked: &[&'k Key],
) -> Result<BTreeMap<&'k Key, Option<PbKeyValue>>> {
    let found: Vec<Option<PbKeyValue>> = txn::range_kvs(resp)
        .map(|kvs| kvs.map(|mut kvs| kvs.pop()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| txn::short_answer(op))?;
    if found.len() != checked.len() {
        return Err(txn::short_answer(op));
    }
    Ok(checked.iter().copied().zip(found).collect())
}

//! Versions, conditional writes, transactions and counters on SQLite.
//!
//! A row's version is a number from the store's block of versions: each
//! store reserves [`BLOCK`] numbers at a time by adding to the counter row
//! of `<table>_meta` in its own committed statement, so stores on the same
//! file (in this process or another) never hand out the same number, and a
//! number is never reused after a restart or a crash (the rest of a block
//! is skipped). Every write call takes one number for all the rows it
//! writes.
//!
//! - `write_if` and `compare_and_swap` are one guarded statement each
//!   (`UPDATE`/`DELETE ... WHERE version = ?`, an upsert `DO UPDATE ...
//!   WHERE` the old row has expired).
//! - `transact` and `increment` run in one `BEGIN IMMEDIATE` transaction on
//!   the writer: the write lock is taken first, so what they read cannot
//!   change before they write, in this process or another.

use bytes::Bytes;
use kv_core::backend::{counter, split_writes, sql::in_input_order};
use kv_core::{
    Condition, Entry, Key, Operation, Result, SetOptions, Transaction, TxnOutcome, Version,
    Versioned,
};
use tokio::sync::Mutex;

use crate::error::map_sqlx_error;
use crate::open::now;
use crate::store::{SqliteStore, expiry, keys_json};

/// How many versions a store reserves at a time.
pub(crate) const BLOCK: i64 = 1 << 20;

/// The versions this store has reserved and not used yet: `next..end`.
#[derive(Debug, Default)]
pub(crate) struct VersionBlock {
    range: Mutex<(i64, i64)>,
}

fn to_version(n: i64) -> Version {
    Version::from_u64(n.unsigned_abs())
}

/// The `version` column value of a version this backend made; `None` for
/// any other token (no row is at it).
fn column(v: &Version) -> Option<i64> {
    v.as_u64().and_then(|n| i64::try_from(n).ok())
}

impl SqliteStore {
    /// A version no write of this file has used: from the reserved block,
    /// reserving the next one (one committed statement) when it is spent.
    pub(crate) async fn next_version(&self, op: Operation) -> Result<i64> {
        let mut range = self.versions.range.lock().await;
        if range.0 >= range.1 {
            let last: i64 = sqlx::query_scalar(&self.sql.reserve_versions)
                .bind(BLOCK)
                .fetch_one(&self.writer)
                .await
                .map_err(|e| map_sqlx_error(op, e))?;
            *range = (last - BLOCK + 1, last.saturating_add(1));
        }
        let next = range.0;
        range.0 += 1;
        Ok(next)
    }

    pub(crate) async fn read_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        let op = Operation::BatchGetVersioned;
        self.validator.versioned_keys(op, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let json = keys_json(keys);
        let rows: Vec<(String, Vec<u8>, i64)> = self
            .read(op, || {
                sqlx::query_as(&self.sql.batch_get_versioned)
                    .bind(&json)
                    .bind(now())
                    .fetch_all(&self.readers)
            })
            .await?;
        let rows = rows.into_iter().map(|(k, v, n)| (k, (v, n))).collect();
        Ok(in_input_order(keys, rows, |(value, n): (Vec<u8>, i64)| {
            Versioned {
                value: Bytes::from(value),
                version: to_version(n),
            }
        }))
    }

    pub(crate) async fn read_one_versioned(&self, key: &Key) -> Result<Option<Versioned>> {
        let op = Operation::GetVersioned;
        self.validator
            .versioned_keys(op, std::slice::from_ref(key))?;
        let row: Option<(Vec<u8>, i64)> = self
            .read(op, || {
                sqlx::query_as(&self.sql.get_versioned)
                    .bind(key.as_str())
                    .bind(now())
                    .fetch_optional(&self.readers)
            })
            .await?;
        Ok(row.map(|(value, n)| Versioned {
            value: Bytes::from(value),
            version: to_version(n),
        }))
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
        let k = key.as_str();
        let sql = &self.sql;
        let map = |e| map_sqlx_error(op, e);
        let at = match &condition {
            Condition::Version(v) => match column(v) {
                Some(at) => Some(at),
                None => return Ok(false),
            },
            _ => None,
        };
        let result = match (&condition, &new) {
            (Condition::Absent, None) => {
                return sqlx::query_scalar(&sql.absent)
                    .bind(k)
                    .bind(now())
                    .fetch_one(&self.writer)
                    .await
                    .map_err(map);
            }
            (Condition::Version(_), None) => {
                sqlx::query(&sql.delete_version)
                    .bind(k)
                    .bind(now())
                    .bind(at)
                    .execute(&self.writer)
                    .await
            }
            (Condition::Present, None) => {
                sqlx::query(&sql.delete_present)
                    .bind(k)
                    .bind(now())
                    .execute(&self.writer)
                    .await
            }
            (condition, Some(value)) => {
                let version = self.next_version(op).await?;
                let now = now();
                let statement = match condition {
                    Condition::Absent => &sql.insert_absent,
                    Condition::Present => &sql.update_present,
                    Condition::Version(_) => &sql.update_version,
                };
                sqlx::query(statement)
                    .bind(k)
                    .bind(now)
                    .bind(&value[..])
                    .bind(expiry(ttl, now))
                    .bind(version)
                    .bind(at)
                    .execute(&self.writer)
                    .await
            }
        };
        Ok(result.map_err(map)?.rows_affected() == 1)
    }

    pub(crate) async fn transact_rows(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let op = Operation::Transact;
        let (checks, writes) = self.validator.transaction(txn)?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        let (puts, deletes) = split_writes(&writes);
        let puts: Vec<&Entry> = puts.iter().collect();
        if checks.is_empty() {
            self.write(op, &puts, &deletes).await?;
            return Ok(TxnOutcome::Committed);
        }
        let map = |e| map_sqlx_error(op, e);
        let version = self.next_version(op).await?;
        let checked: Vec<Key> = checks.iter().map(|c| c.key.clone()).collect();
        let json = keys_json(&checked);
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map)?;
        let now = now();
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(&self.sql.checked)
            .bind(&json)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(map)?;
        let live = rows
            .into_iter()
            .filter(|(_, _, live)| *live)
            .map(|(key, n, _)| (key, to_version(n)))
            .collect();
        let current = in_input_order(&checked, live, |v| v);
        let outcome = TxnOutcome::evaluate(checks, current.iter().map(Option::as_ref));
        if !outcome.is_committed() {
            tx.rollback().await.map_err(map)?;
            return Ok(outcome);
        }
        self.write_in(&mut tx, version, now, &puts, &deletes)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(TxnOutcome::Committed)
    }

    pub(crate) async fn increment_row(
        &self,
        key: &Key,
        delta: i64,
        options: SetOptions,
    ) -> Result<i64> {
        let op = Operation::Increment;
        let ttl = self.validator.increment(key, options)?;
        let map = |e| map_sqlx_error(op, e);
        let version = self.next_version(op).await?;
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map)?;
        let now = now();
        let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(&self.sql.counter)
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
        let live = row.filter(|(_, at)| at.is_none_or(|at| at > now));
        let (current, expires_at) = match &live {
            Some((value, at)) => (Some(value.as_slice()), *at),
            None => (None, expiry(ttl, now)),
        };
        let next = self.validator.add_to_counter(key, current, delta)?;
        sqlx::query(&self.sql.set)
            .bind(key.as_str())
            .bind(&counter::encode(next)[..])
            .bind(expires_at)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(next)
    }
}

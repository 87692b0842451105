//! Versions, conditional writes, transactions and counters on MySQL.
//!
//! A row's version is a number from the store's block of versions: each
//! store reserves [`BLOCK`] numbers at a time by adding to the counter row
//! of `<table>_meta` in its own committed statement, so stores on the same
//! table (in this process or another) never hand out the same number, and
//! a number is never reused after a restart or a crash (the rest of a
//! block is skipped). Every write call takes one number for all the rows
//! it writes.
//!
//! - `write_if` on a version or on presence, and `compare_and_swap` of a
//!   value, are one guarded `UPDATE` or `DELETE` each (with sqlx's
//!   `CLIENT_FOUND_ROWS`, a matched row counts even when its bytes did not
//!   change).
//! - Insert-if-absent is a plain `INSERT`: a duplicate key means a row
//!   exists; if it is live the key is present, if it has expired it is
//!   deleted and the insert tried again.
//! - `transact` and `increment` are one transaction that locks the rows
//!   first (`SELECT ... FOR UPDATE` in key order, at `REPEATABLE READ`, so
//!   keys without a row are locked as gaps), decides, writes and commits;
//!   a transaction InnoDB rolled back for a deadlock runs again.

use std::collections::HashMap;

use bytes::Bytes;
use kv_core::backend::{RaceBackoff, counter, split_writes, sql::in_input_order};
use kv_core::{
    Condition, Entry, Error, ErrorKind, Key, Operation, Result, SetOptions, Transaction,
    TxnOutcome, Version, Versioned,
};
use tokio::sync::Mutex;

use crate::error::{BACKEND, DEADLOCK, DUPLICATE_KEY, map_sqlx_error, number};
use crate::store::{MysqlStore, by_name, ttl_millis};

/// How many versions a store reserves at a time.
pub(crate) const BLOCK: i64 = 1 << 20;

/// How many times a transaction InnoDB rolled back for a deadlock, or an
/// insert that met an expired row, is tried.
const ATTEMPTS: u32 = 16;

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

fn lost_race(op: Operation) -> Error {
    Error::new(ErrorKind::Conflict, BACKEND, op)
        .with_temporary(true)
        .with_message(format!(
            "lost {ATTEMPTS} races in a row (deadlocks, or keys expiring under the write)"
        ))
}

impl MysqlStore {
    /// A version no write of this table has used: from the reserved block,
    /// reserving the next one (one committed statement) when it is spent.
    pub(crate) async fn next_version(&self, op: Operation) -> Result<i64> {
        let mut range = self.versions.range.lock().await;
        if range.0 >= range.1 {
            let map = |e| map_sqlx_error(op, e);
            let mut conn = self.pool.acquire().await.map_err(map)?;
            sqlx::query(&self.sql.reserve_versions)
                .bind(BLOCK)
                .execute(&mut *conn)
                .await
                .map_err(map)?;
            // LAST_INSERT_ID(expr) set it for this connection.
            let last: i64 = sqlx::query_scalar("SELECT CAST(LAST_INSERT_ID() AS SIGNED)")
                .fetch_one(&mut *conn)
                .await
                .map_err(map)?;
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
        let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = self
            .read_keys(op, &self.sql.batch_get_versioned, keys)
            .await?;
        let rows = by_name(rows.into_iter().map(|(k, v, n)| (k, (v, n))).collect());
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
                    .bind(key.as_str().as_bytes())
                    .fetch_optional(&self.pool)
            })
            .await?;
        Ok(row.map(|(value, n)| Versioned {
            value: Bytes::from(value),
            version: to_version(n),
        }))
    }

    /// Whether no live row of `key` exists.
    async fn is_absent(&self, op: Operation, key: &Key) -> Result<bool> {
        Ok(!self.is_live(op, key).await?)
    }

    /// Writes `key` if no live row of it exists: a plain insert; after a
    /// duplicate key, `false` if the row is live, else the expired row is
    /// deleted and the insert tried again.
    async fn insert_absent(
        &self,
        op: Operation,
        key: &Key,
        value: &[u8],
        ttl: Option<i64>,
    ) -> Result<bool> {
        let map = |e| map_sqlx_error(op, e);
        let k = key.as_str().as_bytes();
        let version = self.next_version(op).await?;
        for _ in 0..ATTEMPTS {
            let inserted = sqlx::query(&self.sql.insert)
                .bind(k)
                .bind(value)
                .bind(ttl)
                .bind(version)
                .execute(&self.pool)
                .await;
            match inserted {
                Ok(_) => return Ok(true),
                Err(e) if number(&e) == Some(DUPLICATE_KEY) => {}
                Err(e) => return Err(map(e)),
            }
            if !self.is_absent(op, key).await? {
                return Ok(false);
            }
            sqlx::query(&self.sql.delete_expired)
                .bind(k)
                .execute(&self.pool)
                .await
                .map_err(map)?;
        }
        Err(lost_race(op))
    }

    pub(crate) async fn swap_value(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let op = Operation::CompareAndSwap;
        let ttl =
            ttl_millis(
                self.validator
                    .cas(key, expected.as_deref(), new.as_deref(), options)?,
            );
        let k = key.as_str().as_bytes();
        let map = |e| map_sqlx_error(op, e);
        let done = match (&expected, &new) {
            (None, Some(new)) => return self.insert_absent(op, key, new, ttl).await,
            (None, None) => return self.is_absent(op, key).await,
            (Some(old), Some(new)) => {
                let version = self.next_version(op).await?;
                sqlx::query(&self.sql.update_value)
                    .bind(&new[..])
                    .bind(ttl)
                    .bind(version)
                    .bind(k)
                    .bind(&old[..])
                    .execute(&self.pool)
                    .await
            }
            (Some(old), None) => {
                sqlx::query(&self.sql.delete_value)
                    .bind(k)
                    .bind(&old[..])
                    .execute(&self.pool)
                    .await
            }
        };
        Ok(done.map_err(map)?.rows_affected() == 1)
    }

    pub(crate) async fn write_if_one(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let op = Operation::WriteIf;
        let ttl = ttl_millis(self.validator.write_if(key, new.as_deref(), options)?);
        let k = key.as_str().as_bytes();
        let sql = &self.sql;
        let map = |e| map_sqlx_error(op, e);
        let at = match &condition {
            Condition::Version(v) => match column(v) {
                Some(at) => Some(at),
                None => return Ok(false),
            },
            _ => None,
        };
        let done = match (&condition, &new) {
            (Condition::Absent, None) => return self.is_absent(op, key).await,
            (Condition::Absent, Some(value)) => {
                return self.insert_absent(op, key, value, ttl).await;
            }
            (Condition::Version(_), None) => {
                sqlx::query(&sql.delete_version)
                    .bind(k)
                    .bind(at)
                    .execute(&self.pool)
                    .await
            }
            (Condition::Present, None) => {
                sqlx::query(&sql.delete).bind(k).execute(&self.pool).await
            }
            (Condition::Version(_), Some(value)) => {
                let version = self.next_version(op).await?;
                sqlx::query(&sql.update_version)
                    .bind(&value[..])
                    .bind(ttl)
                    .bind(version)
                    .bind(k)
                    .bind(at)
                    .execute(&self.pool)
                    .await
            }
            (Condition::Present, Some(value)) => {
                let version = self.next_version(op).await?;
                sqlx::query(&sql.update_present)
                    .bind(&value[..])
                    .bind(ttl)
                    .bind(version)
                    .bind(k)
                    .execute(&self.pool)
                    .await
            }
        };
        Ok(done.map_err(map)?.rows_affected() == 1)
    }

    pub(crate) async fn transact_rows(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let op = Operation::Transact;
        let (checks, writes) = self.validator.transaction(txn)?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        let (puts, deletes) = split_writes(&writes);
        let puts: Vec<&Entry> = puts.iter().collect();
        let deletes: Vec<&str> = deletes.iter().map(|k| k.as_str()).collect();
        if checks.is_empty() {
            self.write(op, &puts, &deletes).await?;
            return Ok(TxnOutcome::Committed);
        }
        let mut checked: Vec<Key> = checks.iter().map(|c| c.key.clone()).collect();
        checked.sort_unstable();
        checked.dedup();
        self.check_writes(op, &puts, &deletes)?;
        self.check_keys(op, &checked)?;
        let version = self.version_for(op, &puts).await?;
        let mut backoff = RaceBackoff::start();
        loop {
            match self
                .try_transact(checks, &checked, version, &puts, &deletes)
                .await
            {
                Err(e) if number(&e) == Some(DEADLOCK) && backoff.losses() + 1 < ATTEMPTS => {
                    backoff.lost().await;
                }
                other => return other.map_err(|e| map_sqlx_error(op, e)),
            }
        }
    }

    async fn try_transact(
        &self,
        checks: &[kv_core::Check],
        checked: &[Key],
        version: i64,
        puts: &[&Entry],
        deletes: &[&str],
    ) -> sqlx::Result<TxnOutcome> {
        let mut tx = self.pool.begin().await?;
        let sql = self.sql.checked.get(checked.len());
        let mut query = sqlx::query_as(&sql);
        for key in checked {
            query = query.bind(key.as_str().as_bytes());
        }
        let rows: Vec<(Vec<u8>, i64, i64)> = query.fetch_all(&mut *tx).await?;
        let live: HashMap<Vec<u8>, Version> = rows
            .into_iter()
            .filter(|(_, _, live)| *live != 0)
            .map(|(k, n, _)| (k, to_version(n)))
            .collect();
        let outcome = TxnOutcome::evaluate(
            checks,
            checks.iter().map(|c| live.get(c.key.as_str().as_bytes())),
        );
        if !outcome.is_committed() {
            tx.rollback().await?;
            return Ok(outcome);
        }
        self.write_in(&mut tx, version, puts, deletes).await?;
        tx.commit().await?;
        Ok(TxnOutcome::Committed)
    }

    pub(crate) async fn increment_row(
        &self,
        key: &Key,
        delta: i64,
        options: SetOptions,
    ) -> Result<i64> {
        let op = Operation::Increment;
        let ttl = ttl_millis(self.validator.increment(key, options)?);
        let version = self.next_version(op).await?;
        let mut backoff = RaceBackoff::start();
        loop {
            match self.try_increment(key, delta, ttl, version).await {
                Err(Failed::Driver(e))
                    if number(&e) == Some(DEADLOCK) && backoff.losses() + 1 < ATTEMPTS =>
                {
                    backoff.lost().await;
                }
                Err(Failed::Driver(e)) => return Err(map_sqlx_error(op, e)),
                Err(Failed::Final(e)) => return Err(e),
                Ok(next) => return Ok(next),
            }
        }
    }

    async fn try_increment(
        &self,
        key: &Key,
        delta: i64,
        ttl: Option<i64>,
        version: i64,
    ) -> std::result::Result<i64, Failed> {
        let k = key.as_str().as_bytes();
        let mut tx = self.pool.begin().await?;
        let row: Option<(Vec<u8>, i64)> = sqlx::query_as(&self.sql.counter)
            .bind(k)
            .fetch_optional(&mut *tx)
            .await?;
        let current = row
            .as_ref()
            .filter(|(_, live)| *live != 0)
            .map(|(v, _)| v.as_slice());
        let next = match self.validator.add_to_counter(key, current, delta) {
            Ok(next) => next,
            Err(e) => {
                tx.rollback().await?;
                return Err(Failed::Final(e));
            }
        };
        let value = counter::encode(next);
        if current.is_some() {
            sqlx::query(&self.sql.update_keeping_ttl)
                .bind(&value[..])
                .bind(version)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(&self.sql.set)
                .bind(k)
                .bind(&value[..])
                .bind(ttl)
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(next)
    }
}

/// Why an increment attempt failed: the server (maybe a deadlock, run
/// again) or the stored value (final).
enum Failed {
    Driver(sqlx::Error),
    Final(Error),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        Self::Driver(e)
    }
}

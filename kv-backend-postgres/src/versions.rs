//! Versions, transactions and counters on PostgreSQL. A row's version is
//! the id of the transaction that last wrote it (`txid_current()`, 64 bits
//! with its epoch), kept in the `version` column by every write.
//!
//! - `write_if` is one statement whose `WHERE` (or `ON CONFLICT ... WHERE`)
//!   holds the condition; PostgreSQL re-checks it on the locked row.
//! - `transact` is one transaction: placeholders for checked keys that
//!   have no row (so that there is a row to lock, and a concurrent insert
//!   waits for us), `SELECT ... FOR UPDATE` of every checked key in key
//!   order, the checks decided on the locked rows, then the writes, or a
//!   rollback. A deadlock or serialization failure (rolled back by the
//!   server) is run again, at most [`ATTEMPTS`] times.
//! - `increment` is one upsert with `RETURNING`.

use std::collections::HashMap;

use bytes::Bytes;
use kv_core::backend::{counter, split_writes};
use kv_core::{
    Condition, Entry, Error, ErrorKind, Key, Operation, Result, SetOptions, Transaction,
    TxnOutcome, Version, Versioned,
};

use crate::error::{BACKEND, map_sqlx_error};
use crate::rows::ttl_millis;
use crate::store::PostgresStore;
use kv_core::backend::sql::in_input_order;

/// How many times a transaction the server rolled back for a deadlock or
/// a serialization failure is run again.
const ATTEMPTS: usize = 8;

fn version(v: i64) -> Version {
    Version::from_bytes(Bytes::copy_from_slice(&v.to_be_bytes()))
}

/// The `version` column value of a version this backend made; `None` for
/// any other token (no row is at it).
fn column(v: &Version) -> Option<i64> {
    <[u8; 8]>::try_from(v.as_bytes())
        .ok()
        .map(i64::from_be_bytes)
}

/// Whether the server rolled the transaction back and it may run again.
fn is_retryable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40001" | "40P01")))
}

/// Maps an increment's errors: a stored value that is not a counter fails
/// its conversion (NULL into `value`, bytes not UTF-8), a result out of
/// `int8` overflows.
fn increment_error(store: &PostgresStore, key: &Key, err: sqlx::Error) -> Error {
    let code = match &err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    match code.as_deref() {
        Some("23502" | "22021" | "22P02") => store.validator.not_a_counter(key),
        Some("22003") => Error::new(ErrorKind::Overflow, BACKEND, Operation::Increment)
            .with_key(key.as_str())
            .with_message("the counter would overflow a 64-bit integer"),
        _ => map_sqlx_error(Operation::Increment, err),
    }
}

impl PostgresStore {
    pub(crate) async fn read_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        let op = Operation::BatchGetVersioned;
        self.validator.versioned_keys(op, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
        let rows: Vec<(String, Vec<u8>, i64)> = self
            .read(op, || {
                sqlx::query_as(&self.sql.batch_get_versioned)
                    .bind(&names)
                    .fetch_all(&self.pool)
            })
            .await?;
        let rows = rows.into_iter().map(|(k, v, n)| (k, (v, n))).collect();
        Ok(in_input_order(keys, rows, |(value, n): (Vec<u8>, i64)| {
            Versioned {
                value: Bytes::from(value),
                version: version(n),
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
                    .fetch_optional(&self.pool)
            })
            .await?;
        Ok(row.map(|(value, n)| Versioned {
            value: Bytes::from(value),
            version: version(n),
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
        let ttl = ttl_millis(self.validator.write_if(key, new.as_deref(), options)?);
        let k = key.as_str();
        let sql = &self.sql;
        let result = match (&condition, &new) {
            (Condition::Version(v), _) if column(v).is_none() => return Ok(false),
            (Condition::Version(v), Some(value)) => {
                sqlx::query(&sql.update_at_version)
                    .bind(k)
                    .bind(&value[..])
                    .bind(ttl)
                    .bind(column(v))
                    .execute(&self.pool)
                    .await
            }
            (Condition::Version(v), None) => {
                sqlx::query(&sql.delete_at_version)
                    .bind(k)
                    .bind(column(v))
                    .execute(&self.pool)
                    .await
            }
            (Condition::Present, Some(value)) => {
                sqlx::query(&sql.update_present)
                    .bind(k)
                    .bind(&value[..])
                    .bind(ttl)
                    .execute(&self.pool)
                    .await
            }
            (Condition::Present, None) => {
                sqlx::query(&sql.delete_present)
                    .bind(k)
                    .execute(&self.pool)
                    .await
            }
            (Condition::Absent, Some(value)) => {
                sqlx::query(&sql.cas_insert)
                    .bind(k)
                    .bind(&value[..])
                    .bind(ttl)
                    .execute(&self.pool)
                    .await
            }
            (Condition::Absent, None) => {
                return sqlx::query_scalar(&sql.cas_absent)
                    .bind(k)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error(op, e));
            }
        };
        Ok(result.map_err(|e| map_sqlx_error(op, e))?.rows_affected() == 1)
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
        let mut checked: Vec<&str> = checks.iter().map(|c| c.key.as_str()).collect();
        checked.sort_unstable();
        checked.dedup();
        for attempt in 1..=ATTEMPTS {
            match self.try_transact(checks, &checked, &puts, &deletes).await {
                Err(e) if is_retryable(&e) && attempt < ATTEMPTS => continue,
                other => return other.map_err(|e| map_sqlx_error(op, e)),
            }
        }
        Err(Error::new(ErrorKind::Backend, BACKEND, op).with_temporary(true))
    }

    async fn try_transact(
        &self,
        checks: &[kv_core::Check],
        checked: &[&str],
        puts: &[&Entry],
        deletes: &[&str],
    ) -> sqlx::Result<TxnOutcome> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&self.sql.txn_placeholders)
            .bind(checked)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(&self.sql.txn_lock)
            .bind(checked)
            .fetch_all(&mut *tx)
            .await?;
        let live: HashMap<String, Version> = rows
            .into_iter()
            .filter(|(_, _, live)| *live)
            .map(|(key, n, _)| (key, version(n)))
            .collect();
        let outcome = TxnOutcome::evaluate(checks, checks.iter().map(|c| live.get(c.key.as_str())));
        if !outcome.is_committed() {
            tx.rollback().await?;
            return Ok(outcome);
        }
        if !deletes.is_empty() {
            sqlx::query(&self.sql.delete_all)
                .bind(deletes)
                .execute(&mut *tx)
                .await?;
        }
        for chunk in crate::rows::chunks(puts) {
            self.upsert(&mut tx, &chunk).await?;
        }
        tx.commit().await?;
        Ok(TxnOutcome::Committed)
    }

    pub(crate) async fn increment_row(
        &self,
        key: &Key,
        delta: i64,
        options: SetOptions,
    ) -> Result<i64> {
        let ttl = ttl_millis(self.validator.increment(key, options)?);
        let stored: Vec<u8> = sqlx::query_scalar(&self.sql.increment)
            .bind(key.as_str())
            .bind(delta)
            .bind(ttl)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| increment_error(self, key, e))?;
        counter::parse(&stored).ok_or_else(|| self.validator.not_a_counter(key))
    }
}

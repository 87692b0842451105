//! The SQL the store runs, built once per store from the checked table
//! name, and the tables' creation and check.
//!
//! Time is the server's: every statement compares `expires_at` (Unix
//! milliseconds) with [`NOW_MS`], so clients with skewed clocks agree on
//! what has expired. Key lists are `IN (?, ...)` and upserts multi-row
//! `VALUES` lists with exactly as many placeholders as the batch needs;
//! the statement of each size is built once and prepared once per pooled
//! connection (sqlx's statement cache).

use std::borrow::Cow;
use std::sync::OnceLock;

use kv_core::{Operation, Result};
use sqlx::MySqlPool;

use crate::error::{config_error, map_sqlx_error};

/// The server's time in Unix milliseconds (the session time zone is UTC:
/// sqlx sets `time_zone = '+00:00'` on every connection).
const NOW_MS: &str = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)";

/// Rows whose TTL has not passed (or that have none).
fn live() -> String {
    format!("(expires_at IS NULL OR expires_at > {NOW_MS})")
}

/// Rows whose TTL has passed.
fn expired() -> String {
    format!("(expires_at IS NOT NULL AND expires_at <= {NOW_MS})")
}

/// The most placeholders one prepared statement may have (a 16-bit count
/// in the protocol).
pub(crate) const MAX_PLACEHOLDERS: usize = 65_535;

/// Placeholders per upserted row: key, value, TTL, version.
pub(crate) const UPSERT_PARAMS: usize = 4;

/// Statements of this many rows or keys and fewer are kept once built.
const CACHED_SIZES: usize = 1024;

/// A statement whose middle repeats `unit` once per row or key.
#[derive(Debug)]
pub(crate) struct Sized {
    head: String,
    unit: String,
    tail: String,
    cache: Vec<OnceLock<String>>,
}

impl Sized {
    fn new(head: String, unit: impl Into<String>, tail: String) -> Self {
        Self {
            head,
            unit: unit.into(),
            tail,
            cache: (0..CACHED_SIZES).map(|_| OnceLock::new()).collect(),
        }
    }

    fn build(&self, n: usize) -> String {
        let mut sql =
            String::with_capacity(self.head.len() + self.tail.len() + n * (self.unit.len() + 2));
        sql.push_str(&self.head);
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&self.unit);
        }
        sql.push_str(&self.tail);
        sql
    }

    /// The statement for `n` rows or keys (`n` at least 1).
    pub(crate) fn get(&self, n: usize) -> Cow<'_, str> {
        match n.checked_sub(1).and_then(|i| self.cache.get(i)) {
            Some(slot) => Cow::Borrowed(slot.get_or_init(|| self.build(n))),
            None => Cow::Owned(self.build(n)),
        }
    }
}

/// Every statement, with the table spliced in once.
#[derive(Debug)]
pub(crate) struct Statements {
    /// `k`.
    pub(crate) get: String,
    pub(crate) get_versioned: String,
    pub(crate) exists: String,
    /// `k, v, ttl ms, version`.
    pub(crate) set: String,
    /// `k, v, ttl ms, version`: fails with a duplicate key when a row
    /// exists.
    pub(crate) insert: String,
    /// `k`: deletes the row if it is live (also `write_if` present with
    /// no new value).
    pub(crate) delete: String,
    /// `k`: deletes the row if it has expired.
    pub(crate) delete_expired: String,
    /// Key lists.
    pub(crate) batch_get: Sized,
    pub(crate) batch_get_with_ttl: Sized,
    pub(crate) batch_get_versioned: Sized,
    /// Deletes the live rows of the keys (the count is the live ones).
    pub(crate) batch_delete: Sized,
    /// Deletes the rows of the keys, live or not.
    pub(crate) delete_all: Sized,
    /// A transaction's checked rows, locked in key order: key, version, live.
    pub(crate) checked: Sized,
    /// Rows of `k, v, ttl ms, version`.
    pub(crate) upsert: Sized,
    /// `[from prefix, after cursor] x [open, bounded]`: lower bound,
    /// upper bound when bounded, limit.
    lists: [String; 4],
    /// `v, ttl, version, k, expected v`.
    pub(crate) update_value: String,
    /// `k, expected v`.
    pub(crate) delete_value: String,
    /// `v, ttl, version, k, expected version`.
    pub(crate) update_version: String,
    /// `k, expected version`.
    pub(crate) delete_version: String,
    /// `v, ttl, version, k`.
    pub(crate) update_present: String,
    /// A counter's row, locked: value and whether it is live.
    pub(crate) counter: String,
    /// `v, version, k`: a new value keeping the expiry.
    pub(crate) update_keeping_ttl: String,
    /// Reserves `?` versions; the last one reserved is `LAST_INSERT_ID()`.
    pub(crate) reserve_versions: String,
    /// `chunk`.
    pub(crate) purge: String,
}

impl Statements {
    pub(crate) fn new(table: &str) -> Self {
        let t = format!("`{table}`");
        let meta = format!("`{table}_meta`");
        let live = live();
        let row = format!("(?, ?, {NOW_MS} + ?, ?)");
        let replace = " ON DUPLICATE KEY UPDATE v = VALUES(v), expires_at = VALUES(expires_at), \
             version = VALUES(version)";
        let columns = format!("INSERT INTO {t} (k, v, expires_at, version) VALUES ");
        let keys = |head: String, tail: &str| Sized::new(head, "?", format!("){tail}"));
        let list = |lower: &str, upper: &str| {
            format!("SELECT k FROM {t} WHERE k {lower} ? {upper} AND {live} ORDER BY k LIMIT ?")
        };
        let set_ttl = format!("expires_at = {NOW_MS} + ?");
        Self {
            get: format!("SELECT v FROM {t} WHERE k = ? AND {live}"),
            get_versioned: format!("SELECT v, version FROM {t} WHERE k = ? AND {live}"),
            exists: format!(
                "SELECT CAST(EXISTS (SELECT 1 FROM {t} WHERE k = ? AND {live}) AS SIGNED)"
            ),
            set: format!("{columns}{row}{replace}"),
            insert: format!("{columns}{row}"),
            delete: format!("DELETE FROM {t} WHERE k = ? AND {live}"),
            delete_expired: format!("DELETE FROM {t} WHERE k = ? AND {}", expired()),
            batch_get: keys(
                format!("SELECT k, v FROM {t} WHERE k IN ("),
                &format!(" AND {live}"),
            ),
            batch_get_with_ttl: keys(
                format!("SELECT k, v, expires_at - {NOW_MS} FROM {t} WHERE k IN ("),
                &format!(" AND {live}"),
            ),
            batch_get_versioned: keys(
                format!("SELECT k, v, version FROM {t} WHERE k IN ("),
                &format!(" AND {live}"),
            ),
            batch_delete: keys(
                format!("DELETE FROM {t} WHERE k IN ("),
                &format!(" AND {live}"),
            ),
            delete_all: keys(format!("DELETE FROM {t} WHERE k IN ("), ""),
            checked: keys(
                format!("SELECT k, version, CAST({live} AS SIGNED) FROM {t} WHERE k IN ("),
                " ORDER BY k FOR UPDATE",
            ),
            upsert: Sized::new(columns.clone(), row.clone(), replace.to_owned()),
            lists: [
                list(">=", ""),
                list(">=", "AND k < ?"),
                list(">", ""),
                list(">", "AND k < ?"),
            ],
            update_value: format!(
                "UPDATE {t} SET v = ?, {set_ttl}, version = ? WHERE k = ? AND v = ? AND {live}"
            ),
            delete_value: format!("DELETE FROM {t} WHERE k = ? AND v = ? AND {live}"),
            update_version: format!(
                "UPDATE {t} SET v = ?, {set_ttl}, version = ? WHERE k = ? AND version = ? AND {live}"
            ),
            delete_version: format!("DELETE FROM {t} WHERE k = ? AND version = ? AND {live}"),
            update_present: format!(
                "UPDATE {t} SET v = ?, {set_ttl}, version = ? WHERE k = ? AND {live}"
            ),
            counter: format!("SELECT v, CAST({live} AS SIGNED) FROM {t} WHERE k = ? FOR UPDATE"),
            update_keeping_ttl: format!("UPDATE {t} SET v = ?, version = ? WHERE k = ?"),
            reserve_versions: format!(
                "UPDATE {meta} SET value = LAST_INSERT_ID(value + ?) WHERE name = 'version'"
            ),
            purge: format!(
                "DELETE FROM {t} WHERE expires_at <= {NOW_MS} ORDER BY expires_at LIMIT ?"
            ),
        }
    }

    /// The listing from the prefix (`after` false) or after the cursor,
    /// bounded above or not.
    pub(crate) fn list(&self, after: bool, bounded: bool) -> &str {
        &self.lists[usize::from(after) * 2 + usize::from(bounded)]
    }
}

/// Creates the table and `<table>_meta` (the version counter) if missing.
/// `CREATE TABLE IF NOT EXISTS` is atomic in MySQL and MariaDB, so
/// concurrent first connects are safe.
pub(crate) async fn create_tables(pool: &MySqlPool, table: &str) -> Result<()> {
    let map = |e| map_sqlx_error(Operation::Connect, e);
    for statement in [
        format!(
            "CREATE TABLE IF NOT EXISTS `{table}` (k VARBINARY(1024) NOT NULL PRIMARY KEY, \
             v LONGBLOB NOT NULL, expires_at BIGINT NULL, version BIGINT NOT NULL, \
             KEY `{table}_expires_at` (expires_at)) ENGINE = InnoDB"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS `{table}_meta` (name VARCHAR(64) NOT NULL PRIMARY KEY, \
             value BIGINT NOT NULL) ENGINE = InnoDB"
        ),
        format!("INSERT IGNORE INTO `{table}_meta` (name, value) VALUES ('version', 0)"),
    ] {
        sqlx::query(&statement).execute(pool).await.map_err(map)?;
    }
    Ok(())
}

/// Checks that the table has the columns the store needs, the key binary
/// (byte order), and that the version counter exists. A table of another
/// shape is never altered.
pub(crate) async fn check_tables(pool: &MySqlPool, table: &str) -> Result<()> {
    let map = |e| map_sqlx_error(Operation::Connect, e);
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR) FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    if columns.is_empty() {
        return Err(config_error(format!(
            "table {table} does not exist (and create_table is off, or the URL names no database)"
        )));
    }
    let has = |name: &str, types: &[&str]| {
        columns.iter().any(|(n, t)| {
            n.eq_ignore_ascii_case(name) && types.iter().any(|w| t.eq_ignore_ascii_case(w))
        })
    };
    if !(has("k", &["varbinary", "binary"])
        && has("v", &["longblob", "mediumblob", "blob"])
        && has("expires_at", &["bigint"])
        && has("version", &["bigint"]))
    {
        return Err(config_error(format!(
            "table {table} exists but is not a kv table: it needs k VARBINARY(1024) PRIMARY KEY, \
             v LONGBLOB NOT NULL, expires_at BIGINT NULL, version BIGINT NOT NULL"
        )));
    }
    let counter: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT value FROM `{table}_meta` WHERE name = 'version'"
    ))
    .fetch_optional(pool)
    .await
    .map_err(|_| {
        config_error(format!(
            "table {table}_meta (the version counter) is missing (create_table is off)"
        ))
    })?;
    if counter.is_none() {
        return Err(config_error(format!(
            "table {table}_meta has no version counter row"
        )));
    }
    Ok(())
}

/// Deletes expired rows in chunks until a chunk comes back short; answers
/// how many.
pub(crate) async fn purge(pool: &MySqlPool, sql: &Statements, chunk: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(&sql.purge)
            .bind(chunk)
            .execute(pool)
            .await
            .map_err(|e| map_sqlx_error(Operation::Maintenance, e))?
            .rows_affected();
        total += deleted;
        if deleted < chunk.unsigned_abs() {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_statements_have_exactly_n_placeholders() {
        let sql = Statements::new("t");
        for n in [1, 2, 7, CACHED_SIZES, CACHED_SIZES + 1] {
            assert_eq!(sql.batch_get.get(n).matches('?').count(), n, "{n}");
            assert_eq!(
                sql.upsert.get(n).matches('?').count(),
                n * UPSERT_PARAMS,
                "{n}"
            );
        }
        assert!(sql.batch_get.get(2).contains("IN (?, ?) AND"));
        // A cached statement is the same string each time.
        assert!(std::ptr::eq(
            sql.batch_get.get(3).as_ptr(),
            sql.batch_get.get(3).as_ptr()
        ));
    }
}

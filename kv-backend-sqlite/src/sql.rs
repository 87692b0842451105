//! The SQL the store runs, built once per store from the checked table
//! name, and the tables' creation and check.
//!
//! Every statement that reads takes the current time in milliseconds as a
//! parameter (`?2` unless noted): a row whose `expires_at` is not after it
//! is expired and treated as absent. Key lists (`batch_get`,
//! `batch_delete`, a transaction's checks) are one JSON array parameter read
//! with `json_each`, so any number of keys is one statement and one cached
//! plan; rows to upsert go in multi-row `VALUES` statements of up to
//! [`MAX_ROWS`] rows: a batch of at most that many is one statement.

use std::sync::OnceLock;

use kv_core::{Operation, Result};
use sqlx::{SqliteConnection, SqlitePool};

use crate::error::{config_error, map_sqlx_error};

/// The most rows one upsert statement writes (3 parameters each, and the
/// version): well inside SQLite's 32,766 parameters.
pub(crate) const MAX_ROWS: usize = 256;

/// The keys of a JSON array parameter `?1`.
const KEYS: &str = "(SELECT value FROM json_each(?1))";

/// A row's value as bytes: a BLOB as it is; a value another program
/// stored as TEXT, INTEGER or REAL as the bytes of its text (SQLite's
/// `CAST`), never a decode error.
const VALUE: &str = "CAST(value AS BLOB)";

/// Rows whose TTL has not passed (or that have none), at time `?2`.
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";

/// What an upsert does to an existing row: everything replaced.
const REPLACE: &str = "ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
     expires_at = excluded.expires_at, version = excluded.version";

/// Every statement, with the table spliced in once.
#[derive(Debug)]
pub(crate) struct Statements {
    /// `?1` key, `?2` now.
    pub(crate) get: String,
    pub(crate) get_versioned: String,
    pub(crate) exists: String,
    /// `?1` key, `?2` value, `?3` expiry, `?4` version.
    pub(crate) set: String,
    /// Answers, per deleted row, whether it was live.
    pub(crate) delete: String,
    /// `?1` JSON keys, `?2` now.
    pub(crate) batch_get: String,
    pub(crate) batch_get_with_ttl: String,
    pub(crate) batch_get_versioned: String,
    /// Answers, per deleted row, whether it was live.
    pub(crate) batch_delete: String,
    /// Deletes without a count: the deletes of a `write_batch`.
    pub(crate) delete_all: String,
    /// A transaction's checked rows: key, version, live.
    pub(crate) checked: String,
    /// `upserts[n - 1]` writes `n` rows: `?1` the version, then key, value
    /// and expiry per row; each built when first needed.
    upserts: Vec<OnceLock<String>>,
    /// The table, quoted.
    quoted: String,
    /// `[from prefix, after cursor] x [open, bounded]`: `?1` lower bound,
    /// `?2` now, `?3` limit, `?4` upper bound.
    lists: [String; 4],
    /// Inserts `?1` unless a live row exists (an expired one is replaced).
    pub(crate) insert_absent: String,
    /// `?1` key, `?2` now, `?3` value, `?4` expiry, `?5` version, `?6`
    /// expected value.
    pub(crate) update_value: String,
    /// `?1` key, `?2` now, `?3` expected value.
    pub(crate) delete_value: String,
    /// `?1` key, `?2` now: whether no live row exists.
    pub(crate) absent: String,
    /// As `update_value` with `?6` the expected version.
    pub(crate) update_version: String,
    /// `?1` key, `?2` now, `?3` expected version.
    pub(crate) delete_version: String,
    /// `?1` key, `?2` now, `?3` value, `?4` expiry, `?5` version.
    pub(crate) update_present: String,
    /// `?1` key, `?2` now.
    pub(crate) delete_present: String,
    /// A counter's row: value and expiry, live or not.
    pub(crate) counter: String,
    /// Reserves `?1` versions; answers the last one reserved.
    pub(crate) reserve_versions: String,
    /// `?1` now, `?2` chunk.
    pub(crate) purge: String,
}

impl Statements {
    pub(crate) fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        let meta = format!("\"{table}_meta\"");
        let upserts = (0..MAX_ROWS).map(|_| OnceLock::new()).collect();
        let list = |lower: &str, upper: &str| {
            format!(
                "SELECT key FROM {t} WHERE key {lower} ?1 {upper} AND {LIVE} ORDER BY key LIMIT ?3"
            )
        };
        Self {
            get: format!("SELECT {VALUE} FROM {t} WHERE key = ?1 AND {LIVE}"),
            get_versioned: format!("SELECT {VALUE}, version FROM {t} WHERE key = ?1 AND {LIVE}"),
            exists: format!("SELECT EXISTS (SELECT 1 FROM {t} WHERE key = ?1 AND {LIVE})"),
            set: format!(
                "INSERT INTO {t} (key, value, expires_at, version) VALUES (?1, ?2, ?3, ?4) {REPLACE}"
            ),
            delete: format!("DELETE FROM {t} WHERE key = ?1 RETURNING {LIVE}"),
            batch_get: format!("SELECT key, {VALUE} FROM {t} WHERE key IN {KEYS} AND {LIVE}"),
            batch_get_with_ttl: format!(
                "SELECT key, {VALUE}, expires_at FROM {t} WHERE key IN {KEYS} AND {LIVE}"
            ),
            batch_get_versioned: format!(
                "SELECT key, {VALUE}, version FROM {t} WHERE key IN {KEYS} AND {LIVE}"
            ),
            batch_delete: format!("DELETE FROM {t} WHERE key IN {KEYS} RETURNING {LIVE}"),
            delete_all: format!("DELETE FROM {t} WHERE key IN {KEYS}"),
            checked: format!("SELECT key, version, {LIVE} FROM {t} WHERE key IN {KEYS}"),
            upserts,
            quoted: t.clone(),
            lists: [
                list(">=", ""),
                list(">=", "AND key < ?4"),
                list(">", ""),
                list(">", "AND key < ?4"),
            ],
            insert_absent: format!(
                "INSERT INTO {t} (key, value, expires_at, version) VALUES (?1, ?3, ?4, ?5) \
                 {REPLACE} WHERE NOT {live}",
                live = "(expires_at IS NULL OR expires_at > ?2)"
            ),
            update_value: format!(
                "UPDATE {t} SET value = ?3, expires_at = ?4, version = ?5 \
                 WHERE key = ?1 AND value = ?6 AND {LIVE}"
            ),
            delete_value: format!("DELETE FROM {t} WHERE key = ?1 AND value = ?3 AND {LIVE}"),
            absent: format!("SELECT NOT EXISTS (SELECT 1 FROM {t} WHERE key = ?1 AND {LIVE})"),
            update_version: format!(
                "UPDATE {t} SET value = ?3, expires_at = ?4, version = ?5 \
                 WHERE key = ?1 AND version = ?6 AND {LIVE}"
            ),
            delete_version: format!("DELETE FROM {t} WHERE key = ?1 AND version = ?3 AND {LIVE}"),
            update_present: format!(
                "UPDATE {t} SET value = ?3, expires_at = ?4, version = ?5 WHERE key = ?1 AND {LIVE}"
            ),
            delete_present: format!("DELETE FROM {t} WHERE key = ?1 AND {LIVE}"),
            counter: format!("SELECT {VALUE}, expires_at FROM {t} WHERE key = ?1"),
            reserve_versions: format!(
                "UPDATE {meta} SET value = value + ?1 WHERE name = 'version' RETURNING value"
            ),
            purge: format!(
                "DELETE FROM {t} WHERE key IN \
                 (SELECT key FROM {t} WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)"
            ),
        }
    }

    /// The upsert of exactly `rows` rows, 1 to [`MAX_ROWS`].
    pub(crate) fn upsert(&self, rows: usize) -> &str {
        let Some(slot) = rows.checked_sub(1).and_then(|i| self.upserts.get(i)) else {
            return "";
        };
        slot.get_or_init(|| {
            let values: Vec<String> = (0..rows)
                .map(|r| format!("(?{}, ?{}, ?{}, ?1)", 3 * r + 2, 3 * r + 3, 3 * r + 4))
                .collect();
            format!(
                "INSERT INTO {} (key, value, expires_at, version) VALUES {} {REPLACE}",
                self.quoted,
                values.join(", ")
            )
        })
    }

    /// The listing from the prefix (`after` false) or after the cursor,
    /// bounded above or not.
    pub(crate) fn list(&self, after: bool, bounded: bool) -> &str {
        &self.lists[usize::from(after) * 2 + usize::from(bounded)]
    }
}

/// Splits `n` rows into statement sizes: as many [`MAX_ROWS`] as fit, then
/// the rest in one (300 = 256 + 44).
pub(crate) fn upsert_sizes(n: usize) -> impl Iterator<Item = usize> {
    let rest = n % MAX_ROWS;
    std::iter::repeat_n(MAX_ROWS, n / MAX_ROWS).chain((rest > 0).then_some(rest))
}

/// Creates the table, its expiry index and the version counter if
/// missing, in one transaction; an existing table of another shape is a
/// `Config` error and nothing is created.
pub(crate) async fn create_tables(pool: &SqlitePool, table: &str) -> Result<()> {
    let map = |e| map_sqlx_error(Operation::Connect, e);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map)?;
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS \"{table}\" (key TEXT COLLATE BINARY PRIMARY KEY NOT NULL, \
         value BLOB NOT NULL, expires_at INTEGER, version INTEGER NOT NULL) WITHOUT ROWID"
    ))
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    check_columns(&mut tx, table).await?;
    for statement in [
        format!(
            "CREATE INDEX IF NOT EXISTS \"{table}_expires_at\" ON \"{table}\" (expires_at) \
             WHERE expires_at IS NOT NULL"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS \"{table}_meta\" (name TEXT PRIMARY KEY NOT NULL, \
             value INTEGER NOT NULL) WITHOUT ROWID"
        ),
        format!("INSERT OR IGNORE INTO \"{table}_meta\" (name, value) VALUES ('version', 0)"),
    ] {
        sqlx::query(&statement)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
    }
    tx.commit().await.map_err(map)
}

/// Checks that the table has the columns this store reads and writes.
async fn check_columns(conn: &mut SqliteConnection, table: &str) -> Result<()> {
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
        .bind(table)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| map_sqlx_error(Operation::Connect, e))?;
    if columns.is_empty() {
        return Err(config_error(format!(
            "table {table} does not exist (create_table is off)"
        )));
    }
    for wanted in ["key", "value", "expires_at", "version"] {
        if !columns.iter().any(|c| c == wanted) {
            return Err(config_error(format!(
                "table {table} has no column {wanted}: not a kv table"
            )));
        }
    }
    Ok(())
}

/// Checks the table's columns and that the version counter exists.
pub(crate) async fn check_tables(pool: &SqlitePool, table: &str) -> Result<()> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| map_sqlx_error(Operation::Connect, e))?;
    check_columns(&mut conn, table).await?;
    let counter: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT value FROM \"{table}_meta\" WHERE name = 'version'"
    ))
    .fetch_optional(&mut *conn)
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

/// Deletes expired rows in chunks until none is left; answers how many.
pub(crate) async fn purge(
    pool: &SqlitePool,
    sql: &Statements,
    chunk: i64,
    now: i64,
) -> Result<u64> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(&sql.purge)
            .bind(now)
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
    fn upsert_sizes_cover_the_rows_in_few_statements() {
        for n in [0, 1, 2, 3, 255, 256, 257, 300, 1000, 100_000] {
            let sizes: Vec<usize> = upsert_sizes(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}");
            assert!(sizes.iter().all(|s| (1..=MAX_ROWS).contains(s)));
            assert_eq!(sizes.len(), n.div_ceil(MAX_ROWS));
        }
        assert_eq!(upsert_sizes(300).collect::<Vec<_>>(), [256, 44]);
        let sql = Statements::new("t");
        assert!(sql.upsert(5).contains("(?14, ?15, ?16, ?1)"));
        assert!(!sql.upsert(5).contains("?17"));
        assert!(
            sql.upsert(MAX_ROWS)
                .contains(&format!("?{}", 3 * MAX_ROWS + 1))
        );
        assert_eq!(sql.upsert(0), "");
        assert_eq!(sql.upsert(MAX_ROWS + 1), "");
    }
}

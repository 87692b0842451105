//! The SQL the store runs, built once per store from the validated table
//! name, and the table's creation.

use kv_core::{Operation, Result};
use sqlx::PgPool;

use crate::config::QualifiedTable;
use crate::error::{config_error, map_sqlx_error};

/// Rows whose TTL has not passed (or that have none).
const LIVE: &str = "(expires_at IS NULL OR expires_at > now())";

/// The version every write gives the rows it writes: the writing
/// transaction's id, 64 bits with its epoch (it never wraps), so it changes
/// with every write, never repeats and survives restarts.
const VERSION: &str = "txid_current()";

/// A counter's value as `int8`, or NULL when the stored bytes are not the
/// canonical decimal text of an `i64` (the nested CASE keeps the casts
/// from running on anything else).
const COUNTER: &str = "(CASE WHEN convert_from(cur.value, 'UTF8') ~ '^(0|-?[1-9][0-9]{0,18})$' \
     THEN CASE WHEN convert_from(cur.value, 'UTF8')::numeric \
     BETWEEN -9223372036854775808 AND 9223372036854775807 \
     THEN convert_from(cur.value, 'UTF8')::int8 END END)";

/// `expires_at` from a TTL in milliseconds (NULL stays NULL: no TTL).
fn expiry(ttl_millis: &str) -> String {
    format!("now() + {ttl_millis} * interval '1 millisecond'")
}

/// Every statement, with the table spliced in once.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) get: String,
    pub(crate) exists: String,
    pub(crate) set: String,
    pub(crate) delete: String,
    pub(crate) batch_get: String,
    /// As `batch_get`, with the milliseconds left (NULL: no TTL), rounded up.
    pub(crate) batch_get_with_ttl: String,
    pub(crate) batch_set: String,
    /// Binary `COPY` of whole rows into the table (see `copy.rs`).
    pub(crate) copy: String,
    pub(crate) batch_delete: String,
    /// Deletes without a count: the deletes of a `write_batch`.
    pub(crate) delete_all: String,
    pub(crate) write_batch: String,
    pub(crate) list: String,
    pub(crate) cas_insert: String,
    pub(crate) cas_update: String,
    pub(crate) cas_delete: String,
    pub(crate) cas_absent: String,
    pub(crate) purge: String,
    /// Live rows of `$1` with their versions.
    pub(crate) batch_get_versioned: String,
    /// The live row of `$1` with its version.
    pub(crate) get_versioned: String,
    /// Rewrites `$1` if it is live at version `$4`.
    pub(crate) update_at_version: String,
    /// Deletes `$1` if it is live at version `$2`.
    pub(crate) delete_at_version: String,
    /// Rewrites `$1` if it is live.
    pub(crate) update_present: String,
    /// Deletes `$1` if it is live.
    pub(crate) delete_present: String,
    /// Gives every checked key of a transaction a row to lock: an expired,
    /// empty placeholder where none exists (invisible, purged like any
    /// expired row).
    pub(crate) txn_placeholders: String,
    /// Locks the checked rows in key order; answers version and liveness.
    pub(crate) txn_lock: String,
    /// Adds `$2` to the counter `$1` (created with TTL `$3` when absent or
    /// expired, keeping its expiry otherwise); returns the new value.
    pub(crate) increment: String,
}

impl Statements {
    pub(crate) fn new(table: &QualifiedTable) -> Self {
        let t = table.sql();
        let upsert = format!(
            "INSERT INTO {t} (key, value, expires_at, version) \
             SELECT u.k, u.v, {}, {VERSION} FROM UNNEST($1::text[], $2::bytea[], $3::int8[]) AS u(k, v, ttl) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, \
             version = EXCLUDED.version",
            expiry("u.ttl")
        );
        Self {
            get: format!("SELECT value FROM {t} WHERE key = $1 AND {LIVE}"),
            exists: format!("SELECT EXISTS (SELECT 1 FROM {t} WHERE key = $1 AND {LIVE})"),
            set: format!(
                "INSERT INTO {t} (key, value, expires_at, version) VALUES ($1, $2, {}, {VERSION}) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, \
                 version = EXCLUDED.version",
                expiry("$3::int8")
            ),
            delete: format!(
                "WITH d AS (DELETE FROM {t} WHERE key = $1 RETURNING expires_at) \
                 SELECT count(*) FROM d WHERE {LIVE}"
            ),
            batch_get: format!("SELECT key, value FROM {t} WHERE key = ANY($1) AND {LIVE}"),
            batch_get_with_ttl: format!(
                "SELECT key, value, ceil(extract(epoch FROM expires_at - now()) * 1000)::int8 \
                 FROM {t} WHERE key = ANY($1) AND {LIVE}"
            ),
            batch_delete: format!(
                "WITH d AS (DELETE FROM {t} WHERE key = ANY($1) RETURNING expires_at) \
                 SELECT count(*) FROM d WHERE {LIVE}"
            ),
            delete_all: format!("DELETE FROM {t} WHERE key = ANY($1)"),
            // Puts and deletes touch different keys (the batch is deduplicated),
            // so one statement with a data-modifying CTE applies both atomically.
            write_batch: format!("WITH d AS (DELETE FROM {t} WHERE key = ANY($4)) {upsert}"),
            copy: format!("COPY {t} (key, value, expires_at, version) FROM STDIN (FORMAT binary)"),
            batch_set: upsert,
            list: format!(
                "SELECT key FROM {t} WHERE key >= $1 AND key > $2 AND ($3::text IS NULL OR key < $3) \
                 AND {LIVE} ORDER BY key LIMIT $4"
            ),
            // Insert if absent, or replace a row that has expired.
            cas_insert: format!(
                "INSERT INTO {t} (key, value, expires_at, version) VALUES ($1, $2, {}, {VERSION}) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, \
                 version = EXCLUDED.version \
                 WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= now()",
                expiry("$3::int8")
            ),
            cas_update: format!(
                "UPDATE {t} SET value = $2, expires_at = {}, version = {VERSION} \
                 WHERE key = $1 AND value = $4 AND {LIVE}",
                expiry("$3::int8")
            ),
            cas_delete: format!("DELETE FROM {t} WHERE key = $1 AND value = $2 AND {LIVE}"),
            cas_absent: format!("SELECT NOT EXISTS (SELECT 1 FROM {t} WHERE key = $1 AND {LIVE})"),
            batch_get_versioned: format!(
                "SELECT key, value, version FROM {t} WHERE key = ANY($1) AND {LIVE}"
            ),
            get_versioned: format!("SELECT value, version FROM {t} WHERE key = $1 AND {LIVE}"),
            update_at_version: format!(
                "UPDATE {t} SET value = $2, expires_at = {}, version = {VERSION} \
                 WHERE key = $1 AND version = $4 AND {LIVE}",
                expiry("$3::int8")
            ),
            delete_at_version: format!(
                "DELETE FROM {t} WHERE key = $1 AND version = $2 AND {LIVE}"
            ),
            update_present: format!(
                "UPDATE {t} SET value = $2, expires_at = {}, version = {VERSION} \
                 WHERE key = $1 AND {LIVE}",
                expiry("$3::int8")
            ),
            delete_present: format!("DELETE FROM {t} WHERE key = $1 AND {LIVE}"),
            txn_placeholders: format!(
                "INSERT INTO {t} (key, value, expires_at, version) \
                 SELECT k, '\\x'::bytea, '-infinity'::timestamptz, 0 FROM UNNEST($1::text[]) AS k \
                 ON CONFLICT (key) DO NOTHING"
            ),
            txn_lock: format!(
                "SELECT key, version, {LIVE} FROM {t} WHERE key = ANY($1) ORDER BY key FOR UPDATE"
            ),
            increment: format!(
                "INSERT INTO {t} AS cur (key, value, expires_at, version) \
                 VALUES ($1, convert_to($2::int8::text, 'UTF8'), {}, {VERSION}) \
                 ON CONFLICT (key) DO UPDATE SET \
                 value = CASE WHEN {live} THEN convert_to(({COUNTER} + $2::int8)::text, 'UTF8') \
                 ELSE EXCLUDED.value END, \
                 expires_at = CASE WHEN {live} THEN cur.expires_at ELSE EXCLUDED.expires_at END, \
                 version = EXCLUDED.version \
                 RETURNING value",
                expiry("$3::int8"),
                live = "(cur.expires_at IS NULL OR cur.expires_at > now())",
            ),
            purge: format!(
                "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE expires_at <= now() \
                 ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
            ),
        }
    }
}

/// Creates the table and its expiry index if missing. An advisory lock
/// serializes concurrent first connects (plain `CREATE TABLE IF NOT EXISTS`
/// can fail when two sessions race on it).
pub(crate) async fn create_table(pool: &PgPool, table: &QualifiedTable) -> Result<()> {
    let op = Operation::Connect;
    let map = |e| map_sqlx_error(op, e);
    let t = table.sql();
    let index = format!("\"{}_expires_at\"", table.table);
    let mut tx = pool.begin().await.map_err(map)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("kv-backend-postgres:{table}"))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {t} (\
         key text COLLATE \"C\" PRIMARY KEY, value bytea NOT NULL, expires_at timestamptz, \
         version int8 NOT NULL DEFAULT 0)"
    ))
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    sqlx::query(&format!(
        "CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at) WHERE expires_at IS NOT NULL"
    ))
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    tx.commit().await.map_err(map)
}

/// Checks that the table exists with the columns the store needs, the key
/// in the byte-order "C" collation. A kv table made before versions
/// existed gets its `version` column when `upgrade` (the store may create
/// tables), its rows at version 0 until written; otherwise it is a
/// `Config` error saying how to add it. A table of another shape is never
/// altered.
pub(crate) async fn check_table(
    pool: &PgPool,
    table: &QualifiedTable,
    upgrade: bool,
) -> Result<()> {
    let columns: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, collation_name::text FROM information_schema.columns \
         WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2",
    )
    .bind(table.schema.as_deref())
    .bind(&table.table)
    .fetch_all(pool)
    .await
    .map_err(|e| map_sqlx_error(Operation::Connect, e))?;
    let has = |name: &str, ty: &str, collation: Option<&str>| {
        columns.iter().any(|(n, t, c)| {
            n == name && t == ty && (collation.is_none() || c.as_deref() == collation)
        })
    };
    if columns.is_empty() {
        return Err(config_error(format!(
            "table {table} does not exist (and create_table is off, or the schema is missing)"
        )));
    }
    if !(has("key", "text", Some("C"))
        && has("value", "bytea", None)
        && has("expires_at", "timestamp with time zone", None))
    {
        return Err(config_error(format!(
            "table {table} exists but is not a kv table: it needs key text COLLATE \"C\" PRIMARY KEY, \
             value bytea NOT NULL, expires_at timestamptz, version int8 NOT NULL DEFAULT 0"
        )));
    }
    if !has("version", "bigint", None) && upgrade {
        // Instant on PostgreSQL 11+: a constant default rewrites nothing.
        sqlx::query(&format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS version int8 NOT NULL DEFAULT 0",
            table.sql()
        ))
        .execute(pool)
        .await
        .map_err(|e| map_sqlx_error(Operation::Connect, e))?;
    } else if !has("version", "bigint", None) {
        return Err(config_error(format!(
            "table {table} has no version column (it was made before kv had versions); \
             run `ALTER TABLE {table} ADD COLUMN version int8 NOT NULL DEFAULT 0` or connect \
             once with create_table on"
        )));
    }
    Ok(())
}

/// Deletes expired rows in chunks until a chunk comes back short.
pub(crate) async fn purge(pool: &PgPool, sql: &Statements, chunk: i64) -> Result<u64> {
    let mut deleted = 0;
    loop {
        let done = sqlx::query(&sql.purge)
            .bind(chunk)
            .execute(pool)
            .await
            .map_err(|e| map_sqlx_error(Operation::Maintenance, e))?
            .rows_affected();
        deleted += done;
        if done < chunk.unsigned_abs() {
            return Ok(deleted);
        }
    }
}

//! Large `batch_set`s by binary `COPY`, straight into the table.
//!
//! `COPY` is PostgreSQL's fastest way in (it inserts rows in batches; an
//! `INSERT ... SELECT ... ON CONFLICT` inserts them one at a time), but it
//! cannot update: a key that exists, live or expired, makes it fail. So a
//! batch of at least [`COPY_MIN_ENTRIES`] entries is first tried as one
//! transaction of `SELECT txid_current(), now()` and one binary `COPY` of
//! its rows, each row's version and expiry exactly what the upsert would
//! give them (`txid_current()`, `now() + ttl`, by the server's clock); when
//! a key exists the `COPY` fails whole, the transaction is rolled back
//! (nothing of it applied) and the batch runs as the usual upsert. After
//! such a conflict the next [`SKIP_AFTER_CONFLICT`] large batches go to the
//! upsert directly, so a load that mostly overwrites pays for a failed
//! `COPY` at most once in that many batches.

use std::sync::atomic::{AtomicU32, Ordering};

use kv_core::Entry;
use sqlx::postgres::PgDatabaseError;

use crate::rows::ttl_millis;
use crate::store::PostgresStore;

/// The fewest entries a `batch_set` must have to be tried as a `COPY`: it
/// costs five round trips (BEGIN, the version and clock, COPY, its data,
/// COMMIT) where the upsert costs one.
pub(crate) const COPY_MIN_ENTRIES: usize = 500;

/// How many large batches go straight to the upsert after a `COPY` met a
/// key that existed.
pub(crate) const SKIP_AFTER_CONFLICT: u32 = 16;

/// How much of the `COPY` stream is built before it is sent.
const SEND_BYTES: usize = 1 << 20;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_OFFSET_SECS: i64 = 946_684_800;

/// When a store tries the `COPY`.
#[derive(Debug)]
pub(crate) struct CopyGate {
    enabled: bool,
    skip: AtomicU32,
}

impl CopyGate {
    /// A gate; closed for good unless `enabled` (`copy_batches`).
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            skip: AtomicU32::new(0),
        }
    }

    /// Whether a batch of `len` entries should be tried as a `COPY` now.
    pub(crate) fn open(&self, len: usize) -> bool {
        if !self.enabled || len < COPY_MIN_ENTRIES {
            return false;
        }
        // Counts down the batches to skip; never below zero.
        self.skip
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
    }

    fn conflicted(&self) {
        self.skip.store(SKIP_AFTER_CONFLICT, Ordering::Relaxed);
    }
}

/// A `COPY` that failed because a key exists (`23505`), or on a lock
/// cycle with another writer (`40P01`): nothing of it applied, and the
/// upsert will do.
fn is_conflict(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
        .is_some_and(|e| matches!(e.code(), "23505" | "40P01"))
}

/// One row in PostgreSQL's binary `COPY` format: four fields.
fn push_row(out: &mut Vec<u8>, entry: &Entry, version: i64, now_micros: i64) {
    let key = entry.key.as_str().as_bytes();
    out.extend_from_slice(&4i16.to_be_bytes());
    // Keys are at most 1 KiB and values at most 256 MiB (validated): both
    // fit an i32 length.
    out.extend_from_slice(&i32::try_from(key.len()).unwrap_or(i32::MAX).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(
        &i32::try_from(entry.value.len())
            .unwrap_or(i32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&entry.value);
    match ttl_millis(entry.ttl) {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(ms) => {
            out.extend_from_slice(&8i32.to_be_bytes());
            let at = now_micros.saturating_add(ms.saturating_mul(1000));
            out.extend_from_slice(&at.to_be_bytes());
        }
    }
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
}

impl PostgresStore {
    /// Tries `entries` (validated: distinct keys in key order) as one
    /// `COPY` when the gate is open; `true` when it applied them, `false`
    /// when they are still to be written (too few, skipped, or a key
    /// existed and nothing was applied).
    pub(crate) async fn try_copy(&self, entries: &[&Entry]) -> Result<bool, sqlx::Error> {
        if !self.copy_gate.open(entries.len()) {
            return Ok(false);
        }
        match self.copy(entries).await {
            Err(e) if is_conflict(&e) => {
                self.copy_gate.conflicted();
                Ok(false)
            }
            other => other.map(|()| true),
        }
    }

    async fn copy(&self, entries: &[&Entry]) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // The upsert's version and clock: this transaction's id and start.
        let (version, now_micros): (i64, i64) = sqlx::query_as(&format!(
            "SELECT txid_current(), \
             ((extract(epoch FROM now()) - {PG_EPOCH_OFFSET_SECS}) * 1000000)::int8"
        ))
        .fetch_one(&mut *tx)
        .await?;
        let mut copy = tx.copy_in_raw(&self.sql.copy).await?;
        let mut buf = Vec::with_capacity(SEND_BYTES + 64 * 1024);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension
        for entry in entries {
            push_row(&mut buf, entry, version, now_micros);
            if buf.len() >= SEND_BYTES {
                copy.send(std::mem::take(&mut buf)).await?;
            }
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        copy.send(buf).await?;
        copy.finish().await?;
        // A failure above drops the transaction: sqlx rolls it back.
        tx.commit().await
    }
}

//! Batches as statement columns, and rows back in input order.

use std::time::Duration;

use kv_core::Entry;

/// The most value bytes one upsert statement carries; a larger batch is
/// split into several statements inside one transaction.
pub(crate) const STATEMENT_BYTES: usize = 64 * 1024 * 1024;

/// A validated TTL in milliseconds (at most ten years, so it fits).
pub(crate) fn ttl_millis(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

/// The columns of an upsert, as arrays.
pub(crate) struct Columns<'a> {
    pub(crate) keys: Vec<&'a str>,
    pub(crate) values: Vec<&'a [u8]>,
    pub(crate) ttls: Vec<Option<i64>>,
}

impl<'a> Columns<'a> {
    pub(crate) fn of(entries: &[&'a Entry]) -> Self {
        Self {
            keys: entries.iter().map(|e| e.key.as_str()).collect(),
            values: entries.iter().map(|e| &e.value[..]).collect(),
            ttls: entries.iter().map(|e| ttl_millis(e.ttl)).collect(),
        }
    }
}

/// Splits entries into runs of at most [`STATEMENT_BYTES`] of values.
pub(crate) fn chunks<'a>(entries: &[&'a Entry]) -> Vec<Vec<&'a Entry>> {
    let mut out: Vec<Vec<&Entry>> = vec![Vec::new()];
    let mut bytes = 0;
    for entry in entries {
        if bytes + entry.value.len() > STATEMENT_BYTES && out.last().is_some_and(|c| !c.is_empty())
        {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += entry.value.len();
        if let Some(chunk) = out.last_mut() {
            chunk.push(entry);
        }
    }
    out
}

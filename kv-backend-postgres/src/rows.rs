//! Batches as statement columns, and rows back in input order.

use std::collections::HashMap;
use std::time::Duration;

use kv_core::{Entry, Key};

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

/// The answer to `batch_get(keys)` from the rows found, one per distinct
/// key in any order: each row, converted by `into`, moves into the answer
/// at its key's first place; a repeated key gets a clone of it (for
/// `Bytes`, a reference count, no copy).
pub(crate) fn in_input_order<R, T: Clone>(
    keys: &[Key],
    rows: Vec<(String, R)>,
    mut into: impl FnMut(R) -> T,
) -> Vec<Option<T>> {
    let (names, values): (Vec<String>, Vec<R>) = rows.into_iter().unzip();
    let row_of: HashMap<&str, usize> = names.iter().map(String::as_str).zip(0..).collect();
    let mut unanswered: Vec<Option<R>> = values.into_iter().map(Some).collect();
    // Where each row's value went in `out`, once it has.
    let mut answered_at = vec![0; unanswered.len()];
    let mut out: Vec<Option<T>> = Vec::with_capacity(keys.len());
    for key in keys {
        let value = row_of.get(key.as_str()).and_then(|&row| {
            match unanswered.get_mut(row).and_then(Option::take) {
                Some(value) => {
                    answered_at[row] = out.len();
                    Some(into(value))
                }
                None => out.get(answered_at[row]).cloned().flatten(),
            }
        });
        out.push(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn in_input_order_answers_missing_and_repeated_keys() {
        let keys: Vec<Key> = ["a", "d", "b", "a", "c", "b", "d"]
            .into_iter()
            .map(|k| Key::new(k).unwrap())
            .collect();
        let rows = vec![
            ("c".to_owned(), b"3".to_vec()),
            ("a".to_owned(), b"1".to_vec()),
            ("b".to_owned(), b"2".to_vec()),
        ];
        let answer = in_input_order(&keys, rows, Bytes::from);
        let got: Vec<Option<&[u8]>> = answer.iter().map(|v| v.as_deref()).collect();
        let want: Vec<Option<&[u8]>> = vec![
            Some(b"1"),
            None,
            Some(b"2"),
            Some(b"1"),
            Some(b"3"),
            Some(b"2"),
            None,
        ];
        assert_eq!(got, want);
    }
}

//! Keys, sizes and answers of etcd requests: the key layout under the
//! prefix, the request-size estimate checked before I/O, and reading Txn
//! answers without copying their values.

use std::time::Duration;

use bytes::Bytes;
use etcd_client::TxnResponse;
use etcd_client::proto::{PbKeyValue, PbTxnOpResponse};
use kv_core::backend::ListRange;
use kv_core::backend::stamp::{self, Malformed};
use kv_core::{Entry, Error, ErrorKind, Key, Operation, Result, prefix_successor};

use crate::error::{BACKEND, malformed};

/// The size a Txn adds to its operations, over-estimated: etcd wraps every
/// request in a raft request with a header (ID, user name, auth revision)
/// before comparing it with `--max-request-bytes`.
pub(crate) const TXN_OVERHEAD: usize = 512;

/// The size one operation adds to its key and value, over-estimated
/// (protobuf tags, lengths, a lease ID).
pub(crate) const OP_OVERHEAD: usize = 24;

/// The etcd key of `key`: the store's prefix, then the key.
pub(crate) fn full_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(prefix.len() + key.len());
    full.extend_from_slice(prefix);
    full.extend_from_slice(key);
    full
}

/// The estimated request size of putting `entry`.
pub(crate) fn put_bytes(prefix: &[u8], entry: &Entry) -> usize {
    OP_OVERHEAD
        + prefix.len()
        + entry.key.as_str().len()
        + stamp::UNVERSIONED_HEADER_MAX
        + entry.value.len()
}

/// The live value in `stored`, taken over without a copy; `None` when it has
/// expired at `now`.
pub(crate) fn live_value(
    op: Operation,
    key: &str,
    stored: Vec<u8>,
    now: u64,
) -> Result<Option<Bytes>> {
    Ok(live_value_with_ttl(op, key, stored, now)?.map(|(value, _)| value))
}

/// As [`live_value`], with the value's remaining TTL (`None`: no TTL).
pub(crate) fn live_value_with_ttl(
    op: Operation,
    key: &str,
    stored: Vec<u8>,
    now: u64,
) -> Result<Option<(Bytes, Option<Duration>)>> {
    let Some((start, ttl)) = stamp::decode_with_ttl(&stored, now)
        .map_err(|Malformed| malformed(op, key))?
        .map(|(v, ttl)| (stored.len() - v.len(), ttl))
    else {
        return Ok(None);
    };
    Ok(Some((Bytes::from(stored).split_off(start), ttl)))
}

/// The live value in `stored`, or `None` when it has expired at `now`; a
/// value kv did not write is an error naming the key.
pub(crate) fn live_slice<'a>(
    op: Operation,
    key: &str,
    stored: &'a [u8],
    now: u64,
) -> Result<Option<&'a [u8]>> {
    stamp::decode(stored, now).map_err(|Malformed| malformed(op, key))
}

/// How many of the removed `(key, value)` pairs were live. A value kv did
/// not write counts as live: a key existed and is gone.
pub(crate) fn count_live<'a>(removed: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> u64 {
    let now = stamp::now_millis();
    removed
        .filter(|(_, stored)| !stamp::expired(stored, now))
        .count() as u64
}

/// The count of live keys a Txn of DeleteRange with `prev_kv` removed.
pub(crate) fn count_live_deleted(op: Operation, resp: TxnResponse) -> Result<u64> {
    let mut removed = Vec::new();
    for answer in resp.0.responses {
        match answer.response {
            Some(PbTxnOpResponse::ResponseDeleteRange(deleted)) => removed.extend(deleted.prev_kvs),
            _ => return Err(short_answer(op)),
        }
    }
    Ok(count_live(
        removed.iter().map(|kv| (&kv.key[..], &kv.value[..])),
    ))
}

/// The key-values of each Range answer of a Txn, in order, moved out of
/// the response (`None` for an answer that is not a Range).
pub(crate) fn range_kvs(resp: TxnResponse) -> impl Iterator<Item = Option<Vec<PbKeyValue>>> {
    resp.0
        .responses
        .into_iter()
        .map(|answer| match answer.response {
            Some(PbTxnOpResponse::ResponseRange(range)) => Some(range.kvs),
            _ => None,
        })
}

/// The answer to `keys` from the values of their sorted distinct keys:
/// aligned with the input, a duplicate answered at each position.
pub(crate) fn align<T: Clone>(
    keys: &[Key],
    distinct: &[&Key],
    values: Vec<Option<T>>,
) -> Vec<Option<T>> {
    if keys.len() == distinct.len() && keys.iter().zip(distinct).all(|(a, b)| a == *b) {
        return values;
    }
    keys.iter()
        .map(|key| {
            distinct
                .binary_search(&key)
                .ok()
                .and_then(|i| values.get(i).cloned().flatten())
        })
        .collect()
}

/// The Range of a listing: from its lower bound (inclusive) to its end
/// (exclusive), as etcd keys under the prefix. An end of `[0]` means "to
/// the last key" in etcd.
pub(crate) fn list_bounds(prefix: &[u8], range: &ListRange) -> (Vec<u8>, Vec<u8>) {
    let (lower, inclusive) = range.lower();
    let mut from = full_key(prefix, lower);
    if !inclusive {
        from.push(0);
    }
    if from.is_empty() {
        from.push(0);
    }
    let end = match &range.end {
        Some(end) => full_key(prefix, end),
        None => prefix_successor(prefix).unwrap_or_else(|| vec![0]),
    };
    (from, end)
}

/// The next possible etcd key after `key`.
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// The kv key of a listed etcd key, or `None` when its value has expired
/// or the key has no name in kv.
pub(crate) fn listed_key(prefix: &[u8], full: &[u8], stored: &[u8], now: u64) -> Option<Key> {
    // A value in another format is a present key, listed as on every
    // backend; a key that is not a valid kv key (not UTF-8, NUL, too long)
    // has no name in kv and is not listed.
    if stamp::expired(stored, now) {
        return None;
    }
    let name = full.strip_prefix(prefix).unwrap_or(full);
    std::str::from_utf8(name)
        .ok()
        .and_then(|name| Key::new(name).ok())
}

/// etcd answered fewer or other operations than the Txn had.
pub(crate) fn short_answer(op: Operation) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, op)
        .with_message("etcd's Txn answer does not match its operations")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::KvStore;
    use kv_core::backend::Validator;
    use kv_core::{ListOptions, MemoryStore};

    fn range(prefix: &str, after: Option<&str>) -> ListRange {
        let mut options = ListOptions::default();
        if let Some(after) = after {
            options = options.start_after(Key::new(after).unwrap());
        }
        Validator::new("t", MemoryStore::new().capabilities())
            .list(prefix, &options)
            .unwrap()
    }

    #[test]
    fn list_bounds_cover_exactly_the_prefix_under_the_store_prefix() {
        assert_eq!(list_bounds(b"", &range("", None)), (vec![0], vec![0]));
        assert_eq!(
            list_bounds(b"app/", &range("", None)),
            (b"app/".to_vec(), b"app0".to_vec())
        );
        assert_eq!(
            list_bounds(b"app/", &range("u", Some("u1"))),
            (b"app/u1\0".to_vec(), b"app/v".to_vec())
        );
        assert_eq!(
            list_bounds(b"", &range("a", None)),
            (b"a".to_vec(), b"b".to_vec())
        );
    }

    #[test]
    fn align_answers_duplicates_at_every_position() {
        let keys: Vec<Key> = ["b", "a", "b"]
            .iter()
            .map(|k| Key::new(*k).unwrap())
            .collect();
        let (a, b) = (Key::new("a").unwrap(), Key::new("b").unwrap());
        let got = align(&keys, &[&a, &b], vec![None, Some(Bytes::from_static(b"1"))]);
        assert_eq!(
            got,
            [
                Some(Bytes::from_static(b"1")),
                None,
                Some(Bytes::from_static(b"1"))
            ]
        );
    }

    #[test]
    fn live_value_strips_the_stamp_without_copying() {
        let mut stored = Vec::new();
        stamp::encode_into(&mut stored, b"hello", None, 0);
        let value = live_value(Operation::Get, "k", stored, 1).unwrap().unwrap();
        assert_eq!(value, "hello");
        let err = live_value(Operation::Get, "k", b"\x07junk".to_vec(), 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert_eq!(err.key(), Some("k"));
    }
}

//! kv's documents and the statements that write them.
//!
//! ```text
//! {_id: <key string>, v: <binary value>, e: <expiry date>, r: <ObjectId>}
//! ```
//!
//! `e` is absent without TTL. `r` is the document's version: a new
//! ObjectId made by the client for every write (unique by construction:
//! a timestamp, a per-process random value and a counter); a document
//! written before kv had versions has none until its next write.
//!
//! Every read filters on `e: {$not: {$lte: now}}`, which matches a document
//! without `e` or with `e` in the future: expiry is exact to the
//! millisecond, whatever the TTL monitor's lag. The filter is a field
//! condition, not a top-level `$or`, so `_id` stays the only indexed field
//! a query names and every server plans it as an `_id` lookup.

use std::time::Duration;

use bytes::Bytes;
use kv_core::{Entry, Key, Operation, Result, Version};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{
    Bson, DateTime, Document, RawArrayBuf, RawBinaryRef, RawBsonRef, RawDocument, RawDocumentBuf,
    doc,
};

use crate::error::malformed;

/// The field holding the value.
pub(crate) const VALUE: &str = "v";
/// The field holding the expiry.
pub(crate) const EXPIRES: &str = "e";
/// The field holding the version.
pub(crate) const VERSION: &str = "r";
/// The field a transaction increments to take a write lock on a document
/// it only checks (removed by the document's next write).
pub(crate) const LOCK: &str = "l";

/// The bytes a statement adds besides its key (twice: filter and
/// replacement) and value: field names, type tags, lengths, the date.
pub(crate) const STATEMENT_OVERHEAD: usize = 112;

/// `e` for a TTL from `now` (Unix milliseconds).
pub(crate) fn expiry(ttl: Duration, now: u64) -> DateTime {
    let at = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    DateTime::from_millis(i64::try_from(at).unwrap_or(i64::MAX))
}

/// The condition "live at `now`" on `e`.
pub(crate) fn live(now: u64) -> Document {
    doc! { "$not": { "$lte": DateTime::from_millis(i64::try_from(now).unwrap_or(i64::MAX)) } }
}

/// The condition "expired at `now`" on `e`.
pub(crate) fn expired(now: u64) -> Document {
    doc! { "$lte": DateTime::from_millis(i64::try_from(now).unwrap_or(i64::MAX)) }
}

/// `{_id: key, e: live}`.
pub(crate) fn live_key(key: &Key, now: u64) -> Document {
    doc! { "_id": key.as_str(), EXPIRES: live(now) }
}

/// `[key, ...]` as a BSON array of strings.
pub(crate) fn key_array<'a>(keys: impl IntoIterator<Item = &'a Key>) -> Bson {
    Bson::Array(keys.into_iter().map(|k| Bson::from(k.as_str())).collect())
}

/// The stored document: `{_id, v, e?}`.
pub(crate) fn stored(key: &str, value: &[u8], ttl: Option<Duration>, now: u64) -> RawDocumentBuf {
    let mut doc = RawDocumentBuf::new();
    doc.append_ref("_id", key);
    doc.append_ref(VALUE, binary(value));
    if let Some(ttl) = ttl {
        doc.append(EXPIRES, expiry(ttl, now));
    }
    doc.append(VERSION, ObjectId::new());
    doc
}

/// The version of a document read with its `r` (an empty token without
/// one).
pub(crate) fn version_of(doc: &RawDocument) -> Version {
    match doc.get(VERSION) {
        Ok(Some(RawBsonRef::ObjectId(id))) => Version::from_bytes(id.bytes().to_vec()),
        _ => Version::from_bytes(Bytes::new()),
    }
}

/// The condition on `r` of a document at `version`; `None` for a token
/// this backend never made (no document is at it).
pub(crate) fn at_version(version: &Version) -> Option<Bson> {
    match version.as_bytes().len() {
        0 => Some(Bson::Document(doc! {"$exists": false})),
        12 => <[u8; 12]>::try_from(version.as_bytes())
            .ok()
            .map(|b| Bson::ObjectId(ObjectId::from_bytes(b))),
        _ => None,
    }
}

/// `v` as generic binary.
pub(crate) fn binary(value: &[u8]) -> RawBinaryRef<'_> {
    RawBinaryRef {
        subtype: BinarySubtype::Generic,
        bytes: value,
    }
}

/// One statement of an `update` command replacing (or inserting) `entry`'s
/// document: `{q: {_id}, u: {_id, v, e?}, upsert: true}`. A replacement
/// without `e` clears an earlier TTL.
pub(crate) fn upsert(entry: &Entry, now: u64) -> RawDocumentBuf {
    let key = entry.key.as_str();
    let mut q = RawDocumentBuf::new();
    q.append_ref("_id", key);
    let mut statement = RawDocumentBuf::new();
    statement.append("q", q);
    statement.append("u", stored(key, &entry.value, entry.ttl, now));
    statement.append("upsert", true);
    statement
}

/// The size of [`upsert`]'s statement, without building it.
pub(crate) fn upsert_bytes(entry: &Entry) -> usize {
    STATEMENT_OVERHEAD + 2 * entry.key.as_str().len() + entry.value.len()
}

/// One statement of a `delete` command removing the documents `q` matches.
pub(crate) fn delete(q: Document) -> Result<RawDocumentBuf, mongodb::bson::raw::Error> {
    let mut statement = RawDocumentBuf::new();
    statement.append("q", RawDocumentBuf::from_document(&q)?);
    statement.append("limit", 0);
    Ok(statement)
}

/// A write command: `{<name>: collection, <list>: statements, ordered: true}`.
pub(crate) fn command(
    name: &str,
    collection: &str,
    list: &str,
    statements: Vec<RawDocumentBuf>,
) -> RawDocumentBuf {
    let mut array = RawArrayBuf::new();
    for statement in statements {
        array.push(statement);
    }
    let mut command = RawDocumentBuf::new();
    command.append_ref(name, collection);
    command.append(list, array);
    command.append("ordered", true);
    command
}

/// The value of a document a live filter returned.
pub(crate) fn value_of(op: Operation, key: &str, doc: &RawDocument) -> Result<Bytes> {
    match doc.get(VALUE) {
        Ok(Some(RawBsonRef::Binary(binary))) => Ok(Bytes::copy_from_slice(binary.bytes)),
        _ => Err(malformed(op, key)),
    }
}

/// The remaining TTL of a document a live filter returned at `now`: `None`
/// without `e`, else at least one millisecond.
pub(crate) fn ttl_of(
    op: Operation,
    key: &str,
    doc: &RawDocument,
    now: u64,
) -> Result<Option<Duration>> {
    match doc.get(EXPIRES) {
        Ok(None) => Ok(None),
        Ok(Some(RawBsonRef::DateTime(at))) => {
            let left = u64::try_from(at.timestamp_millis())
                .unwrap_or(0)
                .saturating_sub(now);
            Ok(Some(Duration::from_millis(left.max(1))))
        }
        _ => Err(malformed(op, key)),
    }
}

/// The `_id` of a document, as kv's key.
pub(crate) fn id_of(op: Operation, doc: &RawDocument) -> Result<Key> {
    match doc.get("_id") {
        Ok(Some(RawBsonRef::String(id))) => Key::new(id).map_err(|_| malformed(op, id)),
        _ => Err(malformed(op, "<not a string>")),
    }
}

/// Whether a document with this `e` (read back from the server) is live
/// at `now`: no `e`, or `e` after `now`.
pub(crate) fn is_live(doc: &RawDocument, now: u64) -> bool {
    match doc.get(EXPIRES) {
        Ok(Some(RawBsonRef::DateTime(at))) => {
            at.timestamp_millis() > i64::try_from(now).unwrap_or(i64::MAX)
        }
        _ => true,
    }
}

/// The `n` of a write command's reply.
pub(crate) fn count(reply: &Document) -> u64 {
    match reply.get("n") {
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Double(n)) if *n >= 0.0 => *n as u64,
        _ => 0,
    }
}

/// Cuts `items` into runs of at most `max_items` whose summed `size` stays
/// within `max_bytes` (an item larger than `max_bytes` alone is one run).
pub(crate) fn chunks<T>(
    items: Vec<T>,
    max_items: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for item in items {
        let item_bytes = size(&item);
        if !current.is_empty() && (current.len() >= max_items || bytes + item_bytes > max_bytes) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += item_bytes;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_statement_replaces_the_whole_document() {
        let entry = Entry::new(Key::new("k").unwrap(), "val").with_ttl(Duration::from_millis(5));
        let statement = upsert(&entry, 1000).to_document().unwrap();
        let u = statement.get_document("u").unwrap();
        assert_eq!(u.get_str("_id").unwrap(), "k");
        assert_eq!(u.get_datetime(EXPIRES).unwrap().timestamp_millis(), 1005);
        assert!(statement.get_bool("upsert").unwrap());
        assert!(upsert_bytes(&entry) >= upsert(&entry, 0).as_bytes().len());
        let plain = upsert(&Entry::new(Key::new("k").unwrap(), "v"), 0)
            .to_document()
            .unwrap();
        assert!(!plain.get_document("u").unwrap().contains_key(EXPIRES));
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let sizes = |v: Vec<Vec<usize>>| v.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(chunks((0..10).collect(), 4, 1000, |_| 1)), [4, 4, 2]);
        assert_eq!(sizes(chunks(vec![6, 6, 6], 10, 10, |n| *n)), [1, 1, 1]);
        assert_eq!(sizes(chunks(vec![20, 1], 10, 10, |n| *n)), [1, 1]);
        assert!(chunks(Vec::<u8>::new(), 1, 1, |_| 1).is_empty());
    }

    #[test]
    fn liveness_follows_e() {
        let now = 1000;
        let raw = |d: Document| RawDocumentBuf::from_document(&d).unwrap();
        assert!(is_live(&raw(doc! {}), now));
        assert!(is_live(
            &raw(doc! {EXPIRES: DateTime::from_millis(1001)}),
            now
        ));
        assert!(!is_live(
            &raw(doc! {EXPIRES: DateTime::from_millis(1000)}),
            now
        ));
    }
}

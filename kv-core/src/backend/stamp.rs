//! The stamped value format, for backends that store a value's expiry with
//! it and filter on read (RocksDB, etcd): a one-byte header, an optional
//! expiry, the value.
//!
//! ```text
//! 0x00 value...                                  no TTL
//! 0x01 expires_at:u64be value...                 expires at that Unix time in milliseconds
//! 0x02 version:u64be value...                    no TTL, with a version
//! 0x03 version:u64be expires_at:u64be value...   both
//! ```
//!
//! The versioned forms are for a backend that keeps a [`Version`](crate::Version)
//! with the value (RocksDB); one with versions of its own (etcd's
//! revisions) writes the first two. Every function reads all four.
//!
//! The expiry is wall-clock time, so it survives restarts. Reads compare it
//! with the clock and treat an expired value as absent; each backend
//! reclaims the storage its own way (RocksDB's compaction filter, etcd's
//! leases).
//!
//! ```
//! use std::time::Duration;
//! use kv_core::backend::stamp;
//!
//! let mut stored = Vec::new();
//! stamp::encode_into(&mut stored, b"v", Some(Duration::from_millis(5)), 1000);
//! assert_eq!(stamp::decode(&stored, 1004).unwrap(), Some(&b"v"[..]));
//! assert_eq!(stamp::decode(&stored, 1005).unwrap(), None); // expired
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PLAIN: u8 = 0;
const EXPIRING: u8 = 1;
const VERSIONED: u8 = 2;
const VERSIONED_EXPIRING: u8 = 3;

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The longest header: the tag, a version and an expiry.
pub const HEADER_MAX: usize = 17;

/// The longest header of the unversioned forms [`encode_into`] writes:
/// the tag and an expiry.
pub const UNVERSIONED_HEADER_MAX: usize = 9;

/// Writes the stored form of `value`, expiring `ttl` from `now`, into `out`
/// (cleared first, so one buffer serves a whole batch).
pub fn encode_into(out: &mut Vec<u8>, value: &[u8], ttl: Option<Duration>, now: u64) {
    out.clear();
    out.reserve(HEADER_MAX + value.len());
    match ttl {
        None => out.push(PLAIN),
        Some(ttl) => {
            let at = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
            out.push(EXPIRING);
            out.extend_from_slice(&at.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}

/// Writes the stored form of `value` with `version`, expiring `ttl` from
/// `now`, into `out` (cleared first).
///
/// ```
/// use std::time::Duration;
/// use kv_core::backend::stamp;
///
/// let mut stored = Vec::new();
/// stamp::encode_versioned_into(&mut stored, b"v", Some(Duration::from_millis(5)), 1000, 7);
/// assert_eq!(stamp::decode_versioned(&stored, 1004).unwrap(), Some((&b"v"[..], Some(Duration::from_millis(1)), 7)));
/// assert_eq!(stamp::decode(&stored, 1004).unwrap(), Some(&b"v"[..]));
/// assert_eq!(stamp::decode(&stored, 1005).unwrap(), None);
/// ```
pub fn encode_versioned_into(
    out: &mut Vec<u8>,
    value: &[u8],
    ttl: Option<Duration>,
    now: u64,
    version: u64,
) {
    out.clear();
    out.reserve(HEADER_MAX + value.len());
    match ttl {
        None => {
            out.push(VERSIONED);
            out.extend_from_slice(&version.to_be_bytes());
        }
        Some(ttl) => {
            let at = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
            out.push(VERSIONED_EXPIRING);
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&at.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}

/// The parts of a stored value: its version (`None` in the unversioned
/// forms), its expiry, the value.
type Parts<'a> = (Option<u64>, Option<u64>, &'a [u8]);

fn parse(stored: &[u8]) -> Result<Parts<'_>, Malformed> {
    fn word(bytes: &[u8]) -> Option<(u64, &[u8])> {
        let (head, rest) = bytes.split_at_checked(8)?;
        Some((u64::from_be_bytes(head.try_into().ok()?), rest))
    }
    let (&tag, rest) = stored.split_first().ok_or(Malformed)?;
    match tag {
        PLAIN => Ok((None, None, rest)),
        EXPIRING => {
            let (at, value) = word(rest).ok_or(Malformed)?;
            Ok((None, Some(at), value))
        }
        VERSIONED => {
            let (version, value) = word(rest).ok_or(Malformed)?;
            Ok((Some(version), None, value))
        }
        VERSIONED_EXPIRING => {
            let (version, rest) = word(rest).ok_or(Malformed)?;
            let (at, value) = word(rest).ok_or(Malformed)?;
            Ok((Some(version), Some(at), value))
        }
        _ => Err(Malformed),
    }
}

/// A live versioned value: the value, its remaining time to live, its
/// version (0 for a value stored without one).
pub type LiveVersioned<'a> = (&'a [u8], Option<Duration>, u64);

/// The live value in `stored` with its remaining TTL and version (0 when
/// stored in an unversioned form), or `None` when it has expired at `now`.
pub fn decode_versioned(stored: &[u8], now: u64) -> Result<Option<LiveVersioned<'_>>, Malformed> {
    let (version, at, value) = parse(stored)?;
    Ok(match at {
        Some(at) if at <= now => None,
        Some(at) => Some((
            value,
            Some(Duration::from_millis(at - now)),
            version.unwrap_or(0),
        )),
        None => Some((value, None, version.unwrap_or(0))),
    })
}

/// A stored value that is not in this format (written by another program,
/// or corrupted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The live value in `stored`, or `None` when it has expired at `now`.
pub fn decode(stored: &[u8], now: u64) -> Result<Option<&[u8]>, Malformed> {
    Ok(decode_versioned(stored, now)?.map(|(value, _, _)| value))
}

/// A live stored value and its remaining time to live (`None`: no TTL).
pub type Live<'a> = (&'a [u8], Option<Duration>);

/// The live value in `stored` with its remaining time to live (`None`
/// for a value without expiry), or `None` when it has expired at `now`.
/// A live value has at least one millisecond left.
///
/// ```
/// use std::time::Duration;
/// use kv_core::backend::stamp;
///
/// let mut stored = Vec::new();
/// stamp::encode_into(&mut stored, b"v", Some(Duration::from_millis(50)), 1000);
/// let (value, ttl) = stamp::decode_with_ttl(&stored, 1010).unwrap().unwrap();
/// assert_eq!((value, ttl), (&b"v"[..], Some(Duration::from_millis(40))));
/// ```
pub fn decode_with_ttl(stored: &[u8], now: u64) -> Result<Option<Live<'_>>, Malformed> {
    Ok(decode_versioned(stored, now)?.map(|(value, ttl, _)| (value, ttl)))
}

/// Whether a reaper may drop `stored` at `now`. Malformed
/// values are kept: they are not ours to delete.
pub fn expired(stored: &[u8], now: u64) -> bool {
    matches!(decode(stored, now), Ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_expiry() {
        let (mut plain, mut expiring) = (vec![9; 20], Vec::new());
        encode_into(&mut plain, b"abc", None, 1000);
        assert_eq!(decode(&plain, u64::MAX).unwrap(), Some(&b"abc"[..]));
        encode_into(&mut expiring, b"", Some(Duration::from_millis(5)), 1000);
        assert_eq!(expiring.len(), UNVERSIONED_HEADER_MAX);
        let mut both = Vec::new();
        encode_versioned_into(&mut both, b"", Some(Duration::from_millis(5)), 1000, 3);
        assert_eq!(both.len(), HEADER_MAX);
        assert_eq!(decode_versioned(&both, 1004).unwrap().map(|v| v.2), Some(3));
        assert!(expired(&both, 1005));
        assert_eq!(decode_versioned(&plain, 0).unwrap().map(|v| v.2), Some(0));
        assert_eq!(decode(&expiring, 1004).unwrap(), Some(&b""[..]));
        assert_eq!(decode(&expiring, 1005).unwrap(), None);
        assert!(expired(&expiring, 1005) && !expired(&plain, u64::MAX));
    }

    #[test]
    fn remaining_ttl_counts_down_to_expiry() {
        let (mut plain, mut expiring) = (Vec::new(), Vec::new());
        encode_into(&mut plain, b"p", None, 1000);
        encode_into(&mut expiring, b"e", Some(Duration::from_millis(5)), 1000);
        assert_eq!(decode_with_ttl(&plain, 7).unwrap(), Some((&b"p"[..], None)));
        let left = |now| decode_with_ttl(&expiring, now).unwrap().map(|(_, t)| t);
        assert_eq!(left(1000), Some(Some(Duration::from_millis(5))));
        assert_eq!(left(1004), Some(Some(Duration::from_millis(1))));
        assert_eq!(left(1005), None);
        assert!(decode_with_ttl(b"\x01short", 0).is_err());
    }

    #[test]
    fn malformed_values_are_errors_and_never_dropped() {
        for bad in [
            &b""[..],
            b"\x04x",
            b"\x01short",
            b"\x02short",
            b"\x03\0\0\0\0\0\0\0\0short",
        ] {
            assert!(decode(bad, 0).is_err() && decode_with_ttl(bad, 0).is_err());
            assert!(!expired(bad, u64::MAX));
        }
    }
}

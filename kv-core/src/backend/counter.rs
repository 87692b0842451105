//! How a counter is stored: the decimal text of an `i64` (`42`, `-7`),
//! what [`KvStore::increment`](crate::KvStore::increment) reads and writes
//! on every backend.
//!
//! It is what Redis's `INCRBY` keeps, and what the JSON codec reads as an
//! integer, so `kv.get::<i64>(key)` reads a counter. Other codecs do not
//! read it as a number (MessagePack sees the bytes `0x34 0x32` for `42`);
//! read a counter with the JSON codec or the [`Raw`](crate::Raw) bytes.
//!
//! ```
//! use kv_core::backend::counter;
//!
//! assert_eq!(counter::encode(-42), "-42");
//! assert_eq!(counter::parse(b"-42"), Some(-42));
//! assert_eq!(counter::parse(b"4.2"), None);
//! assert_eq!(counter::parse(br#""42""#), None);
//! ```

use bytes::Bytes;

/// The stored form of `value`.
pub fn encode(value: i64) -> Bytes {
    Bytes::from(value.to_string())
}

/// The counter stored as `bytes`, or `None` when they are not the decimal
/// text of an `i64`: an optional `-`, then ASCII digits, nothing else (no
/// `+`, spaces or leading zeros: the forms Redis's `INCRBY` also refuses).
pub fn parse(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits == b"0" || digits[0] != b'0')
        && bytes != b"-0";
    if !canonical {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_canonical_decimal_form() {
        for (text, want) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("-7", Some(-7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("", None),
            ("-", None),
            ("-0", None),
            ("07", None),
            ("+7", None),
            (" 7", None),
            ("7.0", None),
            ("\"7\"", None),
        ] {
            assert_eq!(parse(text.as_bytes()), want, "{text:?}");
        }
        for n in [0, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(parse(&encode(n)), Some(n));
        }
    }
}

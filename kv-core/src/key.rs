//! [`Key`]: a validated key, and the prefix helpers every backend uses for ranges.

use std::borrow::Borrow;
use std::fmt;

use crate::error::{Error, ErrorKind, Operation};

/// The largest key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A validated key: a non-empty UTF-8 string of at most [`MAX_KEY_BYTES`]
/// bytes with no NUL character.
///
/// Keys compare byte-wise (UTF-8 byte order, which for `str` is also code
/// point order), and every backend lists in that order. Keys are literal:
/// no character acts as a pattern anywhere.
///
/// ```
/// use kv_core::{ErrorKind, Key};
///
/// let key = Key::new("users/42")?;
/// assert_eq!(key.as_str(), "users/42");
/// assert_eq!(Key::new("").unwrap_err().kind(), ErrorKind::InvalidKey);
/// assert_eq!(Key::new("a\0b").unwrap_err().kind(), ErrorKind::InvalidKey);
/// assert!(Key::new("B")? < Key::new("a")?); // byte order, not locale order
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// Validates `key`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidKey`] when the key is empty, longer than
    /// [`MAX_KEY_BYTES`] or contains NUL.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        validate_key_str(&key)?;
        Ok(Self(key))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The key as an owned `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn validate_key_str(key: &str) -> Result<(), Error> {
    let problem = if key.is_empty() {
        "a key must not be empty"
    } else if key.len() > MAX_KEY_BYTES {
        "a key must be at most 1024 bytes"
    } else if key.contains('\0') {
        "a key must not contain NUL"
    } else {
        return Ok(());
    };
    Err(Error::new(ErrorKind::InvalidKey, "kv", Operation::Validate)
        .with_key(truncate_for_error(key))
        .with_message(problem))
}

/// Checks a list prefix: any string (the empty one lists everything) of at
/// most [`MAX_KEY_BYTES`] bytes with no NUL.
///
/// # Errors
///
/// [`ErrorKind::InvalidKey`] when the prefix is too long or contains NUL.
pub fn validate_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_key_str(prefix)
}

/// The key as it may appear in an error: at most 128 bytes, cut on a
/// character boundary.
fn truncate_for_error(key: &str) -> String {
    const SHOWN: usize = 128;
    if key.len() <= SHOWN {
        return key.to_owned();
    }
    let mut end = SHOWN;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &key[..end], key.len())
}

/// The smallest byte string greater than every byte string that starts with
/// `prefix`, or `None` when there is none (the prefix is empty or all `0xFF`).
///
/// Backends use it as the exclusive upper bound of a prefix range scan:
/// `prefix <= key < prefix_successor(prefix)`. It works on bytes, so it is
/// exact for any UTF-8 prefix, and the bound need not be valid UTF-8.
///
/// ```
/// use kv_core::prefix_successor;
///
/// assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
/// assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
/// assert_eq!(prefix_successor(b""), None);
/// ```
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest *string* greater than every string that starts with
/// `prefix`, or `None` when there is none (empty, or only `U+10FFFF`).
///
/// Like [`prefix_successor`], but always valid UTF-8, for backends whose key
/// column is text (PostgreSQL, MongoDB): it increments the last character
/// that is not `U+10FFFF` (skipping the surrogate range) and drops what
/// follows. In byte order (= code point order for UTF-8) every key with the
/// prefix is below it.
///
/// ```
/// use kv_core::prefix_successor_str;
///
/// assert_eq!(prefix_successor_str("ab").as_deref(), Some("ac"));
/// assert_eq!(prefix_successor_str("a\u{10ffff}").as_deref(), Some("b"));
/// assert_eq!(prefix_successor_str("\u{d7ff}").as_deref(), Some("\u{e000}"));
/// assert_eq!(prefix_successor_str(""), None);
/// ```
pub fn prefix_successor_str(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{d7ff}' => Some('\u{e000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Key {
    type Error = Error;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<&str> for Key {
    type Error = Error;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Key> for String {
    fn from(key: Key) -> Self {
        key.0
    }
}

impl PartialEq<str> for Key {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Key {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_of_1024_bytes_is_valid_and_1025_is_not() {
        assert!(Key::new("k".repeat(1024)).is_ok());
        let err = Key::new("k".repeat(1025)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        assert!(err.to_string().contains("1025 bytes"), "{err}");
    }

    #[test]
    fn keys_order_by_bytes() {
        let mut keys = vec!["é", "z", "Z", "a~", "a", "\u{7f}", "\u{10ffff}", "\u{ffff}"];
        keys.sort_by_key(|k| Key::new(*k).unwrap());
        let mut by_bytes = keys.clone();
        by_bytes.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(keys, by_bytes);
    }

    #[test]
    fn successor_bounds_every_extension() {
        for prefix in ["a", "a\u{ffff}", "\u{10ffff}", "ab\u{7f}", "é"] {
            let end = prefix_successor(prefix.as_bytes()).unwrap();
            for suffix in ["", "\0", "\u{10ffff}", "zz"] {
                let key = format!("{prefix}{suffix}");
                assert!(key.as_bytes() < end.as_slice(), "{key:?} !< {end:?}");
            }
            assert!(prefix.as_bytes() < end.as_slice());
        }
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
    }

    #[test]
    fn string_successor_bounds_every_extension_and_nothing_else() {
        for prefix in [
            "a",
            "a\u{ffff}",
            "\u{10ffff}a",
            "ab\u{7f}",
            "é",
            "\u{d7ff}",
            "x\u{10ffff}\u{10ffff}",
        ] {
            let end = prefix_successor_str(prefix).unwrap();
            for suffix in ["", "\0", "\u{10ffff}", "zz"] {
                let key = format!("{prefix}{suffix}");
                assert!(key.as_bytes() < end.as_bytes(), "{key:?} !< {end:?}");
            }
            // Nothing between the prefix range and the bound is skipped:
            // the bound itself does not start with the prefix.
            assert!(!end.starts_with(prefix));
        }
        assert_eq!(prefix_successor_str("\u{10ffff}\u{10ffff}"), None);
    }

    #[test]
    fn prefix_may_be_empty_but_not_nul() {
        assert!(validate_prefix("").is_ok());
        assert_eq!(
            validate_prefix("a\0").unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
    }
}

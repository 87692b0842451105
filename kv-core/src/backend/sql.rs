//! What the SQL backends (PostgreSQL, SQLite) share: the check of a table
//! name before it is spliced into SQL, and rows put back in the order of
//! the keys asked for.

use std::collections::HashMap;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::Key;

/// Checks an SQL identifier (a table or schema name): ASCII letters, digits
/// and `_`, not starting with a digit, 1 to `max` characters. Nothing else
/// is ever spliced into SQL, so a checked name needs only quoting.
///
/// ```
/// use kv_core::backend::sql::identifier;
///
/// assert_eq!(identifier("sqlite", "table", "kv_store", 48)?, "kv_store");
/// assert!(identifier("sqlite", "table", "kv; DROP TABLE users", 48).is_err());
/// # Ok::<(), kv_core::Error>(())
/// ```
///
/// # Errors
///
/// `Config`, naming `what` and the rule.
pub fn identifier<'a>(
    backend: &'static str,
    what: &str,
    name: &'a str,
    max: usize,
) -> Result<&'a str> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid_start && valid_rest && name.len() <= max {
        Ok(name)
    } else {
        Err(
            Error::new(ErrorKind::Config, backend, Operation::Connect).with_message(format!(
                "invalid {what} name {name:?}: use 1 to {max} ASCII letters, digits and `_`, \
                 not starting with a digit"
            )),
        )
    }
}

/// The answer to a batch read of `keys` from the rows found, one per
/// distinct key in any order: each row, converted by `into`, moves into the
/// answer at its key's first place; a repeated key gets a clone of it (for
/// `Bytes`, a reference count, no copy).
///
/// ```
/// use kv_core::Key;
/// use kv_core::backend::sql::in_input_order;
///
/// let keys: Vec<Key> = ["b", "x", "a", "b"].iter().map(|k| Key::new(*k).unwrap()).collect();
/// let rows = vec![("a".to_owned(), 1), ("b".to_owned(), 2)];
/// assert_eq!(in_input_order(&keys, rows, |v| v * 10), [Some(20), None, Some(10), Some(20)]);
/// ```
pub fn in_input_order<R, T: Clone>(
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

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [
            "",
            "kv; DROP TABLE users",
            "kv\"",
            "\"kv\"",
            "a-b",
            "a b",
            "1abc",
            "kv.store",
            "ключ",
            "x'--",
            &"a".repeat(49),
        ] {
            let err = identifier("test", "table", bad, 48).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
        }
        assert_eq!(
            identifier("test", "table", "kv_Store1", 48).unwrap(),
            "kv_Store1"
        );
    }
}

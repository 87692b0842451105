//! The export format: JSON Lines, one entry per line.
//!
//! ```text
//! {"key":"users/42","value":"{\"name\":\"Ada\"}","ttl_ms":null}
//! {"key":"blobs/1","value":"AAEC/w==","encoding":"base64","ttl_ms":59000}
//! ```
//!
//! - `key`: the key, a JSON string.
//! - `value`: the value as text when its bytes are UTF-8; otherwise the
//!   standard base64 of the bytes, marked by `"encoding":"base64"`.
//! - `ttl_ms`: the remaining time to live in milliseconds when exported,
//!   `null` (or absent) for none. An import starts it again from the moment
//!   the line is written.
//!
//! Unknown fields are refused, so a misspelt field is an error rather
//! than silently ignored.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kv::{Bytes, Entry, Key};
use serde::{Deserialize, Serialize};

/// The `encoding` marker of a base64 value.
const BASE64: &str = "base64";

#[derive(Serialize)]
struct Out<'a> {
    key: &'a str,
    value: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    ttl_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct In {
    key: String,
    value: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    ttl_ms: Option<u64>,
}

/// Writes `entry` as one line (with its newline).
pub(crate) fn write_line(out: &mut impl Write, entry: &Entry) -> std::io::Result<()> {
    let (value, encoding) = match std::str::from_utf8(&entry.value) {
        Ok(text) => (text.into(), None),
        Err(_) => (STANDARD.encode(&entry.value).into(), Some(BASE64)),
    };
    let line = Out {
        key: entry.key.as_str(),
        value,
        encoding,
        // Rounded up, so a TTL under a millisecond stays a TTL.
        ttl_ms: entry
            .ttl
            .map(|t| u64::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// Reads one line; `Ok(None)` for a blank one. The error says what is
/// wrong, without the line number (the caller knows it).
pub(crate) fn read_line(line: &str) -> Result<Option<Entry>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let parsed: In = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let key = Key::new(parsed.key).map_err(|e| e.to_string())?;
    let value = match parsed.encoding.as_deref() {
        None | Some("utf8") => Bytes::from(parsed.value),
        Some(BASE64) => Bytes::from(
            STANDARD
                .decode(parsed.value.as_bytes())
                .map_err(|e| format!("value is not valid base64: {e}"))?,
        ),
        Some(other) => {
            return Err(format!(
                "unknown encoding {other:?} (\"base64\", or none for UTF-8 text)"
            ));
        }
    };
    let mut entry = Entry::new(key, value);
    match parsed.ttl_ms {
        None => {}
        Some(0) => return Err("ttl_ms must be at least 1 (or null for none)".to_owned()),
        Some(ms) => entry = entry.with_ttl(Duration::from_millis(ms)),
    }
    Ok(Some(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(entry: &Entry) -> String {
        let mut out = Vec::new();
        write_line(&mut out, entry).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_and_binary_values_round_trip_with_their_ttl() {
        let text = Entry::new(Key::new("users/42").unwrap(), "{\"name\":\"Ada\"}");
        assert_eq!(
            line(&text),
            "{\"key\":\"users/42\",\"value\":\"{\\\"name\\\":\\\"Ada\\\"}\",\"ttl_ms\":null}\n"
        );
        let binary = Entry::new(Key::new("blobs/1").unwrap(), vec![0u8, 1, 2, 255])
            .with_ttl(Duration::from_millis(59_000));
        assert_eq!(
            line(&binary),
            "{\"key\":\"blobs/1\",\"value\":\"AAEC/w==\",\"encoding\":\"base64\",\"ttl_ms\":59000}\n"
        );
        for entry in [text, binary] {
            assert_eq!(read_line(&line(&entry)).unwrap(), Some(entry));
        }
    }

    #[test]
    fn a_sub_millisecond_ttl_stays_a_ttl() {
        let entry = Entry::new(Key::new("k").unwrap(), "v").with_ttl(Duration::from_micros(10));
        assert!(line(&entry).contains("\"ttl_ms\":1}"));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let cases = [
            ("{\"key\":\"k\"}", "missing field `value`"),
            ("{\"key\":\"\",\"value\":\"v\"}", "empty"),
            ("{\"key\":\"k\",\"value\":\"v\",\"ttl_ms\":0}", "at least 1"),
            (
                "{\"key\":\"k\",\"value\":\"%%\",\"encoding\":\"base64\"}",
                "base64",
            ),
            (
                "{\"key\":\"k\",\"value\":\"v\",\"encoding\":\"hex\"}",
                "unknown encoding",
            ),
            (
                "{\"key\":\"k\",\"value\":\"v\",\"tll_ms\":5}",
                "unknown field",
            ),
            (
                "{\"key\":\"k\",\"value\":\"v\",\"ttl_ms\":-5}",
                "invalid value",
            ),
            ("not json", "expected"),
        ];
        for (input, says) in cases {
            let error = read_line(input).unwrap_err();
            assert!(error.contains(says), "{input}: {error}");
        }
        assert_eq!(read_line("   "), Ok(None));
    }
}

//! Keys: validation, adversarial characters, literal matching.

use kv_core::{ErrorKind, Key, KvStore, ListOptions, MAX_KEY_BYTES};

use crate::support::{Space, assert_kind, b, get, live_keys, put};

/// The empty key is `InvalidKey`.
pub async fn empty_key_is_invalid(_store: &dyn KvStore) {
    assert_kind(Key::new(""), ErrorKind::InvalidKey);
}

/// A key with NUL is `InvalidKey`, wherever the NUL is.
pub async fn key_with_nul_is_invalid(_store: &dyn KvStore) {
    for k in ["\0", "a\0", "\0a", "a\0b"] {
        assert_kind(Key::new(k), ErrorKind::InvalidKey);
    }
}

/// A key of 1025 bytes is `InvalidKey`, counted in bytes not characters.
pub async fn key_of_1025_bytes_is_invalid(_store: &dyn KvStore) {
    assert_kind(
        Key::new("k".repeat(MAX_KEY_BYTES + 1)),
        ErrorKind::InvalidKey,
    );
    // 342 three-byte characters = 1026 bytes, though only 342 characters.
    assert_kind(Key::new("€".repeat(342)), ErrorKind::InvalidKey);
}

/// A key of exactly `max_key_bytes` (1024 outside a namespace) is stored,
/// read, listed and deleted.
pub async fn key_of_1024_bytes_round_trips(store: &dyn KvStore) {
    let max = store.capabilities().max_key_bytes;
    let s = Space::new("k1024");
    let pad = max - s.prefix().len();
    let k = s.key(&"x".repeat(pad));
    assert_eq!(k.as_str().len(), max);
    put(store, &k, "v").await;
    assert_eq!(get(store, &k).await, Some(b("v")));
    assert_eq!(live_keys(store, s.prefix(), 10).await, vec![k.clone()]);
    assert!(store.delete(&k).await.unwrap());
    s.cleanup(store).await;
}

/// A key of `max_key_bytes` made of multi-byte characters round trips.
pub async fn key_of_1024_multibyte_bytes_round_trips(store: &dyn KvStore) {
    let max = store.capabilities().max_key_bytes;
    let s = Space::new("k1024mb");
    let mut name = String::new();
    while s.prefix().len() + name.len() + 4 <= max {
        name.push('😀');
    }
    while s.prefix().len() + name.len() < max {
        name.push('x');
    }
    let k = s.key(&name);
    assert_eq!(k.as_str().len(), max);
    put(store, &k, "v").await;
    assert_eq!(get(store, &k).await, Some(b("v")));
    s.cleanup(store).await;
}

async fn round_trip_all(store: &dyn KvStore, case: &str, names: &[&str]) {
    let s = Space::new(case);
    for (i, name) in names.iter().enumerate() {
        put(store, &s.key(name), &format!("v{i}")).await;
    }
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            get(store, &s.key(name)).await,
            Some(b(&format!("v{i}"))),
            "key {name:?}"
        );
    }
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    expected.dedup();
    let mut listed = s.names(&live_keys(store, s.prefix(), 1000).await);
    if !store.capabilities().ordered_list {
        listed.sort();
    }
    assert_eq!(listed, expected);
    s.cleanup(store).await;
}

/// Unicode keys (CJK, emoji, RTL, combining marks, astral planes) are
/// distinct and round trip.
pub async fn unicode_keys_round_trip(store: &dyn KvStore) {
    round_trip_all(
        store,
        "unicode",
        &[
            "日本語",
            "😀🎉",
            "שלום",
            "e\u{301}",
            "é",
            "\u{10ffff}",
            "\u{ffff}",
            "Ω",
            "ß",
            "SS",
        ],
    )
    .await;
}

/// Keys with spaces, tabs and newlines round trip and stay distinct.
pub async fn keys_with_whitespace_round_trip(store: &dyn KvStore) {
    round_trip_all(
        store,
        "whitespace",
        &["a b", "a  b", " a", "a ", "a\tb", "a\nb", "a\r\nb", "\n"],
    )
    .await;
}

/// Keys made of punctuation and pattern metacharacters round trip literally.
pub async fn keys_with_punctuation_round_trip(store: &dyn KvStore) {
    round_trip_all(
        store,
        "punct",
        &[
            "/", ":", "#", ".", "*", "?", "[", "]", "%", "_", "\\", "'", "\"", ";", "a*b", "[ab]",
            "a%", "a_c", "{x}", "$1", "^", "|", "-", "~", "..", "../x",
        ],
    )
    .await;
}

/// SQL- and script-looking keys are stored as text, never executed.
pub async fn injection_looking_keys_are_plain_text(store: &dyn KvStore) {
    round_trip_all(
        store,
        "inject",
        &[
            "'; DROP TABLE kv; --",
            "\" OR 1=1 --",
            "$where: 1",
            "{\"$gt\": \"\"}",
            "redis.call('FLUSHALL')",
            "KEYS *",
            "\\x00\\x01",
        ],
    )
    .await;
}

/// Keys differing only in case, trailing space or normalization are distinct.
pub async fn nearly_equal_keys_are_distinct(store: &dyn KvStore) {
    let s = Space::new("distinct");
    let names = ["key", "Key", "KEY", "key ", "kéy", "ke\u{301}y"];
    for (i, name) in names.iter().enumerate() {
        put(store, &s.key(name), &i.to_string()).await;
    }
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            get(store, &s.key(name)).await,
            Some(b(&i.to_string())),
            "{name:?}"
        );
    }
    s.cleanup(store).await;
}

/// Glob characters in a key do not match other keys on delete or exists.
pub async fn glob_keys_match_only_themselves(store: &dyn KvStore) {
    let s = Space::new("glob");
    for name in ["a*", "ab", "a?", "ax", "[a]", "a"] {
        put(store, &s.key(name), name).await;
    }
    assert!(store.delete(&s.key("a*")).await.unwrap());
    assert!(store.delete(&s.key("a?")).await.unwrap());
    assert!(store.delete(&s.key("[a]")).await.unwrap());
    assert_eq!(
        s.names(&live_keys(store, s.prefix(), 10).await),
        ["a", "ab", "ax"]
    );
    assert!(!store.exists(&s.key("a.")).await.unwrap());
    s.cleanup(store).await;
}

/// Every backend accepts keys up to 1024 bytes; only a namespace lowers it.
pub async fn max_key_bytes_is_1024_or_less(store: &dyn KvStore) {
    let max = store.capabilities().max_key_bytes;
    assert!((64..=MAX_KEY_BYTES).contains(&max), "max_key_bytes {max}");
}

/// A list prefix with NUL or over 1024 bytes is `InvalidKey` (`Unsupported`
/// on a store that cannot list).
pub async fn invalid_list_prefix_is_rejected(store: &dyn KvStore) {
    if !store.capabilities().listing {
        assert_kind(
            store.list("a\0", ListOptions::default()).await,
            ErrorKind::Unsupported,
        );
        return;
    }
    assert_kind(
        store.list("a\0", ListOptions::default()).await,
        ErrorKind::InvalidKey,
    );
    assert_kind(
        store.list(&"p".repeat(1025), ListOptions::default()).await,
        ErrorKind::InvalidKey,
    );
}

//! Listing: byte order, paging, cursors, literal prefixes, boundaries.

use kv_core::{
    CopyOptions, Entry, ErrorKind, Key, KvStore, KvStoreExt, ListOptions, MAX_LIST_LIMIT,
    MemoryStore, Result,
};

use futures::TryStreamExt;

use crate::support::{Space, assert_kind, b, get, list_all, put, set_all};

async fn fill(store: &dyn KvStore, s: &Space, names: &[&str]) {
    let entries = names.iter().map(|n| Entry::new(s.key(n), b(n))).collect();
    set_all(store, entries).await;
}

/// The names listed under `space + prefix`, sorted.
async fn listed_under(store: &dyn KvStore, s: &Space, prefix: &str) -> Vec<String> {
    let mut names = s.names(&list_all(store, &s.raw(prefix), 100).await);
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    v.sort();
    v.dedup();
    v
}

/// A prefix with no keys lists an empty, final page.
pub async fn list_of_empty_prefix_is_empty_and_final(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-empty");
    let page = store
        .list(s.prefix(), ListOptions::default())
        .await
        .unwrap();
    assert!(page.keys.is_empty());
    assert_eq!(page.next, None);
}

/// Keys list in ascending byte order (not locale, not length order).
pub async fn list_is_in_byte_order(store: &dyn KvStore) {
    // `ordered_list` is off whenever `listing` is (crud::capabilities_are_consistent).
    if !store.capabilities().ordered_list {
        return;
    }
    let s = Space::new("list-order");
    let names = [
        "b", "a", "B", "A", "10", "9", "a~", "a ", "é", "z", "\u{7f}", "😀", "\u{ffff}", "ab",
        "aa", "a",
    ];
    fill(store, &s, &names).await;
    assert_eq!(
        s.names(&list_all(store, s.prefix(), 1000).await),
        sorted(&names)
    );
    s.cleanup(store).await;
}

/// Paging with every limit from 1 to n+1 returns each key exactly once.
pub async fn paging_with_every_limit_returns_each_key_once(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-pages");
    let names: Vec<String> = (0..23).map(|i| format!("k{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    fill(store, &s, &refs).await;
    for limit in 1..=24 {
        let mut listed = s.names(&list_all(store, s.prefix(), limit).await);
        if !store.capabilities().ordered_list {
            listed.sort();
        }
        assert_eq!(listed, names, "limit {limit}");
    }
    s.cleanup(store).await;
}

/// A page with fewer keys than its limit has no cursor; an exactly full last
/// page may have one, and the page after it is empty and final.
pub async fn short_page_has_no_cursor(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-short");
    fill(store, &s, &["a", "b", "c"]).await;
    let page = store
        .list(s.prefix(), ListOptions::default().limit(5))
        .await
        .unwrap();
    assert_eq!(page.keys.len(), 3);
    assert_eq!(page.next, None);
    let full = store
        .list(s.prefix(), ListOptions::default().limit(3))
        .await
        .unwrap();
    assert_eq!(full.keys.len(), 3);
    if let Some(next) = full.next {
        let after = store
            .list(
                s.prefix(),
                ListOptions::default().limit(3).start_after(next),
            )
            .await
            .unwrap();
        assert!(after.keys.is_empty());
        assert_eq!(after.next, None);
    }
    s.cleanup(store).await;
}

/// `start_after` is exclusive, and need not be an existing key.
pub async fn start_after_is_exclusive_and_need_not_exist(store: &dyn KvStore) {
    // `ordered_list` is off whenever `listing` is (crud::capabilities_are_consistent).
    if !store.capabilities().ordered_list {
        return;
    }
    let s = Space::new("list-after");
    fill(store, &s, &["a", "b", "c", "d"]).await;
    let after_b = store
        .list(s.prefix(), ListOptions::default().start_after(s.key("b")))
        .await
        .unwrap();
    assert_eq!(s.names(&after_b.keys), ["c", "d"]);
    let after_bb = store
        .list(s.prefix(), ListOptions::default().start_after(s.key("bb")))
        .await
        .unwrap();
    assert_eq!(s.names(&after_bb.keys), ["c", "d"]);
    let after_d = store
        .list(s.prefix(), ListOptions::default().start_after(s.key("d")))
        .await
        .unwrap();
    assert!(after_d.keys.is_empty());
    assert_eq!(after_d.next, None);
    s.cleanup(store).await;
}

/// A cursor before the prefix range starts at the prefix; one after it
/// lists nothing.
pub async fn start_after_outside_the_prefix_range(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-outside");
    fill(store, &s, &["m/1", "m/2"]).await;
    let prefix = s.raw("m/");
    let before = Key::new(s.raw("a")).unwrap();
    let page = store
        .list(&prefix, ListOptions::default().start_after(before))
        .await
        .unwrap();
    assert_eq!(s.names(&page.keys), ["m/1", "m/2"]);
    let beyond = Key::new(s.raw("z")).unwrap();
    let page = store
        .list(&prefix, ListOptions::default().start_after(beyond))
        .await
        .unwrap();
    assert!(page.keys.is_empty());
    s.cleanup(store).await;
}

/// Pattern metacharacters in a prefix are literal: `%`, `_`, `*`, `?`, `[`,
/// `\`, `.`, `^`, `$`, `(`, `+`, `{`, `|`.
pub async fn wildcard_prefixes_are_literal(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-wild");
    let metas = [
        "%", "_", "*", "?", "[", "\\", ".", "^", "$", "(", "+", "{", "|", "]", ")",
    ];
    let mut names = vec!["ab", "aXb", "a", "b", "ba"];
    let owned: Vec<String> = metas
        .iter()
        .flat_map(|m| [format!("a{m}"), format!("a{m}b")])
        .collect();
    names.extend(owned.iter().map(String::as_str));
    fill(store, &s, &names).await;
    for m in metas {
        let prefix = s.raw(&format!("a{m}"));
        let mut listed = s.names(&list_all(store, &prefix, 1000).await);
        listed.sort();
        let expected = sorted(&[&format!("a{m}"), &format!("a{m}b")]);
        assert_eq!(listed, expected, "prefix a{m} must be literal");
    }
    s.cleanup(store).await;
}

/// A key equal to the prefix is listed; `ab` does not list `a`, and `a`
/// lists `ab`.
pub async fn prefix_boundaries_are_exact(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-bound");
    fill(store, &s, &["a", "ab", "abc", "b", "aa"]).await;
    let mut ab = s.names(&list_all(store, &s.raw("ab"), 100).await);
    ab.sort();
    assert_eq!(ab, ["ab", "abc"]);
    let mut a = s.names(&list_all(store, &s.raw("a"), 100).await);
    a.sort();
    assert_eq!(a, ["a", "aa", "ab", "abc"]);
    s.cleanup(store).await;
}

/// A prefix ending in the highest characters (`\u{ffff}`, `\u{10ffff}`, `\u{7f}`)
/// bounds its range exactly.
pub async fn prefix_with_highest_characters_bounds_exactly(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-high");
    let names = [
        "a",
        "a\u{ffff}",
        "a\u{ffff}x",
        "a\u{10ffff}",
        "a\u{10ffff}\u{10ffff}",
        "b",
        "a\u{7f}",
        "a\u{80}",
    ];
    fill(store, &s, &names).await;
    for (prefix, expected) in [
        ("a\u{ffff}", &["a\u{ffff}", "a\u{ffff}x"][..]),
        ("a\u{10ffff}", &["a\u{10ffff}", "a\u{10ffff}\u{10ffff}"]),
        ("a\u{7f}", &["a\u{7f}"]),
        ("b", &["b"]),
    ] {
        assert_eq!(
            listed_under(store, &s, prefix).await,
            sorted(expected),
            "prefix {prefix:?}"
        );
    }
    s.cleanup(store).await;
}

/// Unicode prefixes select by bytes: `é` does not list `e\u{301}`.
pub async fn unicode_prefixes_select_by_bytes(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-uni");
    fill(
        store,
        &s,
        &[
            "日本",
            "日本語",
            "日",
            "本",
            "é1",
            "e\u{301}2",
            "😀a",
            "😀b",
            "😁",
        ],
    )
    .await;
    assert_eq!(
        listed_under(store, &s, "日本").await,
        sorted(&["日本", "日本語"])
    );
    assert_eq!(listed_under(store, &s, "é").await, ["é1"]);
    assert_eq!(listed_under(store, &s, "😀").await, sorted(&["😀a", "😀b"]));
    s.cleanup(store).await;
}

/// Keys written and deleted between pages: each key that lives throughout is
/// listed exactly once; deleted ones are not listed after deletion; new keys
/// after the cursor are seen.
pub async fn keys_changed_between_pages_are_listed_once(store: &dyn KvStore) {
    // `ordered_list` is off whenever `listing` is (crud::capabilities_are_consistent).
    if !store.capabilities().ordered_list {
        return;
    }
    let s = Space::new("list-churn");
    let names: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    fill(store, &s, &refs).await;
    let first = store
        .list(s.prefix(), ListOptions::default().limit(4))
        .await
        .unwrap();
    assert_eq!(s.names(&first.keys), ["k0", "k1", "k2", "k3"]);
    // Behind the cursor: k0 deleted, k00 added (not seen). Ahead: k5 deleted, k55 added (seen).
    store.delete(&s.key("k0")).await.unwrap();
    store.delete(&s.key("k5")).await.unwrap();
    put(store, &s.key("k00"), "x").await;
    put(store, &s.key("k55"), "x").await;
    let mut seen = first.keys.clone();
    let mut cursor = first.next;
    while let Some(after) = cursor {
        let page = store
            .list(
                s.prefix(),
                ListOptions::default().limit(4).start_after(after),
            )
            .await
            .unwrap();
        seen.extend(page.keys);
        cursor = page.next;
    }
    assert_eq!(
        s.names(&seen),
        ["k0", "k1", "k2", "k3", "k4", "k55", "k6", "k7", "k8", "k9"]
    );
    s.cleanup(store).await;
}

/// A deleted key is not listed.
pub async fn deleted_keys_are_not_listed(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-deleted");
    fill(store, &s, &["a", "b", "c"]).await;
    store.delete(&s.key("b")).await.unwrap();
    store.batch_delete(&s.keys(&["c"])).await.unwrap();
    assert_eq!(s.names(&list_all(store, s.prefix(), 10).await), ["a"]);
    s.cleanup(store).await;
}

/// A limit of zero is `InvalidArgument`.
pub async fn zero_limit_is_invalid(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-zero");
    assert_kind(
        store
            .list(s.prefix(), ListOptions::default().limit(0))
            .await,
        ErrorKind::InvalidArgument,
    );
}

/// A limit over [`MAX_LIST_LIMIT`] (up to `usize::MAX`, past where a
/// server's count would turn into a float) is `InvalidArgument` before any
/// I/O; the maximum itself is a valid page size.
pub async fn limit_over_the_maximum_is_invalid(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-max");
    for limit in [MAX_LIST_LIMIT + 1, 1 << 53, (1 << 53) + 1, usize::MAX] {
        assert_kind(
            store
                .list(s.prefix(), ListOptions::default().limit(limit))
                .await,
            ErrorKind::InvalidArgument,
        );
    }
    fill(store, &s, &["a", "b"]).await;
    let page = store
        .list(s.prefix(), ListOptions::default().limit(MAX_LIST_LIMIT))
        .await
        .unwrap();
    assert_eq!(s.names(&page.keys), ["a", "b"]);
    assert!(page.next.is_none());
    s.cleanup(store).await;
}

/// Without a limit, a page holds up to the default (1000) keys.
pub async fn default_limit_pages_at_1000(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-default");
    let n = 1001;
    let chunk = store.capabilities().max_batch_ops.unwrap_or(n).min(n);
    let names: Vec<String> = (0..n).map(|i| format!("{i:04}")).collect();
    for part in names.chunks(chunk) {
        store
            .batch_set(part.iter().map(|k| Entry::new(s.key(k), b("v"))).collect())
            .await
            .unwrap();
    }
    let page = store
        .list(s.prefix(), ListOptions::default())
        .await
        .unwrap();
    assert_eq!(page.keys.len(), kv_core::DEFAULT_LIST_LIMIT);
    assert!(page.next.is_some());
    s.cleanup(store).await;
}

/// `list_stream` yields every key once, across pages.
pub async fn list_stream_yields_every_key(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-stream");
    let names: Vec<String> = (0..30).map(|i| format!("{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    fill(store, &s, &refs).await;
    let keys: Vec<Key> = store.list_stream(s.prefix()).try_collect().await.unwrap();
    let mut listed = s.names(&keys);
    listed.sort();
    assert_eq!(listed, names);
    s.cleanup(store).await;
}

/// A prefix does not match keys that merely contain it later.
pub async fn prefix_matches_only_at_the_start(store: &dyn KvStore) {
    if !store.capabilities().listing {
        return; // list::listing_without_support_is_unsupported checks this store
    }
    let s = Space::new("list-start");
    fill(store, &s, &["xa", "ax", "a"]).await;
    let mut listed = s.names(&list_all(store, &s.raw("a"), 10).await);
    listed.sort();
    assert_eq!(listed, ["a", "ax"]);
    s.cleanup(store).await;
}

/// A store that cannot list ([`listing`](kv_core::Capabilities::listing)
/// off) says so: `list`, `list_stream`, `clear`, `export` and a copy from
/// it are `Unsupported` and change nothing, here or in the copy's target;
/// its keys stay readable.
pub async fn listing_without_support_is_unsupported(store: &dyn KvStore) {
    let caps = store.capabilities();
    if caps.listing {
        return;
    }
    assert!(!caps.ordered_list, "ordered_list without listing");
    let s = Space::new("no-list");
    put(store, &s.key("a"), "1").await;
    for prefix in [s.prefix(), ""] {
        assert_kind(
            store.list(prefix, ListOptions::default()).await,
            ErrorKind::Unsupported,
        );
    }
    let streamed: Result<Vec<Key>> = store.list_stream(s.prefix()).try_collect().await;
    assert_kind(streamed, ErrorKind::Unsupported);
    assert_kind(store.clear(s.prefix()).await, ErrorKind::Unsupported);
    let exported: Result<Vec<Entry>> = store.export(s.prefix()).try_collect().await;
    assert_kind(exported, ErrorKind::Unsupported);
    let target = MemoryStore::new().into_dyn();
    let report = kv_core::copy(store, target.clone(), s.prefix(), CopyOptions::default()).await;
    assert_eq!(report.load.keys_written, 0);
    assert_kind(report.into_result(), ErrorKind::Unsupported);
    let copied = target.list("", ListOptions::default()).await.unwrap();
    assert!(copied.keys.is_empty(), "the copy wrote {:?}", copied.keys);
    assert_eq!(get(store, &s.key("a")).await, Some(b("1")));
    s.cleanup(store).await;
}

//! Redis-specific behaviour: the key index under expiry and foreign writes,
//! `reindex`, error mapping, secrets.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use bytes::Bytes;
use kv_backend_redis::RedisConnection;
use kv_backend_redis::RedisStore;
use kv_core::{Entry, ErrorKind, Key, KvStore, KvStoreExt, ListOptions, SetOptions};

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A store with a prefix of its own (so its index is private to the test),
/// the purge off, and a raw connection.
async fn fresh(tag: &str) -> Option<(RedisStore, RedisConnection, String)> {
    let server = kv_testkit::redis().await?;
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!("kvt:{tag}:{}:{n}:", std::process::id());
    let store = RedisStore::builder()
        .url(server.url())
        .key_prefix(&prefix)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let raw = store.connection();
    Some((store, raw, prefix))
}

fn index_name(prefix: &str) -> Vec<u8> {
    format!("\0kv:index\0{prefix}").into_bytes()
}

async fn zcard(raw: &mut RedisConnection, name: Vec<u8>) -> u64 {
    redis::cmd("ZCARD")
        .arg(name)
        .query_async(raw)
        .await
        .unwrap()
}

/// The keys in a store's index: its members from the first possible key on
/// (the one member that is not a key starts with NUL).
async fn indexed(raw: &mut RedisConnection, prefix: &str) -> u64 {
    redis::cmd("ZLEXCOUNT")
        .arg(index_name(prefix))
        .arg(&b"[\x01"[..])
        .arg("+")
        .query_async(raw)
        .await
        .unwrap()
}

async fn encoding(raw: &mut RedisConnection, name: Vec<u8>) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(name)
        .query_async(raw)
        .await
        .unwrap()
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

#[tokio::test]
async fn purge_keeps_the_index_equal_to_the_live_keys_after_expiry() {
    let Some((store, mut raw, prefix)) = fresh("purge").await else {
        return;
    };
    let mut batch = Vec::new();
    for i in 0..60 {
        let e = Entry::new(key(&format!("k{i:02}")), "v");
        batch.push(if i % 3 == 0 {
            e
        } else {
            e.with_ttl(Duration::from_millis(200))
        });
    }
    store.batch_set(batch).await.unwrap();
    assert_eq!(indexed(&mut raw, &prefix).await, 60);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = store.purge_expired().await.unwrap();
    assert_eq!(report.dropped, 40);
    assert_eq!(indexed(&mut raw, &prefix).await, 20);
    let schedule = format!("\0kv:expiries\0{prefix}").into_bytes();
    assert_eq!(
        zcard(&mut raw, schedule).await,
        0,
        "the expiry schedule must empty too"
    );
    assert_eq!(
        store
            .list("", ListOptions::default())
            .await
            .unwrap()
            .keys
            .len(),
        20
    );
    store.clear("").await.unwrap();
}

#[tokio::test]
async fn background_purge_runs_on_its_interval() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let prefix = format!("kvt:bg:{}:", std::process::id());
    let store = RedisStore::builder()
        .url(server.url())
        .key_prefix(&prefix)
        .purge_interval(Some(Duration::from_millis(100)))
        .connect()
        .await
        .unwrap();
    let mut raw = store.connection();
    store
        .set(
            &key("gone"),
            "v".into(),
            SetOptions::ttl(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    store
        .set(&key("kept"), "v".into(), SetOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(indexed(&mut raw, &prefix).await, 1);
    store.clear("").await.unwrap();
}

#[tokio::test]
async fn listing_drops_stale_entries_and_keeps_pages_full() {
    let Some((store, mut raw, prefix)) = fresh("stale").await else {
        return;
    };
    let entries = (0..12)
        .map(|i| Entry::new(key(&format!("k{i:02}")), "v"))
        .collect();
    store.batch_set(entries).await.unwrap();
    // Another program deletes every other key behind the store's back.
    for i in (0..12).step_by(2) {
        let _: () = redis::cmd("DEL")
            .arg(format!("{prefix}k{i:02}"))
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let page = store
        .list("", ListOptions::default().limit(4))
        .await
        .unwrap();
    assert_eq!(page.keys, ["k01", "k03", "k05", "k07"]);
    assert_eq!(page.next, Some(key("k07")));
    let rest = store
        .list("", ListOptions::default().limit(4).start_after(key("k07")))
        .await
        .unwrap();
    assert_eq!(rest.keys, ["k09", "k11"]);
    assert_eq!(rest.next, None);
    assert_eq!(
        indexed(&mut raw, &prefix).await,
        6,
        "stale entries met by the listing are dropped"
    );
    store.clear("").await.unwrap();
}

#[tokio::test]
async fn reindex_lists_keys_written_by_other_programs_literally() {
    // The prefix has glob characters: SCAN must treat it literally.
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let prefix = format!("kvt*re[x]?:{}:", std::process::id());
    let store = RedisStore::builder()
        .url(server.url())
        .key_prefix(&prefix)
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let mut raw = store.connection();
    let set = |name: Vec<u8>| redis::cmd("SET").arg(name).arg("raw").to_owned();
    for name in [
        format!("{prefix}a"),
        format!("{prefix}b/c"),
        format!("{prefix}é"),
    ] {
        let _: () = set(name.into_bytes()).query_async(&mut raw).await.unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}ttl"))
        .arg("x")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    // Not valid kv keys: not UTF-8, and the bare prefix (an empty key).
    let _: () = set([prefix.as_bytes(), b"\xff\xfe"].concat())
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = set(prefix.clone().into_bytes())
        .query_async(&mut raw)
        .await
        .unwrap();
    // Matches the prefix as a glob pattern, but not literally.
    let foreign = format!("kvtXXreX!:{}:a", std::process::id());
    let _: () = set(foreign.clone().into_bytes())
        .query_async(&mut raw)
        .await
        .unwrap();

    assert!(
        store
            .list("", ListOptions::default())
            .await
            .unwrap()
            .keys
            .is_empty(),
        "not indexed yet"
    );
    let report = store.reindex().await.unwrap();
    assert_eq!(report.indexed, 4);
    assert_eq!(report.skipped, 2);
    assert_eq!(
        store.list("", ListOptions::default()).await.unwrap().keys,
        ["a", "b/c", "ttl", "é"]
    );
    assert_eq!(
        store.get(&key("b/c")).await.unwrap(),
        Some(Bytes::from_static(b"raw"))
    );
    let schedule = format!("\0kv:expiries\0{prefix}").into_bytes();
    assert_eq!(
        zcard(&mut raw, schedule).await,
        1,
        "the key with a TTL is scheduled for purging"
    );

    // Keys removed by other programs leave the index at the next reindex.
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}a"))
        .query_async(&mut raw)
        .await
        .unwrap();
    let again = store.reindex().await.unwrap();
    assert_eq!(again.dropped, 1);
    assert_eq!(indexed(&mut raw, &prefix).await, 3);

    store.clear("").await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg([prefix.as_bytes(), b"\xff\xfe"].concat())
        .arg(prefix.as_bytes())
        .arg(foreign.as_bytes())
        .query_async(&mut raw)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refused_connection_is_temporary_unavailable_and_hides_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://admin:hunter2@127.0.0.1:{port}/0");
    let err = RedisStore::builder()
        .url(&url)
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn a_wrong_password_is_permission_denied_and_not_echoed() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let url = server
        .url()
        .replacen("redis://", "redis://nobody:hunter2@", 1);
    let err = RedisStore::connect(&url).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn bad_urls_and_prefixes_are_config_errors() {
    for url in [
        "redis://127.0.0.1:notaport",
        "http://127.0.0.1:6379",
        "redis://[::1",
        "not a url",
        "",
    ] {
        let err = RedisStore::connect(url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
    }
    let err = RedisStore::builder()
        .key_prefix("a\0b")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn a_user_with_a_password_connects_and_is_never_shown() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let admin = RedisStore::connect(server.url()).await.unwrap();
    let user = format!("kvuser{}", std::process::id());
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", &user, "on", ">s3cret-pa55", "~*", "&*", "+@all"][..])
        .query_async(&mut admin.connection())
        .await
        .unwrap();
    let url = server
        .url()
        .replacen("redis://", &format!("redis://{user}:s3cret-pa55@"), 1);
    let store = RedisStore::connect(&url).await.unwrap();
    store
        .set(&key("kvt:acl"), "ok".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.get(&key("kvt:acl")).await.unwrap(),
        Some(Bytes::from_static(b"ok"))
    );
    let shown = format!("{store:?}");
    assert!(!shown.contains("s3cret-pa55"), "{shown}");
    assert!(shown.contains(&format!("{user}:***@")), "{shown}");
    store.delete(&key("kvt:acl")).await.unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["DELUSER", &user][..])
        .query_async(&mut admin.connection())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_small_index_is_a_skiplist_and_its_extra_member_is_never_listed() {
    let Some((store, mut raw, prefix)) = fresh("encoding").await else {
        return;
    };
    store
        .batch_set(vec![Entry::new(key("b"), "1"), Entry::new(key("a"), "2")])
        .await
        .unwrap();
    // Two members would be a listpack, where ZADD scans the whole list.
    assert_eq!(encoding(&mut raw, index_name(&prefix)).await, "skiplist");
    assert_eq!(zcard(&mut raw, index_name(&prefix)).await, 3);
    assert_eq!(indexed(&mut raw, &prefix).await, 2);
    let all = store.list("", ListOptions::default()).await.unwrap();
    assert_eq!(all.keys, ["a", "b"]);
    let first = store
        .list("", ListOptions::default().limit(1))
        .await
        .unwrap();
    assert_eq!(first.keys, ["a"]);

    // Neither reindex nor deleting every key removes it, so the index
    // never shrinks back to a listpack.
    store.reindex().await.unwrap();
    assert_eq!(store.batch_delete(&[key("a"), key("b")]).await.unwrap(), 2);
    assert_eq!(zcard(&mut raw, index_name(&prefix)).await, 1);
    assert_eq!(encoding(&mut raw, index_name(&prefix)).await, "skiplist");
    assert!(
        store
            .list("", ListOptions::default())
            .await
            .unwrap()
            .keys
            .is_empty()
    );
    store
        .set(&key("c"), Bytes::from_static(b"3"), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.list("", ListOptions::default()).await.unwrap().keys,
        ["c"]
    );
    store.clear("").await.unwrap();
}

/// A server that stops answering (`CLIENT PAUSE`) makes a call under a
/// `TimeoutLayer` fail with `Timeout` at about its deadline, and the store
/// works again once the server does. A private server: the pause would
/// stall every other test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_ends_in_timeout_at_the_deadline() {
    use kv_core::{Layer, TimeoutLayer};

    let Some(server) = kv_testkit::private(kv_testkit::Kind::Redis).await else {
        return;
    };
    let store = RedisStore::builder()
        .url(server.url())
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    let mut raw = store.connection();
    let deadline = Duration::from_millis(300);
    let store = TimeoutLayer::new(deadline).layer(store.into_dyn());
    let key = Key::new("paused").unwrap();
    store
        .set(&key, Bytes::from_static(b"before"), SetOptions::default())
        .await
        .unwrap();

    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .query_async(&mut raw)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = store.get(&key).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    assert!(
        waited >= deadline,
        "answered before the deadline: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(2),
        "far past the deadline: {waited:?}"
    );
    println!("paused server: Timeout after {waited:?} (deadline {deadline:?})");

    let () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut raw)
        .await
        .unwrap();
    let value = store.get(&key).await.unwrap();
    assert_eq!(value, Some(Bytes::from_static(b"before")));
}

/// A refused connection carried no request: the error says so, which is
/// what lets the retry layer repeat even a compare-and-swap.
#[tokio::test]
async fn a_refused_connection_is_marked_unsent() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedisStore::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.request_unsent(), "{err:?}");
}

/// A background purge that always fails (a user whose ACL forbids
/// scripts: NOPERM) is no longer silent: `purge_status` counts the
/// failures and keeps the last error, while the store keeps working for
/// what the user may do. A zero interval is a `Config` error, not a panic
/// in the spawned task.
#[tokio::test]
async fn a_purge_that_always_fails_is_counted_and_its_error_kept() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let admin = RedisStore::connect(server.url()).await.unwrap();
    let user = format!("kvnoscript{}", std::process::id());
    let _: () = redis::cmd("ACL")
        .arg(
            &[
                "SETUSER",
                &user,
                "on",
                ">n0-scr1pts",
                "~*",
                "&*",
                "+@all",
                "-@scripting",
            ][..],
        )
        .query_async(&mut admin.connection())
        .await
        .unwrap();
    let url = server
        .url()
        .replacen("redis://", &format!("redis://{user}:n0-scr1pts@"), 1);
    let store = RedisStore::builder()
        .url(&url)
        .key_prefix(format!("{user}:"))
        .purge_interval(Some(Duration::from_millis(20)))
        .connect()
        .await
        .unwrap();
    let status = kv_testkit::poll_until(
        Duration::from_secs(5),
        || store.purge_status().unwrap(),
        |status| status.failures >= 2,
    )
    .await;
    assert!(status.failures >= 2, "{status:?}");
    assert_eq!(status.failures, status.consecutive_failures);
    let (kind, message) = status.last_error.clone().unwrap();
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
    assert!(
        message.contains("NOPERM") || message.contains("permission"),
        "{message}"
    );
    assert!(!message.contains("n0-scr1pts"), "{message}");
    // The same error reaches a caller of purge_expired.
    let err = store.purge_expired().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    drop(store);
    let _: () = redis::cmd("ACL")
        .arg(&["DELUSER", &user][..])
        .query_async(&mut admin.connection())
        .await
        .unwrap();

    // A working purge counts runs and no failure.
    let store = RedisStore::builder()
        .url(server.url())
        .key_prefix(format!("{user}-ok:"))
        .purge_interval(Some(Duration::from_millis(20)))
        .connect()
        .await
        .unwrap();
    let status = kv_testkit::poll_until(
        Duration::from_secs(5),
        || store.purge_status().unwrap(),
        |status| status.runs >= 2,
    )
    .await;
    assert!(status.runs >= 2 && status.failures == 0, "{status:?}");

    let err = RedisStore::builder()
        .url(server.url())
        .purge_interval(Some(Duration::ZERO))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let off = RedisStore::builder()
        .url(server.url())
        .purge_interval(None)
        .connect()
        .await
        .unwrap();
    assert_eq!(off.purge_status(), None);
}

/// Switching a prefix between the modes, both ways: a store without the
/// index marks the prefix, so a store with it refuses lists and versioned
/// writes (`Config`, never a short list or a stale version that passes)
/// until `reindex`, which lists every key again and drops the old versions.
#[tokio::test]
async fn switching_to_no_index_and_back_never_lists_short_or_passes_stale_versions() {
    let Some((indexed, mut raw, prefix)) = fresh("switch").await else {
        return;
    };
    indexed
        .batch_set(vec![
            Entry::new(key("a"), "1"),
            Entry::new(key("b"), "2").with_ttl(Duration::from_secs(600)),
        ])
        .await
        .unwrap();
    let old = indexed.get_versioned(&key("b")).await.unwrap().unwrap();

    let url = format!(
        "{}?list_index=false",
        kv_testkit::redis().await.unwrap().url()
    );
    let plain = RedisStore::builder()
        .url(url)
        .key_prefix(&prefix)
        .connect()
        .await
        .unwrap();
    assert!(!plain.has_list_index() && indexed.has_list_index());
    let caps = plain.capabilities();
    assert!(!caps.listing && !caps.ordered_list && !caps.versions && !caps.transactions);
    assert!(caps.cas && caps.counters && caps.ttl && caps.atomic_batch);
    assert_eq!(
        zcard(&mut raw, index_name(&prefix)).await,
        0,
        "index dropped"
    );
    for refused in [
        plain.list("", ListOptions::default()).await.err(),
        plain.reindex().await.err().map(|e| e.with_message("")),
        plain
            .purge_expired()
            .await
            .err()
            .map(|e| e.with_message("")),
    ] {
        assert_eq!(refused.map(|e| e.kind()), Some(ErrorKind::Unsupported));
    }
    // Writes without the index, TTLs by Redis.
    plain
        .batch_set(vec![Entry::new(key("c"), "3")])
        .await
        .unwrap();
    assert!(plain.delete(&key("a")).await.unwrap());
    plain
        .set(
            &key("b"),
            "changed".into(),
            SetOptions::ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}b"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&pttl), "PTTL {pttl}");

    // The store with the index refuses what the stale index would get wrong.
    let list = indexed.list("", ListOptions::default()).await;
    assert_eq!(list.map_err(|e| e.kind()).err(), Some(ErrorKind::Config));
    let stale = indexed
        .write_if(
            &key("b"),
            kv_core::Condition::Version(old.version.clone()),
            Some("lost".into()),
            SetOptions::default(),
        )
        .await;
    assert_eq!(stale.map_err(|e| e.kind()).err(), Some(ErrorKind::Config));
    assert_eq!(
        indexed.get(&key("b")).await.unwrap(),
        Some(Bytes::from("changed"))
    );

    // The way back: reindex lists every key and drops the old versions.
    drop(plain);
    let report = indexed.reindex().await.unwrap();
    assert_eq!(report.indexed, 2, "{report:?}");
    let keys = indexed.list("", ListOptions::default()).await.unwrap().keys;
    assert_eq!(keys, [key("b"), key("c")]);
    let stale = indexed
        .write_if(
            &key("b"),
            kv_core::Condition::Version(old.version),
            Some("lost".into()),
            SetOptions::default(),
        )
        .await
        .unwrap();
    assert!(!stale, "a version from before the switch must not pass");
    let now = indexed.get_versioned(&key("b")).await.unwrap().unwrap();
    let written = indexed
        .write_if(
            &key("b"),
            kv_core::Condition::Version(now.version),
            Some("new".into()),
            SetOptions::default(),
        )
        .await
        .unwrap();
    assert!(written);
    indexed.clear("").await.unwrap();
}

#[tokio::test]
async fn the_list_index_url_option_is_checked_and_hidden_from_the_driver() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let url = server.url();
    for (query, index) in [
        ("?list_index=false", false),
        ("?list_index=true", true),
        ("", true),
    ] {
        let store = RedisStore::connect(&format!("{url}{query}")).await.unwrap();
        assert_eq!(store.has_list_index(), index, "{query}");
        assert_eq!(store.capabilities().listing, index, "{query}");
    }
    for bad in ["?list_index=no", "?list_index="] {
        let err = RedisStore::connect(&format!("{url}{bad}"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
    }
    let config = kv_backend_redis::RedisConfig {
        url: format!("{url}?list_index=true"),
        list_index: false,
        ..Default::default()
    };
    let err = RedisStore::from_config(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

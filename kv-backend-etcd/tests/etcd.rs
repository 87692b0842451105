//! What only the etcd backend promises, proven against real etcd servers:
//! batches are one Txn (the server's own gRPC counters), the server's limits,
//! shared leases that reclaim expired keys, CAS under contention, and
//! authentication without leaking the password.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_backend_etcd::etcd_client::{self, GetOptions};
use kv_backend_etcd::{EtcdConfig, EtcdStore};
use kv_core::{Entry, ErrorKind, Key, KvStore, SetOptions, WriteOp};

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn store_at(server: &kv_testkit::TestServer, prefix: &str) -> EtcdStore {
    EtcdStore::from_config(EtcdConfig {
        key_prefix: prefix.to_owned(),
        ..EtcdConfig::from_url(&server.kv_url()).unwrap()
    })
    .await
    .unwrap()
}

/// A unique prefix per test, so tests share the server safely.
fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("kv-etcd-test/{test}/{nanos}/")
}

/// etcd's `grpc_server_handled_total` for `method` (all codes), from the
/// `/metrics` endpoint on its client URL.
fn handled(server: &kv_testkit::TestServer, method: &str) -> u64 {
    let addr = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    let label = format!("grpc_method=\"{method}\"");
    body.lines()
        .filter(|l| l.starts_with("grpc_server_handled_total{") && l.contains(&label))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// The Txn, Range, Put and DeleteRange calls the server has handled.
fn calls(server: &kv_testkit::TestServer) -> [u64; 4] {
    ["Txn", "Range", "Put", "DeleteRange"].map(|m| handled(server, m))
}

#[tokio::test]
async fn every_batch_is_exactly_one_txn_on_the_server() {
    let Some(server) = kv_testkit::private(kv_testkit::Kind::Etcd).await else {
        return;
    };
    let store = store_at(&server, "one-txn/").await;
    let keys: Vec<Key> = (0..100).map(|i| key(&format!("k{i:03}"))).collect();
    let entries: Vec<Entry> = keys
        .iter()
        .map(|k| Entry::new(k.clone(), b("v")).with_ttl(Duration::from_secs(60)))
        .collect();
    // The first TTL write grants the bucket's lease; later ones reuse it.
    store.batch_set(entries.clone()).await.unwrap();

    let before = calls(&server);
    store.batch_set(entries).await.unwrap();
    assert_eq!(
        calls(&server),
        [before[0] + 1, before[1], before[2], before[3]]
    );

    let before = calls(&server);
    let got = store.batch_get(&keys).await.unwrap();
    assert!(got.iter().all(|v| v.as_deref() == Some(&b"v"[..])));
    assert_eq!(
        calls(&server),
        [before[0] + 1, before[1], before[2], before[3]]
    );

    let before = calls(&server);
    let ops = vec![
        WriteOp::Put(Entry::new(key("new"), b("n"))),
        WriteOp::Delete(keys[0].clone()),
    ];
    store.write_batch(ops).await.unwrap();
    assert_eq!(
        calls(&server),
        [before[0] + 1, before[1], before[2], before[3]]
    );

    let before = calls(&server);
    assert_eq!(store.batch_delete(&keys).await.unwrap(), 99);
    assert_eq!(
        calls(&server),
        [before[0] + 1, before[1], before[2], before[3]]
    );

    // Revision arithmetic: one Txn is one revision, shared by all its keys.
    let mut client = store.client();
    let entries: Vec<Entry> = keys.iter().map(|k| Entry::new(k.clone(), b("w"))).collect();
    store.batch_set(entries).await.unwrap();
    let raw = client
        .get("one-txn/k", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let revisions: BTreeSet<i64> = raw.kvs().iter().map(|kv| kv.mod_revision()).collect();
    assert_eq!(raw.kvs().len(), 100);
    assert_eq!(revisions.len(), 1, "{revisions:?}");
}

#[tokio::test]
async fn a_batch_of_129_keys_fails_whole_at_the_default_limit() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let prefix = prefix("129");
    let store = store_at(server, &prefix).await;
    let entries: Vec<Entry> = (0..129)
        .map(|i| Entry::new(key(&format!("k{i:03}")), b("v")))
        .collect();
    let err = store.batch_set(entries.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BatchTooLarge, "{err}");

    // A store told the server allows more sends the Txn: etcd itself refuses
    // it, as the same kind, and writes nothing.
    let lying = EtcdStore::from_config(EtcdConfig {
        key_prefix: prefix.clone(),
        max_txn_ops: 1000,
        ..EtcdConfig::from_url(&server.kv_url()).unwrap()
    })
    .await
    .unwrap();
    let err = lying.batch_set(entries).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BatchTooLarge, "{err}");
    let raw = store
        .client()
        .get(
            prefix.as_str(),
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(raw.count(), 0);
}

#[tokio::test]
async fn a_batch_over_max_request_bytes_fails_before_any_io() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let prefix = prefix("bytes");
    let store = store_at(server, &prefix).await;
    let max = store.capabilities().max_value_bytes;
    // Two values that each fit, but not together.
    let big = Bytes::from(vec![b'x'; max]);
    let entries = vec![
        Entry::new(key("a"), big.clone()),
        Entry::new(key("b"), big.clone()),
    ];
    let err = store.batch_set(entries).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BatchTooLarge, "{err}");
    let err = store
        .set(
            &key("c"),
            Bytes::from(vec![b'x'; max + 1]),
            SetOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{err}");
    // The largest value does fit the server's request limit.
    store
        .set(&key("a"), big.clone(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap(), Some(big));
    assert_eq!(store.batch_delete(&[key("a"), key("b")]).await.unwrap(), 1);
}

#[tokio::test]
async fn ttl_writes_share_a_handful_of_leases() {
    let Some(server) = kv_testkit::private(kv_testkit::Kind::Etcd).await else {
        return;
    };
    let store = store_at(&server, "leases/").await;
    let started = Instant::now();
    for round in 0..10 {
        for i in 0..100 {
            let k = key(&format!("k{round}-{i}"));
            store
                .set(&k, b("v"), SetOptions::ttl(Duration::from_secs(5)))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let spread = started.elapsed();
    let leases = store.client().leases().await.unwrap().leases().len();
    assert!(spread >= Duration::from_secs(2), "{spread:?}");
    // A 5 s TTL has 1 s buckets: one lease per second of writing, plus one
    // for the bucket the writes started in (a slow machine writes longer).
    let most = spread.as_secs_f64().ceil() as usize + 1;
    assert!(
        (1..=most).contains(&leases),
        "1,000 TTL writes over {spread:?} created {leases} leases (at most {most} expected)"
    );
    // The cache drops a bucket once it has ended (no later write can use
    // it) while etcd keeps its lease until it expires: on a machine slow
    // enough that the writes outlast the first bucket, fewer are cached.
    let cached = store.cached_leases();
    assert!(
        (1..=leases).contains(&cached),
        "{cached} leases cached, {leases} on the server"
    );
    println!("1,000 TTL writes over {spread:?}: {leases} leases, {cached} cached");
}

#[tokio::test]
async fn expired_keys_are_removed_from_etcd_by_their_lease() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let prefix = prefix("reclaim");
    let store = store_at(server, &prefix).await;
    let mut client = store.client();
    let raw_key = format!("{prefix}short");
    store
        .set(
            &key("short"),
            b("v"),
            SetOptions::ttl(Duration::from_millis(1500)),
        )
        .await
        .unwrap();
    store
        .set(
            &key("kept"),
            b("v"),
            SetOptions::ttl(Duration::from_millis(1500)),
        )
        .await
        .unwrap();
    // Writing without TTL detaches the lease: this key stays.
    store
        .set(&key("kept"), b("forever"), SetOptions::default())
        .await
        .unwrap();
    let raw = client.get(raw_key.as_str(), None).await.unwrap();
    assert_ne!(raw.kvs()[0].lease(), 0, "a TTL write attaches a lease");
    let kept = client.get(format!("{prefix}kept"), None).await.unwrap();
    assert_eq!(kept.kvs()[0].lease(), 0, "a write without TTL detaches it");

    tokio::time::sleep(Duration::from_millis(1600)).await;
    // Exact to the millisecond for kv, whatever the lease says.
    assert_eq!(store.get(&key("short")).await.unwrap(), None);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let raw = client.get(raw_key.as_str(), None).await.unwrap();
        if raw.kvs().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the expired key is still stored in etcd"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(store.get(&key("kept")).await.unwrap(), Some(b("forever")));
    store.batch_delete(&[key("kept")]).await.unwrap();
}

#[tokio::test]
async fn a_revoked_lease_is_replaced_and_the_write_succeeds() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let prefix = prefix("revoked");
    let store = store_at(server, &prefix).await;
    let ttl = SetOptions::ttl(Duration::from_secs(30));
    store.set(&key("a"), b("1"), ttl).await.unwrap();
    let mut client = store.client();
    let lease = client.get(format!("{prefix}a"), None).await.unwrap().kvs()[0].lease();
    client.lease_revoke(lease).await.unwrap();
    // The cached lease is gone from etcd: the write notices and retries once.
    store.set(&key("b"), b("2"), ttl).await.unwrap();
    let entries = vec![Entry::new(key("c"), b("3")).with_ttl(Duration::from_secs(30))];
    store.batch_set(entries).await.unwrap();
    assert_eq!(
        store
            .batch_get(&[key("a"), key("b"), key("c")])
            .await
            .unwrap(),
        [None, Some(b("2")), Some(b("3"))]
    );
    store.batch_delete(&[key("b"), key("c")]).await.unwrap();
}

#[tokio::test]
async fn concurrent_cas_from_8_tasks_never_double_applies() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let prefix = prefix("cas");
    let store = Arc::new(store_at(server, &prefix).await);
    // With a TTL the stored value carries an expiry stamp: every swap takes
    // the guarded-by-revision path.
    for ttl in [None, Some(Duration::from_secs(60))] {
        let counter = key("counter");
        let options = SetOptions { ttl };
        store.set(&counter, b("0"), options).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut won = Vec::new();
                    for _ in 0..200 {
                        let current = store.get(&counter).await.unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&current).unwrap().parse().unwrap();
                        if n >= 100 {
                            break;
                        }
                        let next = b(&(n + 1).to_string());
                        if store
                            .compare_and_swap(&counter, Some(current), Some(next), options)
                            .await
                            .unwrap()
                        {
                            won.push(n);
                        }
                    }
                    won
                })
            })
            .collect();
        let mut all: Vec<u64> = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort_unstable();
        let final_value = store.get(&counter).await.unwrap().unwrap();
        assert_eq!(final_value, b("100"), "ttl {ttl:?}");
        assert_eq!(all, (0..100).collect::<Vec<u64>>(), "ttl {ttl:?}");
        store.delete(&counter).await.unwrap();
    }
}

#[tokio::test]
async fn auth_with_user_and_password_and_a_wrong_password_is_permission_denied() {
    let Some(server) = kv_testkit::private(kv_testkit::Kind::Etcd).await else {
        return;
    };
    const PASSWORD: &str = "r00t-S3cret-pw";
    const WRONG: &str = "wr0ng-S3cret-pw";
    let mut admin = etcd_client::Client::connect([server.url()], None)
        .await
        .unwrap();
    admin.user_add("root", PASSWORD, None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();

    let url = server
        .kv_url()
        .replace("etcd://", &format!("etcd://root:{PASSWORD}@"));
    let store = EtcdStore::connect(&url).await.unwrap();
    store
        .batch_set(vec![
            Entry::new(key("a"), b("1")),
            Entry::new(key("b"), b("2")),
        ])
        .await
        .unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap(), Some(b("1")));
    assert!(!format!("{store:?}").contains(PASSWORD));

    let wrong = server
        .kv_url()
        .replace("etcd://", &format!("etcd://root:{WRONG}@"));
    let err = EtcdStore::connect(&wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(WRONG) && !shown.contains(PASSWORD),
        "{shown}"
    );

    // No credentials at all: refused the same way.
    let anonymous = EtcdStore::connect(&server.kv_url()).await;
    let err = match anonymous {
        Ok(store) => store.get(&key("a")).await.unwrap_err(),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

#[tokio::test]
async fn tls_with_a_private_ca_works_and_is_refused_without_it() {
    let certs = kv_testkit::TestCerts::generate();
    let Some(server) = kv_testkit::private_etcd_tls(certs.cert(), certs.key()).await else {
        return;
    };
    let url = server.kv_url();
    assert!(url.starts_with("etcds://"), "{url}");
    let store = EtcdStore::connect(&format!("{url}?ca_file={}", certs.ca().display()))
        .await
        .unwrap();
    store
        .batch_set(vec![
            Entry::new(key("a"), b("1")),
            Entry::new(key("b"), b("2")),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.batch_get(&[key("b"), key("a")]).await.unwrap(),
        [Some(b("2")), Some(b("1"))]
    );

    // Neither the system roots nor another CA trust the server: not
    // temporary, retrying cannot help.
    let short = "&connect_timeout_ms=1000&request_timeout_ms=3000";
    for untrusted in [
        format!("{url}?prefix=x{short}"),
        format!("{url}?ca_file={}{short}", certs.other_ca().display()),
    ] {
        let err = EtcdStore::connect(&untrusted).await.unwrap_err();
        println!("untrusted, refused as expected: {err}");
        assert_eq!(
            err.kind(),
            ErrorKind::PermissionDenied,
            "{untrusted}: {err}"
        );
        assert!(!err.is_temporary(), "{err}");
    }
    // Plain HTTP/2 to a TLS port gets no answer.
    let plain = format!("{}?prefix=x{short}", url.replace("etcds://", "etcd://"));
    let err = EtcdStore::connect(&plain).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{plain}: {err}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_soon() {
    let started = Instant::now();
    let err = EtcdStore::builder()
        .endpoints(["127.0.0.1:1"])
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.is_temporary());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn values_written_by_another_program_are_errors_not_absent() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let prefix = prefix("foreign");
    let store = store_at(server, &prefix).await;
    let mut client = store.client();
    client
        .put(format!("{prefix}foreign"), "\u{7}not kv's format", None)
        .await
        .unwrap();
    let err = store.get(&key("foreign")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert_eq!(err.key(), Some("foreign"));
    // It still counts as removed when deleted: it existed.
    assert!(store.delete(&key("foreign")).await.unwrap());
    // The rule every backend keeps: a present key that can be listed,
    // deleted and cleared (before, exists and list failed on it).
    kv_conformance::foreign::foreign_values_are_present_keys(&store, |key| {
        let mut client = store.client();
        let full = format!("{prefix}{key}");
        async move {
            client
                .put(full, "\u{7}not kv's format", None)
                .await
                .unwrap();
        }
    })
    .await;
    // A key that is not a valid kv key has no name in kv: never listed.
    client
        .put(format!("{prefix}bad\0key").into_bytes(), "\0v", None)
        .await
        .unwrap();
    let page = store.list("bad", Default::default()).await.unwrap();
    assert!(page.keys.is_empty(), "{page:?}");
}

#[tokio::test]
async fn serializable_reads_answer_from_the_member() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let prefix = prefix("serializable");
    let url = format!("{}?prefix={prefix}&serializable=true", server.kv_url());
    let store = EtcdStore::connect(&url).await.unwrap();
    store
        .batch_set(vec![
            Entry::new(key("a"), b("1")),
            Entry::new(key("b"), b("2")),
        ])
        .await
        .unwrap();
    // One member: a serializable read sees the write it follows.
    assert_eq!(store.get(&key("a")).await.unwrap(), Some(b("1")));
    assert_eq!(
        store.batch_get(&[key("b"), key("x")]).await.unwrap(),
        [Some(b("2")), None]
    );
    let page = store
        .list("", kv_core::ListOptions::default())
        .await
        .unwrap();
    assert_eq!(page.keys, [key("a"), key("b")]);
    assert_eq!(store.batch_delete(&[key("a"), key("b")]).await.unwrap(), 2);
}

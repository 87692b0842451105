//! What only the MongoDB backend promises, proven against the testkit's
//! servers: batches are one command each (the driver's command monitoring
//! counts them), a batch of several commands is all or nothing, the TTL
//! index reclaims expired documents, CAS under contention, topology, and
//! SCRAM authentication without leaking the password.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_backend_mongo::mongodb::bson::{Document, doc};
use kv_backend_mongo::mongodb::event::EventHandler;
use kv_backend_mongo::mongodb::event::command::CommandEvent;
use kv_backend_mongo::mongodb::options::{ClientOptions, IndexOptions};
use kv_backend_mongo::mongodb::{Client, IndexModel};
use kv_backend_mongo::{MongoConfig, MongoStore, Topology};
use kv_core::{Entry, ErrorKind, Key, KvStore, SetOptions, WriteOp};

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A collection name of its own per test.
fn collection(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}_{nanos}")
}

async fn store_in(server: &kv_testkit::TestServer, coll: &str) -> MongoStore {
    MongoStore::from_config(MongoConfig {
        collection: Some(coll.to_owned()),
        ..MongoConfig::from_url(server.url()).unwrap()
    })
    .await
    .unwrap()
}

/// Counts the commands a client sends, by name.
#[derive(Clone, Default)]
struct Commands(Arc<Mutex<BTreeMap<String, u32>>>);

impl Commands {
    fn take(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A store on a client whose every command is counted.
async fn counted_store(
    server: &kv_testkit::TestServer,
    coll: &str,
    max_statements: usize,
) -> (MongoStore, Commands) {
    let commands = Commands::default();
    let seen = commands.clone();
    let mut options = ClientOptions::parse(server.url()).await.unwrap();
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event {
            *seen
                .0
                .lock()
                .unwrap()
                .entry(started.command_name)
                .or_default() += 1;
        }
    }));
    let client = Client::with_options(options).unwrap();
    let store = MongoStore::builder()
        .client(client)
        .collection(coll)
        .max_statements_per_command(max_statements)
        .connect()
        .await
        .unwrap();
    commands.take();
    (store, commands)
}

fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn entries(prefix: &str, n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry::new(key(&format!("{prefix}{i:06}")), format!("value-{i}")))
        .collect()
}

#[tokio::test]
async fn each_batch_is_one_command_per_kind_of_write_in_one_transaction() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let (store, commands) = counted_store(server, &collection("one_command"), 100_000).await;
    assert_eq!(store.topology(), Topology::ReplicaSet);

    store.batch_set(entries("k", 100)).await.unwrap();
    assert_eq!(
        commands.take(),
        counts(&[("update", 1), ("commitTransaction", 1)])
    );

    let keys: Vec<Key> = (0..100).map(|i| key(&format!("k{i:06}"))).collect();
    let got = store.batch_get(&keys).await.unwrap();
    assert!(got.iter().all(Option::is_some));
    assert_eq!(commands.take(), counts(&[("find", 1)]));

    let ops = vec![
        WriteOp::Put(Entry::new(key("new"), "1")),
        WriteOp::Delete(key("k000000")),
    ];
    store.write_batch(ops).await.unwrap();
    assert_eq!(
        commands.take(),
        counts(&[("update", 1), ("delete", 1), ("commitTransaction", 1)])
    );

    // Live keys counted by the first delete, expired ones removed by the second.
    assert_eq!(store.batch_delete(&keys).await.unwrap(), 99);
    assert_eq!(
        commands.take(),
        counts(&[("delete", 2), ("commitTransaction", 1)])
    );
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn twenty_thousand_keys_in_twenty_commands_land_whole() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let coll = collection("whole");
    let (store, commands) = counted_store(server, &coll, 1000).await;
    store.batch_set(entries("w", 20_000)).await.unwrap();
    assert_eq!(
        commands.take(),
        counts(&[("update", 20), ("commitTransaction", 1)])
    );
    let stored = store.collection().count_documents(doc! {}).await.unwrap();
    assert_eq!(stored, 20_000);
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn a_batch_failing_in_its_last_command_leaves_nothing() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let coll = collection("abort");
    let (store, commands) = counted_store(server, &coll, 1000).await;
    // A unique index on the value: the 19,501st entry repeats the first
    // entry's value, so the 20th update command fails on the server after
    // 19 commands (19,000 documents) succeeded inside the transaction.
    store
        .collection()
        .create_index(
            IndexModel::builder()
                .keys(doc! {"v": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .unwrap();
    let mut batch = entries("a", 20_000);
    batch[19_500].value = batch[0].value.clone();
    let err = store.batch_set(batch).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("11000"), "{err}");
    let sent = commands.take();
    assert_eq!(sent.get("update"), Some(&20), "{sent:?}");
    let stored = store.collection().count_documents(doc! {}).await.unwrap();
    assert_eq!(stored, 0, "a failed batch left documents behind");
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn the_ttl_index_removes_expired_documents() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let store = store_in(server, &collection("ttl")).await;
    let indexes = store.collection().list_indexes().await.unwrap();
    let indexes: Vec<_> = futures_collect(indexes).await;
    let ttl = indexes
        .iter()
        .find(|i| i.keys == doc! {"e": 1})
        .expect("the TTL index on e");
    assert_eq!(
        ttl.options.as_ref().and_then(|o| o.expire_after),
        Some(Duration::ZERO)
    );

    store
        .set(
            &key("short"),
            b("v"),
            SetOptions::ttl(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    store
        .set(&key("forever"), b("v"), SetOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(store.get(&key("short")).await.unwrap(), None);
    // mongod's TTL monitor runs every 60 s; the test server's every second.
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let raw = store
            .collection()
            .count_documents(doc! {"_id": "short"})
            .await
            .unwrap();
        if raw == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the TTL index never removed it");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(store.get(&key("forever")).await.unwrap(), Some(b("v")));
    store.collection().drop().await.unwrap();
}

async fn futures_collect(
    mut cursor: kv_backend_mongo::mongodb::Cursor<IndexModel>,
) -> Vec<IndexModel> {
    let mut out = Vec::new();
    while cursor.advance().await.unwrap() {
        out.push(cursor.deserialize_current().unwrap());
    }
    out
}

#[tokio::test]
async fn cas_from_eight_tasks_never_double_applies() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let store = Arc::new(store_in(server, &collection("cas")).await);
    let counter = key("counter");
    assert!(
        store
            .compare_and_swap(&counter, None, Some(b("0")), SetOptions::default())
            .await
            .unwrap()
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, counter) = (store.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut won = 0u32;
            while won < 25 {
                let current = store.get(&counter).await.unwrap().unwrap();
                let n: u32 = std::str::from_utf8(&current).unwrap().parse().unwrap();
                let next = Bytes::from((n + 1).to_string());
                if store
                    .compare_and_swap(&counter, Some(current), Some(next), SetOptions::default())
                    .await
                    .unwrap()
                {
                    won += 1;
                }
            }
            won
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 200);
    assert_eq!(store.get(&counter).await.unwrap(), Some(b("200")));
    store.collection().drop().await.unwrap();
}

/// A document written through `collection()` whose value is not kv's
/// (a string where kv keeps binary) is a present key that cannot be read:
/// the same rule as every backend with an escape hatch.
#[tokio::test]
async fn a_document_kv_cannot_read_is_a_present_key() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let store = store_in(server, &collection("foreign")).await;
    let coll = store.collection().clone_with_type::<Document>();
    kv_conformance::foreign::foreign_values_are_present_keys(&store, |key| {
        let coll = coll.clone();
        async move {
            coll.insert_one(doc! {"_id": key.as_str(), "v": "not kv's format"})
                .await
                .unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_standalone_server_is_not_atomic_and_says_so() {
    let Some(server) = kv_testkit::mongo_standalone().await else {
        return;
    };
    let (store, commands) = counted_store(server, &collection("standalone"), 100_000).await;
    assert_eq!(store.topology(), Topology::Standalone);
    let caps = store.capabilities();
    assert!(!caps.atomic_batch && !caps.snapshot_batch_get);
    assert!(caps.cas && caps.ttl && caps.ordered_list);
    store.batch_set(entries("s", 100)).await.unwrap();
    // Still one command, without a transaction.
    assert_eq!(commands.take(), counts(&[("update", 1)]));
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn a_replica_set_store_promises_atomic_batches_and_snapshots() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let store = store_in(server, &collection("caps")).await;
    let caps = store.capabilities();
    assert!(caps.atomic_batch && caps.snapshot_batch_get && caps.persistent);
    assert_eq!(caps.max_batch_ops, Some(100_000));
    // The longest key and the largest value still fit one document.
    let big = Bytes::from(vec![7u8; caps.max_value_bytes]);
    let long = key(&"k".repeat(1024));
    store
        .set(&long, big.clone(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&long).await.unwrap(), Some(big));
    let over = Bytes::from(vec![7u8; caps.max_value_bytes + 1]);
    let err = store
        .set(&long, over, SetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn scram_users_get_in_and_wrong_passwords_are_permission_denied() {
    let Some(server) = kv_testkit::private_mongo_with_auth("kvapp", "s3cret-Pa55").await else {
        return;
    };
    let with = |user: &str, password: &str| {
        let url = server
            .url()
            .replacen("mongodb://", &format!("mongodb://{user}:{password}@"), 1);
        format!("{url}&authSource=admin&serverSelectionTimeoutMS=5000")
    };

    let store = MongoStore::connect(&with("kvapp", "s3cret-Pa55"))
        .await
        .unwrap();
    store
        .set(&key("a"), b("1"), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap(), Some(b("1")));
    assert!(!format!("{store:?}").contains("s3cret-Pa55"));

    let err = MongoStore::connect(&with("kvapp", "wrong-Pa55w0rd"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("wrong-Pa55w0rd"), "{shown}");
    assert!(!shown.contains("s3cret-Pa55"), "{shown}");

    // Without credentials the server refuses the commands themselves.
    let err = MongoStore::connect(server.url()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

/// Only against a real mongod (`KV_TEST_MONGO_URL` or Docker): the test
/// server does not pin snapshot reads (it answers from the latest data), so
/// this property is only meaningful on MongoDB itself.
#[tokio::test]
async fn batch_get_reads_one_snapshot_on_real_mongod() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let store = Arc::new(store_in(server, &collection("snapshot")).await);
    let status: Document = store
        .client()
        .database("admin")
        .run_command(doc! {"serverStatus": 1})
        .await
        .unwrap();
    if status.contains_key("secantus") {
        kv_testkit::not_run(
            "batch_get_reads_one_snapshot_on_real_mongod",
            "the test server is SecantusDB, which does not pin snapshot reads; \
             this runs with a real mongod (KV_TEST_MONGO_URL or Docker)",
        );
        return;
    }
    let keys: Vec<Key> = (0..200).map(|i| key(&format!("s{i:04}"))).collect();
    let write = |round: u32| -> Vec<Entry> {
        keys.iter()
            .map(|k| Entry::new(k.clone(), round.to_string()))
            .collect()
    };
    store.batch_set(write(0)).await.unwrap();
    let writer = {
        let store = store.clone();
        let batches: Vec<Vec<Entry>> = (1..=200).map(write).collect();
        tokio::spawn(async move {
            for batch in batches {
                store.batch_set(batch).await.unwrap();
            }
        })
    };
    while !writer.is_finished() {
        let got = store.batch_get(&keys).await.unwrap();
        let first = got[0].clone();
        assert!(got.iter().all(|v| *v == first), "a torn read: {got:?}");
    }
    writer.await.unwrap();
    store.collection().drop().await.unwrap();
}

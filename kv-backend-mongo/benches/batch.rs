//! kv's MongoDB batches against the same commands written by hand with the
//! `mongodb` crate, in one run against one server.
//!
//! ```text
//! cargo bench -p anykv-mongo --bench batch          # full run
//! KV_BENCH_QUICK=1 cargo bench -p anykv-mongo --bench batch
//! KV_TEST_MONGO_URL=mongodb://host/?replicaSet=rs0 cargo bench ...   # your own server
//! ```
//!
//! For each batch size (1, 10, 100 keys, 1 KiB values) it times:
//! - kv: `batch_set`, `batch_get`, `batch_delete` through `MongoStore`;
//! - by hand: exactly the commands kv sends, the way a careful user writes
//!   them with the driver: a session, `start_transaction`, one `update`
//!   command of replacement upserts, `commit_transaction`; one `find` with
//!   `$in` and the expiry filter; the two `delete` commands (live keys
//!   counted, expired ones removed) in a transaction;
//!
//! and batch-100 against 100 single `set`/`get` calls. Both contenders share
//! one client (kv's). Rounds are interleaved in a rotating order, each
//! block after a short pause (`race_paced`), and the median round is
//! reported, as keys per second and as kv time / hand time (1.00 = same).

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use kv_backend_mongo::MongoStore;
use kv_backend_mongo::mongodb::bson::spec::BinarySubtype;
use kv_backend_mongo::mongodb::bson::{
    Bson, DateTime, RawArrayBuf, RawBinaryRef, RawBsonRef, RawDocumentBuf, doc,
};
use kv_backend_mongo::mongodb::{Collection, Database};
use kv_core::backend::stamp::now_millis;
use kv_core::{Entry, Key, KvStore};
use kv_testkit::bench::{Stock, batch_against_single_calls, calls, quick, race_paced, report_row};

const VALUE_BYTES: usize = 1024;

/// A pause before each timed block, so one contender's work does not spill
/// into the next one's timing.
const PAUSE: Duration = Duration::from_millis(2);

fn main() {
    let quick = quick();
    let server = kv_testkit::server_blocking(kv_testkit::Kind::Mongo).expect("a MongoDB server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(server.url(), quick));
}

async fn run(url: &str, quick: bool) {
    let store = MongoStore::builder()
        .url(url)
        .collection("bench")
        .connect()
        .await
        .unwrap();
    let coll: Collection<RawDocumentBuf> = store.collection().clone();
    let db: Database = store.client().database(coll.namespace().db.as_str());
    let rounds = if quick { 5 } else { 21 };
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let build_info = db.run_command(doc! {"buildInfo": 1}).await.unwrap();
    let version = build_info.get_str("version").unwrap_or("?");
    let status = db.run_command(doc! {"serverStatus": 1}).await.unwrap();
    // SecantusDB, the testkit's stand-in, says who it is in serverStatus.
    let build = match status.get_document("secantus") {
        Ok(secantus) => format!(
            "SecantusDB {} reporting MongoDB {version}",
            secantus.get_str("version").unwrap_or("?")
        ),
        Err(_) => format!("MongoDB {version}"),
    };

    println!(
        "kv-backend-mongo batch benchmark: {build} ({:?}), values {VALUE_BYTES} B, \
         median of {rounds} interleaved rounds",
        store.topology()
    );
    println!();
    println!("| op | batch | kv keys/s | by hand keys/s | kv/hand |");
    println!("|---|---:|---:|---:|---:|");
    for size in [1usize, 10, 100] {
        let ops = (if quick { 200 } else { 1_000 } / size).clamp(5, 100);
        let keys: Vec<Key> = (0..size)
            .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
            .collect();
        let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
        let entries = Stock::new(
            keys.iter()
                .map(|k| Entry::new(k.clone(), value.clone()))
                .collect::<Vec<Entry>>(),
            calls(rounds, ops),
        );

        let set_by_hand = || {
            Box::pin(async {
                let mut updates = RawArrayBuf::new();
                for name in &names {
                    let mut q = RawDocumentBuf::new();
                    q.append_ref("_id", *name);
                    let mut u = RawDocumentBuf::new();
                    u.append_ref("_id", *name);
                    u.append_ref(
                        "v",
                        RawBinaryRef {
                            subtype: BinarySubtype::Generic,
                            bytes: &value,
                        },
                    );
                    // The document's version, as kv writes it.
                    u.append("r", mongodb::bson::oid::ObjectId::new());
                    let mut statement = RawDocumentBuf::new();
                    statement.append("q", q);
                    statement.append("u", u);
                    statement.append("upsert", true);
                    updates.push(statement);
                }
                let mut command = RawDocumentBuf::new();
                command.append_ref("update", coll.name());
                command.append("updates", updates);
                command.append("ordered", true);
                let mut session = db.client().start_session().await.unwrap();
                session.start_transaction().await.unwrap();
                let reply = db
                    .run_raw_command(command)
                    .session(&mut session)
                    .await
                    .unwrap();
                assert!(!reply.contains_key("writeErrors"));
                session.commit_transaction().await.unwrap();
            })
        };
        let [kv_time, hand, again] = race_paced(
            rounds,
            ops,
            PAUSE,
            [
                &|| Box::pin(async { store.batch_set(entries.take()).await.unwrap() }),
                &|| set_by_hand(),
                &|| set_by_hand(),
            ],
        )
        .await;
        report_row("batch_set", size, ops, kv_time, hand);
        report_row("batch_set (A/A: hand vs hand)", size, ops, hand, again);

        let get_by_hand = || {
            Box::pin(async {
                let ids: Vec<Bson> = names.iter().map(|n| Bson::from(*n)).collect();
                let now = DateTime::from_millis(now_millis() as i64);
                let mut cursor = coll
                    .find(doc! {"_id": {"$in": ids}, "e": {"$not": {"$lte": now}}})
                    .projection(doc! {"v": 1})
                    .limit(size as i64)
                    .batch_size(size as u32)
                    .await
                    .unwrap();
                let mut found = std::collections::HashMap::with_capacity(size);
                while cursor.advance().await.unwrap() {
                    let doc = cursor.current();
                    let id = doc.get_str("_id").unwrap().to_owned();
                    if let Ok(Some(RawBsonRef::Binary(v))) = doc.get("v") {
                        found.insert(id, Bytes::copy_from_slice(v.bytes));
                    }
                }
                let values: Vec<Option<Bytes>> =
                    names.iter().map(|n| found.get(*n).cloned()).collect();
                assert_eq!(values.len(), size);
            })
        };
        let [kv_time, hand, again] = race_paced(
            rounds,
            ops,
            PAUSE,
            [
                &|| {
                    Box::pin(async {
                        assert_eq!(store.batch_get(&keys).await.unwrap().len(), size)
                    })
                },
                &|| get_by_hand(),
                &|| get_by_hand(),
            ],
        )
        .await;
        report_row("batch_get", size, ops, kv_time, hand);
        report_row("batch_get (A/A: hand vs hand)", size, ops, hand, again);

        // Each op deletes keys that no longer exist after the first, the
        // same for both contenders.
        let delete_by_hand = || {
            Box::pin(async {
                let now = DateTime::from_millis(now_millis() as i64);
                let deletes = |e: Bson| {
                    let statements: Vec<Bson> = names
                        .iter()
                        .map(|n| Bson::from(doc! {"q": {"_id": *n, "e": e.clone()}, "limit": 0}))
                        .collect();
                    doc! {"delete": coll.name(), "deletes": statements, "ordered": true}
                };
                let mut session = db.client().start_session().await.unwrap();
                session.start_transaction().await.unwrap();
                let live = db
                    .run_command(deletes(Bson::from(doc! {"$not": {"$lte": now}})))
                    .session(&mut session)
                    .await
                    .unwrap();
                db.run_command(deletes(Bson::from(doc! {"$lte": now})))
                    .session(&mut session)
                    .await
                    .unwrap();
                session.commit_transaction().await.unwrap();
                assert!(live.get_i32("n").unwrap() as usize <= size);
            })
        };
        let [kv_time, hand] = race_paced(
            rounds,
            ops,
            PAUSE,
            [
                &|| {
                    Box::pin(async {
                        assert!(store.batch_delete(&keys).await.unwrap() <= size as u64)
                    })
                },
                &|| delete_by_hand(),
            ],
        )
        .await;
        report_row("batch_delete", size, ops, kv_time, hand);
    }

    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("bench:{i:05}")).unwrap())
        .collect();
    batch_against_single_calls(&store, &keys, &value, rounds, if quick { 5 } else { 15 }).await;
    store.batch_delete(&keys).await.unwrap();
}

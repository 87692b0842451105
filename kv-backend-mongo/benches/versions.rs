//! kv's versions, counters and transactions on MongoDB against the same
//! commands written by hand with the driver, in one run against one server.
//!
//! ```text
//! cargo bench -p anykv-mongo --bench versions
//! KV_BENCH_QUICK=1 cargo bench -p anykv-mongo --bench versions
//! ```
//!
//! A kv counter is the decimal text in `v` (every client reads it), so
//! `$inc` cannot add to it: kv's increment reads the document and replaces
//! it conditioned on its version `r`, as does a versioned update. By hand,
//! each row does the same with the driver:
//!
//! - `increment`: `Kv::increment` against `find_one` then an `update`
//!   command whose filter names `r`, with a new ObjectId;
//! - `versioned update`: `get_versioned` then `write_if`, against the same
//!   `find_one` and conditional replacement;
//! - `2-key transaction` (replica sets): `batch_get_versioned` then
//!   `transact`, against a `find` of both, then in one transaction the
//!   lock `update` of both, a `find` of both, the replacing `update`, the
//!   commit.
//!
//! Rounds are interleaved, each timed block after a short pause; the
//! median round is reported.

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use kv_backend_mongo::MongoStore;
use kv_core::{Key, KvStore, SetOptions};
use kv_testkit::bench::{
    kv_transaction, kv_versioned_update, quick, race_paced, report_op, versions_header,
};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, RawBsonRef, RawDocumentBuf, doc};
use mongodb::{Collection, Database};

const PAUSE: Duration = Duration::from_millis(2);

fn main() {
    let server = kv_testkit::server_blocking(kv_testkit::Kind::Mongo).expect("a MongoDB server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(server.url(), quick()));
}

fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

/// `{_id, v, r}` with a new version.
fn stored(id: &str, value: &[u8]) -> Document {
    doc! {"_id": id, "v": binary(value), "r": ObjectId::new()}
}

/// The value and version of a document, by hand.
async fn read(coll: &Collection<RawDocumentBuf>, id: &str) -> (Vec<u8>, Bson) {
    let found = coll
        .find_one(doc! {"_id": id, "e": {"$not": {"$lte": mongodb::bson::DateTime::now()}}})
        .projection(doc! {"v": 1, "r": 1})
        .await
        .unwrap()
        .unwrap();
    let value = match found.get("v").unwrap() {
        Some(RawBsonRef::Binary(b)) => b.bytes.to_vec(),
        _ => panic!("a value"),
    };
    let version = match found.get("r").unwrap() {
        Some(RawBsonRef::ObjectId(id)) => Bson::ObjectId(id),
        _ => panic!("a version"),
    };
    (value, version)
}

/// Replaces `id` with `value` if it is still at `version`, by hand.
async fn replace_at(db: &Database, coll: &str, id: &str, value: &[u8], version: Bson) {
    let reply = db
        .run_command(doc! {
            "update": coll,
            "updates": [{"q": {"_id": id, "r": version}, "u": stored(id, value), "upsert": false}],
            "ordered": true,
        })
        .await
        .unwrap();
    assert_eq!(reply.get_i32("n").unwrap_or(0), 1);
}

async fn run(url: &str, quick: bool) {
    let store = MongoStore::builder()
        .url(url)
        .collection("bench_versions")
        .connect()
        .await
        .unwrap();
    let coll: Collection<RawDocumentBuf> = store.collection().clone();
    let name = coll.name().to_owned();
    let db: Database = store.client().database(coll.namespace().db.as_str());
    let rounds = if quick { 5 } else { 21 };
    let ops = if quick { 30 } else { 100 };
    versions_header(
        &format!("kv-backend-mongo ({:?})", store.topology()),
        rounds,
    );

    let kv_counter = key("counter:kv");
    store
        .increment(&kv_counter, 1, SetOptions::default())
        .await
        .unwrap();
    db.run_command(doc! {"update": &name, "updates": [{"q": {"_id": "counter:hand"}, "u": stored("counter:hand", b"1"), "upsert": true}]})
        .await
        .unwrap();
    let [kv, hand] = race_paced(
        rounds,
        ops,
        PAUSE,
        [
            &|| {
                Box::pin(async {
                    store
                        .increment(&kv_counter, 1, SetOptions::default())
                        .await
                        .unwrap();
                })
            },
            &|| {
                Box::pin(async {
                    let (text, version) = read(&coll, "counter:hand").await;
                    let n: i64 = std::str::from_utf8(&text).unwrap().parse().unwrap();
                    let next = (n + 1).to_string();
                    replace_at(&db, &name, "counter:hand", next.as_bytes(), version).await;
                })
            },
        ],
    )
    .await;
    report_op("increment", ops, kv, hand);

    let value = Bytes::from(vec![b'x'; 100]);
    let kv_doc = key("doc:kv");
    store
        .set(&kv_doc, value.clone(), SetOptions::default())
        .await
        .unwrap();
    db.run_command(doc! {"update": &name, "updates": [{"q": {"_id": "doc:hand"}, "u": stored("doc:hand", &value), "upsert": true}]})
        .await
        .unwrap();
    let [kv, hand] = race_paced(
        rounds,
        ops,
        PAUSE,
        [&|| Box::pin(kv_versioned_update(&store, &kv_doc)), &|| {
            Box::pin(async {
                let (old, version) = read(&coll, "doc:hand").await;
                replace_at(&db, &name, "doc:hand", &old, version).await;
            })
        }],
    )
    .await;
    report_op(
        "versioned update (read, then write at the version)",
        ops,
        kv,
        hand,
    );

    if !store.capabilities().transactions {
        println!("| 2-key transaction | (a standalone server has no transactions) | | |");
        return;
    }
    let kv_pair = [key("pair:kv:a"), key("pair:kv:b")];
    for k in &kv_pair {
        store
            .set(k, value.clone(), SetOptions::default())
            .await
            .unwrap();
    }
    let hand_pair = ["pair:hand:a", "pair:hand:b"];
    for id in hand_pair {
        db.run_command(doc! {"update": &name, "updates": [{"q": {"_id": id}, "u": stored(id, &value), "upsert": true}]})
            .await
            .unwrap();
    }
    let [kv, hand] = race_paced(
        rounds,
        ops,
        PAUSE,
        [
            &|| Box::pin(kv_transaction(&store, &kv_pair, &value)),
            &|| {
                Box::pin(async {
                    let mut before = Vec::new();
                    for id in hand_pair {
                        before.push(read(&coll, id).await.1);
                    }
                    let mut session = store.client().start_session().await.unwrap();
                    session.start_transaction().await.unwrap();
                    db.run_command(doc! {
                        "update": &name,
                        "updates": hand_pair.iter().map(|id| doc! {
                            "q": {"_id": *id},
                            "u": {"$inc": {"l": 1}, "$setOnInsert": {"v": binary(b""), "e": mongodb::bson::DateTime::from_millis(0)}},
                            "upsert": true,
                        }).collect::<Vec<_>>(),
                    })
                    .session(&mut session)
                    .await
                    .unwrap();
                    let mut cursor = coll
                        .find(doc! {"_id": {"$in": hand_pair.to_vec()}})
                        .projection(doc! {"e": 1, "r": 1})
                        .session(&mut session)
                        .await
                        .unwrap();
                    let mut now = Vec::new();
                    while cursor.advance(&mut session).await.unwrap() {
                        if let Ok(Some(RawBsonRef::ObjectId(id))) = cursor.current().get("r") {
                            now.push(Bson::ObjectId(id));
                        }
                    }
                    drop(cursor);
                    assert_eq!(now, before);
                    db.run_command(doc! {
                        "update": &name,
                        "updates": hand_pair.iter().map(|id| doc! {
                            "q": {"_id": *id}, "u": stored(id, &value), "upsert": true,
                        }).collect::<Vec<_>>(),
                        "ordered": true,
                    })
                    .session(&mut session)
                    .await
                    .unwrap();
                    session.commit_transaction().await.unwrap();
                })
            },
        ],
    )
    .await;
    report_op(
        "2-key transaction (read both versions, check, write both)",
        ops,
        kv,
        hand,
    );
    coll.drop().await.unwrap();
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

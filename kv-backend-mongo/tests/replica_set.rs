//! A real MongoDB replica set of three members, its primary stepped down
//! twice while batches are written: every batch lands whole or not at all
//! (transactions retried by the store), every failure is temporary, and
//! the same store carries on with the new primary.
//!
//! It needs a real multi-member set, which this repository's CI machine
//! cannot have (no `mongod` package; the test server has one member): it
//! runs when `KV_TEST_MONGO_RS_URL` names one (for example three `mongod
//! --replSet rs0` initiated together), and says loudly that it did not run
//! otherwise.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use kv_backend_mongo::MongoStore;
use kv_backend_mongo::mongodb::bson::doc;
use kv_conformance::disruption::batches_stay_whole_while;
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stepping_down_the_primary_during_batches_loses_nothing_and_splits_no_batch() {
    let Some(url) = std::env::var("KV_TEST_MONGO_RS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        println!(
            "\n!!!!!!!!!! NOT RUN: the MongoDB step-down test needs a real replica set of three \
             members; set KV_TEST_MONGO_RS_URL (e.g. mongodb://h1,h2,h3/?replicaSet=rs0) !!!!!!!!!!\n"
        );
        return;
    };
    let store = MongoStore::builder()
        .url(&url)
        .collection("stepdown")
        .connect()
        .await
        .unwrap();
    assert!(
        store.capabilities().atomic_batch,
        "not a replica set: {url}"
    );
    let hosts = store
        .client()
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
        .unwrap();
    let members = hosts.get_array("hosts").map_or(0, Vec::len);
    assert!(
        members >= 3,
        "a step-down needs at least three members, this set has {members}"
    );

    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new(format!("stepdown:{i:03}")).unwrap())
        .collect();
    let admin = store.client().database("admin");
    let step_down_twice = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The primary closes its connections as it steps down: the
            // command's own answer may be lost.
            let _ = admin
                .run_command(doc! {"replSetStepDown": 10, "secondaryCatchUpPeriodSecs": 5})
                .await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    };
    let kinds = [ErrorKind::Unavailable, ErrorKind::Timeout];
    let failed = batches_stay_whole_while(&store, &keys, &kinds, step_down_twice).await;
    store
        .set(
            &Key::new("stepdown:after").unwrap(),
            "1".into(),
            SetOptions::default(),
        )
        .await
        .unwrap();
    println!(
        "MongoDB replica set of {members}: two step-downs, {failed} batches failed (temporary), none partial"
    );
    let mut all = keys.clone();
    all.push(Key::new("stepdown:after").unwrap());
    store.batch_delete(&all).await.unwrap();
}

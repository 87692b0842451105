//! A real MongoDB replica set of three members, its primary stepped down
//! twice while batches are written: every batch lands whole or not at all
//! (transactions retried by the store), every failure is temporary, and
//! the same store carries on with the new primary.
//!
//! It needs a real multi-member set: `KV_TEST_MONGO_RS_URL`, or three
//! `mongod` started here when `mongod` and `mongosh` are on PATH. This
//! repository's CI machine has neither (no `mongod` package), so there it
//! says loudly that it did not run.
//!
//! What every machine runs: the one-member set of the test server stepped
//! down by force (`replSetStepDown` with `force: true`, which a real
//! one-member `mongod` obeys the same way): during each window the node is
//! a secondary and refuses writes with `NotWritablePrimary`, then it is
//! primary again. Batches wait or fail temporarily, none is split.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::time::Duration;

use kv_backend_mongo::MongoStore;
use kv_backend_mongo::mongodb::bson::doc;
use kv_conformance::disruption::batches_stay_whole_while;
use kv_core::{ErrorKind, Key, KvStore, SetOptions};

/// Whether the node answers `hello` as a writable primary (an error counts
/// as not yet).
async fn is_writable_primary(admin: &kv_backend_mongo::mongodb::Database) -> bool {
    admin
        .run_command(doc! {"hello": 1})
        .await
        .is_ok_and(|hello| hello.get_bool("isWritablePrimary").unwrap_or(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_step_down_of_a_one_member_set_splits_no_batch_and_the_store_carries_on() {
    let server = kv_testkit::private(kv_testkit::Kind::Mongo)
        .await
        .expect("a MongoDB test server");
    let store = MongoStore::builder()
        .url(server.url())
        .collection("forced_stepdown")
        .connect()
        .await
        .unwrap();
    assert!(store.capabilities().atomic_batch, "not a replica set");
    let keys: Vec<Key> = (0..20)
        .map(|i| Key::new(format!("stepdown:{i:03}")).unwrap())
        .collect();
    let admin = store.client().database("admin");
    let windows = std::cell::Cell::new(0);
    let step_down_twice = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            admin
                .run_command(doc! {"replSetStepDown": 2, "force": true})
                .await
                .unwrap();
            windows.set(windows.get() + 1);
            // Writes meet the window (2 s), then the primary again: at once
            // on the test server, after an election on mongod.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut waited = 0;
            while !is_writable_primary(&admin).await {
                waited += 1;
                assert!(
                    waited < 600,
                    "the node did not become primary again in 60 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let kinds = [ErrorKind::Unavailable, ErrorKind::Timeout];
    let failed = batches_stay_whole_while(&store, &keys, &kinds, step_down_twice).await;
    assert_eq!(windows.get(), 2);
    let after = Key::new("stepdown:after").unwrap();
    store
        .set(&after, "1".into(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(&after).await.unwrap(), Some("1".into()));
    println!(
        "MongoDB one-member set: two forced step-downs of 2 s, {failed} batches failed (temporary), none partial"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stepping_down_the_primary_during_batches_loses_nothing_and_splits_no_batch() {
    let Some(set) = kv_testkit::mongo_replica_set().await else {
        kv_testkit::not_run(
            "stepping_down_the_primary_during_batches_loses_nothing_and_splits_no_batch",
            "it needs a real replica set of three members; set KV_TEST_MONGO_RS_URL \
             (e.g. mongodb://h1,h2,h3/?replicaSet=rs0) or put mongod and mongosh on PATH",
        );
        return;
    };
    let url = set.url().to_owned();
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

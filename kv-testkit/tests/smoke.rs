//! One real round trip per server kind, with its native Rust driver.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use kv_testkit::Kind;

#[tokio::test]
async fn redis_answers_set_and_get() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("kv-testkit:smoke")
        .arg("ok")
        .query_async(&mut conn)
        .await
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("kv-testkit:smoke")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(got, "ok");
    let version: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(version.contains("redis_version:"), "{version}");
}

#[tokio::test]
async fn postgres_answers_a_query_in_a_transaction() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(server.url())
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE smoke (k text COLLATE \"C\" PRIMARY KEY, v bytea)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO smoke SELECT * FROM UNNEST($1::text[], $2::bytea[])")
        .bind(vec!["a", "b"])
        .bind(vec![b"1".to_vec(), b"2".to_vec()])
        .execute(&mut *tx)
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM smoke")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 2);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn etcd_answers_put_and_get() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let mut client = etcd_client::Client::connect([server.url()], None)
        .await
        .unwrap();
    client.put("kv-testkit/smoke", "ok", None).await.unwrap();
    let resp = client.get("kv-testkit/smoke", None).await.unwrap();
    assert_eq!(resp.kvs()[0].value(), b"ok");
    assert!(
        server.kv_url().starts_with("etcd://127.0.0.1:")
            || server.source() != kv_testkit::Source::Local
    );
}

#[tokio::test]
async fn mongo_answers_and_commits_a_transaction() {
    use mongodb::bson::{Document, doc};

    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let client = mongodb::Client::with_uri_str(server.url()).await.unwrap();
    let hello = client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
        .unwrap();
    assert!(
        hello.get_str("setName").is_ok(),
        "not a replica set: {hello}"
    );
    let coll = client
        .database("kv_testkit")
        .collection::<Document>("smoke");
    coll.delete_many(doc! {}).await.unwrap();
    let mut session = client.start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    coll.insert_one(doc! {"_id": "a", "v": 1})
        .session(&mut session)
        .await
        .unwrap();
    session.commit_transaction().await.unwrap();
    let found = coll.find_one(doc! {"_id": "a"}).await.unwrap().unwrap();
    assert_eq!(found.get_i32("v").unwrap(), 1);
}

#[tokio::test]
async fn mysql_answers_a_query_in_a_transaction() {
    let Some(server) = kv_testkit::mysql().await else {
        return;
    };
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .connect(server.url())
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "CREATE TEMPORARY TABLE smoke (k VARBINARY(1024) PRIMARY KEY, v LONGBLOB) ENGINE = InnoDB",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO smoke VALUES (?, ?), (?, ?)")
        .bind("a")
        .bind(b"1".to_vec())
        .bind("b")
        .bind(b"2".to_vec())
        .execute(&mut *tx)
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM smoke")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 2);
    tx.rollback().await.unwrap();
    let (version,): (String,) = sqlx::query_as("SELECT VERSION()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!version.is_empty());
    assert!(server.url().starts_with("mysql://") && server.url().ends_with("/kv"));
}

#[test]
fn kinds_name_their_env_vars() {
    let vars: Vec<&str> = Kind::ALL.iter().map(|k| k.env_var()).collect();
    assert_eq!(
        vars,
        [
            "KV_TEST_REDIS_URL",
            "KV_TEST_POSTGRES_URL",
            "KV_TEST_ETCD_URL",
            "KV_TEST_MONGO_URL",
            "KV_TEST_MYSQL_URL"
        ]
    );
}

//! The todo service over real HTTP, on every backend compiled in: each
//! test starts the backend's server with kv-testkit (a local binary, or a
//! container when Docker answers, or `KV_TEST_*_URL`), serves the app on a
//! free port and drives it with reqwest.
//!
//! `cargo test -p todo-service --features redis` tests Redis only;
//! `--all-features` tests them all.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use reqwest::StatusCode;
use serde_json::{Value, json};
use todo_service::{Todo, TodoPage};

/// Serves the app for `url` on a free port; returns its base URL.
async fn serve(url: &str) -> String {
    let app = todo_service::connect(url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// GETs `url` and parses its JSON body.
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
) -> T {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Everything a client does, checked: create, page through, read, update
/// (concurrently, with no update lost), refuse bad input, delete.
async fn exercise(base: &str, backend: &str) {
    let http = reqwest::Client::new();
    let health: Value = get_json(&http, format!("{base}/health")).await;
    assert_eq!(health["backend"], backend, "{health}");

    // Create three; ids sort in creation order.
    let mut created = Vec::new();
    for title in ["write docs", "  run the suite ", "ship"] {
        let response = http
            .post(format!("{base}/todos"))
            .json(&json!({ "title": title }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let todo: Todo = response.json().await.unwrap();
        assert_eq!(todo.title, title.trim());
        assert!(!todo.done);
        created.push(todo);
        // Ids carry milliseconds: keep creations in distinct ones.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }

    // Two pages: 2, then 1, oldest first.
    let first: TodoPage = get_json(&http, format!("{base}/todos?limit=2")).await;
    assert_eq!(first.todos, created[..2]);
    let after = first.next.expect("a second page");
    let second: TodoPage = http
        .get(format!("{base}/todos"))
        .query(&[("limit", "2"), ("after", &after)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second.todos, created[2..]);
    assert_eq!(second.next, None);

    // Read one; a missing one is 404.
    let id = &created[0].id;
    let one: Todo = get_json(&http, format!("{base}/todos/{id}")).await;
    assert_eq!(&one, &created[0]);
    let missing = http.get(format!("{base}/todos/nope")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Ten requests change the title while one marks it done, all at once,
    // each in a task of its own. Each update is a compare-and-swap on what
    // it read, so a title change cannot write back a stale `done: false`.
    let patch = |body: Value| {
        let (http, url) = (http.clone(), format!("{base}/todos/{id}"));
        tokio::spawn(async move { http.patch(url).json(&body).send().await.unwrap().status() })
    };
    let renames: Vec<_> = (0..10)
        .map(|i| patch(json!({ "title": format!("title {i}") })))
        .collect();
    let finished = patch(json!({ "done": true })).await.unwrap();
    for rename in renames {
        let status = rename.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::CONFLICT,
            "{status}"
        );
    }
    let after_race: Todo = get_json(&http, format!("{base}/todos/{id}")).await;
    if finished == StatusCode::OK {
        assert!(after_race.done, "an update was lost: {after_race:?}");
    } else {
        assert_eq!(finished, StatusCode::CONFLICT);
    }
    println!("{backend}: after 11 concurrent updates: {after_race:?} (done's answer {finished})");

    // Bad input is refused and creates nothing.
    for body in [
        json!({ "title": "   " }),
        json!({ "title": "x".repeat(501) }),
    ] {
        let response = http
            .post(format!("{base}/todos"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("title"),
            "{error}"
        );
    }
    let all: TodoPage = get_json(&http, format!("{base}/todos")).await;
    assert_eq!(all.todos.len(), 3);

    // Delete all three; a second delete is 404.
    for todo in &created {
        let url = format!("{base}/todos/{}", todo.id);
        let response = http.delete(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let again = http.delete(&url).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_memory() {
    exercise(&serve("memory://").await, "memory").await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    exercise(&serve(server.url()).await, "redis").await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    exercise(&serve(server.url()).await, "postgres").await;
}

#[cfg(feature = "rocksdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocksdb://{}", dir.path().join("db").display());
    exercise(&serve(&url).await, "rocksdb").await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_etcd() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    exercise(&serve(&server.kv_url()).await, "etcd").await;
}

#[cfg(feature = "mongo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mongo() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    exercise(&serve(server.url()).await, "mongo").await;
}

/// A todo stored by an older version of the service, with a field this one
/// no longer has and other spacing, still updates: the update swaps against
/// the bytes it read, not the todo encoded again (which never matched).
#[tokio::test]
async fn a_todo_stored_by_an_older_version_still_updates() {
    let kv = kv::connect("memory://").await.unwrap();
    let old = br#"{"id": "t1", "title": "old", "done": false, "priority": 3}"#;
    kv.store()
        .set(
            &kv::Key::new("todos:t1").unwrap(),
            kv::Bytes::from_static(old),
            kv::SetOptions::default(),
        )
        .await
        .unwrap();
    let app = todo_service::app(&kv).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let response = reqwest::Client::new()
        .patch(format!("{base}/todos/t1"))
        .json(&json!({ "done": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let todo: Todo = response.json().await.unwrap();
    assert!(todo.done);
    assert_eq!(kv.get::<Todo>("todos:t1").await.unwrap(), Some(todo));
}

/// When the backend goes away the API says 503 with `Retry-After` (after
/// the retry layer gave up), and it answers again once the backend is back,
/// without a restart.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_backend_outage_is_503_with_retry_after_and_the_service_recovers() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let proxy = kv_testkit::FaultProxy::start(server.url()).await.unwrap();
    let base = serve(&proxy.url_for(server.url())).await;
    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    proxy.refuse(true);
    proxy.drop_connections();
    let down = http.get(format!("{base}/todos")).send().await.unwrap();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.headers()["retry-after"], "1");
    let body: Value = down.json().await.unwrap();
    println!("backend down: {body}");

    proxy.refuse(false);
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        status = http
            .get(format!("{base}/todos"))
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK, "the service did not recover");
}

/// The binary itself: `KV_URL` and `BIND` from the environment, a
/// redacted URL in its first line.
#[tokio::test]
async fn the_binary_serves_on_the_address_it_is_given() {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_todo-service"))
        .env("KV_URL", "memory://")
        .env("BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

//! Namespaces of the typed client: isolation, scoped clear, stripped lists.

use std::sync::Arc;

use kv_core::{ErrorKind, Key, Kv, KvStore, ListOptions};

use crate::support::{Space, assert_kind, live_keys};

fn root(store: &Arc<dyn KvStore>, s: &Space) -> Kv {
    // The namespace `<space>/` stores keys as `<space>/:key`, inside the space.
    Kv::new(store.clone())
        .namespace(s.prefix())
        .expect("valid namespace")
}

/// Two namespaces with the same keys do not see each other.
pub async fn namespaces_are_isolated(store: Arc<dyn KvStore>) {
    let s = Space::new("ns-iso");
    s.track(&[":users:1", ":orders:1"]);
    let root = root(&store, &s);
    let (users, orders) = (
        root.namespace("users").unwrap(),
        root.namespace("orders").unwrap(),
    );
    users.set("1", &"ada").await.unwrap();
    orders.set("1", &"book").await.unwrap();
    assert_eq!(
        users.get::<String>("1").await.unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(
        orders.get::<String>("1").await.unwrap().as_deref(),
        Some("book")
    );
    assert!(users.delete("1").await.unwrap());
    assert_eq!(
        orders.get::<String>("1").await.unwrap().as_deref(),
        Some("book")
    );
    assert!(!root.exists("1").await.unwrap());
    s.cleanup(&*store).await;
}

/// `clear` on a namespace removes exactly its keys, not those of a sibling
/// whose name it prefixes (`user` vs `users`).
pub async fn namespace_clear_removes_only_its_keys(store: Arc<dyn KvStore>) {
    if !store.capabilities().listing {
        return;
    }
    let s = Space::new("ns-clear");
    let root = root(&store, &s);
    let (user, users) = (
        root.namespace("user").unwrap(),
        root.namespace("users").unwrap(),
    );
    let n = store
        .capabilities()
        .max_batch_ops
        .map_or(2500, |m| m.min(100) * 3 + 1);
    let keys: Vec<String> = (0..n).map(|i| format!("{i:05}")).collect();
    for chunk in keys.chunks(store.capabilities().max_batch_ops.unwrap_or(n).min(1000)) {
        user.batch_set(chunk.iter().map(|k| (k.as_str(), 1)))
            .await
            .unwrap();
    }
    users.set("keep", &2).await.unwrap();
    root.set("user", &3).await.unwrap();
    assert_eq!(user.clear().await.unwrap(), n as u64);
    assert!(
        user.list("", ListOptions::default())
            .await
            .unwrap()
            .keys
            .is_empty()
    );
    assert_eq!(users.get::<i32>("keep").await.unwrap(), Some(2));
    assert_eq!(root.get::<i32>("user").await.unwrap(), Some(3));
    s.cleanup(&*store).await;
}

/// `list` in a namespace strips the prefix, pages and filters by a relative
/// prefix.
pub async fn namespace_list_strips_the_prefix(store: Arc<dyn KvStore>) {
    if !store.capabilities().listing {
        return;
    }
    let s = Space::new("ns-list");
    let root = root(&store, &s);
    let users = root.namespace("users").unwrap();
    users
        .batch_set([("b", 1), ("a", 2), ("a/x", 3)])
        .await
        .unwrap();
    root.set("users", &0).await.unwrap(); // a sibling key equal to the bare name
    root.set("users:", &0).await.unwrap(); // the bare prefix: no name inside the namespace
    let page = users
        .list("", ListOptions::default().limit(2))
        .await
        .unwrap();
    assert_eq!(page.keys, ["a", "a/x"]);
    let next = users
        .list(
            "",
            ListOptions {
                start_after: page.next,
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(next.keys, ["b"]);
    assert_eq!(next.next, None);
    assert_eq!(
        users.list("a", ListOptions::default()).await.unwrap().keys,
        ["a", "a/x"]
    );
    s.cleanup(&*store).await;
}

/// Nested namespaces compose to `a:b:key` in the underlying store.
pub async fn nested_namespaces_compose(store: Arc<dyn KvStore>) {
    let s = Space::new("ns-nest");
    s.track(&[":a:b:k"]);
    let root = root(&store, &s);
    let inner = root.namespace("a").unwrap().namespace("b").unwrap();
    inner.set("k", &1).await.unwrap();
    assert_eq!(root.get::<i32>("a:b:k").await.unwrap(), Some(1));
    let listed = live_keys(&*store, s.prefix(), 10).await;
    assert_eq!(listed, [Key::new(format!("{}:a:b:k", s.prefix())).unwrap()]);
    s.cleanup(&*store).await;
}

/// Batches and CAS in a namespace stay inside it.
pub async fn namespace_batches_and_cas_stay_inside(store: Arc<dyn KvStore>) {
    let s = Space::new("ns-batch");
    s.track(&[":x", ":ns:x", ":ns:y"]);
    let root = root(&store, &s);
    let ns = root.namespace("ns").unwrap();
    root.set("x", &"outside").await.unwrap();
    ns.batch_set([("x", "inside"), ("y", "inside")])
        .await
        .unwrap();
    assert_eq!(ns.batch_delete(["x"]).await.unwrap(), 1);
    assert_eq!(
        root.get::<String>("x").await.unwrap().as_deref(),
        Some("outside")
    );
    if store.capabilities().cas {
        assert!(
            ns.compare_and_swap("y", Some(&"inside"), Some(&"swapped"))
                .await
                .unwrap()
        );
        assert!(
            !ns.compare_and_swap("x", Some(&"outside"), Some(&"no"))
                .await
                .unwrap()
        );
    }
    s.cleanup(&*store).await;
}

/// The 1024-byte limit counts the namespace prefix; an empty name is
/// rejected.
pub async fn namespace_key_limit_counts_the_prefix(store: Arc<dyn KvStore>) {
    let s = Space::new("ns-limit");
    s.track(&[":n:", ":"]);
    let root = root(&store, &s);
    let ns = root.namespace("n").unwrap();
    assert_kind(ns.set("k".repeat(1024), &1).await, ErrorKind::InvalidKey);
    assert_kind(root.namespace(""), ErrorKind::InvalidKey);
    assert_kind(ns.set("", &1).await, ErrorKind::InvalidKey);
    assert!(live_keys(&*store, s.prefix(), 10).await.is_empty());
}

/// A typed batch or bulk writer made by one client and handed to another
/// (a namespace's batch to the root, the root's writer to a namespace) is
/// refused with `InvalidArgument` and writes nothing anywhere: it would
/// otherwise write the namespace's keys without their prefix.
pub async fn foreign_batches_and_writers_are_refused(store: Arc<dyn KvStore>) {
    let s = Space::new("ns-foreign");
    s.track(&["1", "2", "3", ":users:1", ":users:2", ":users:3"]);
    let root = root(&store, &s);
    let users = root.namespace("users").unwrap();

    let batch = users.batch().put("1", &"ada").delete("2");
    assert_kind(root.write_batch(batch).await, ErrorKind::InvalidArgument);
    let batch = root.batch().put("1", &"ada");
    assert_kind(users.write_batch(batch).await, ErrorKind::InvalidArgument);

    let report = users
        .bulk_set_with(&root.bulk_writer(), [("1", "ada"), ("3", "bob")], None)
        .await;
    assert!(!report.is_complete());
    assert_eq!(report.keys_written, 0);
    assert_kind(report.into_result(), ErrorKind::InvalidArgument);
    assert!(live_keys(&*store, s.prefix(), 100).await.is_empty());

    // The client's own batch and writer (and a clone's) write inside.
    users
        .clone()
        .write_batch(users.batch().put("1", &"ada"))
        .await
        .unwrap();
    let report = users
        .bulk_set_with(&users.clone().bulk_writer(), [("3", "bob")], None)
        .await;
    assert!(report.is_complete(), "{report:?}");
    let keys: Vec<String> = live_keys(&*store, s.prefix(), 100)
        .await
        .into_iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            format!("{}:users:1", s.prefix()),
            format!("{}:users:3", s.prefix())
        ]
    );
    s.cleanup(&*store).await;
}

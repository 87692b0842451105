//! The kv quickstart: typed values, a batch, a TTL, a paged list and a
//! compare-and-swap, on the in-memory backend (no server needed).
//!
//! ```text
//! cargo run --example quickstart                 # memory://
//! cargo run --example quickstart -- <url>        # any backend built in
//! ```

use std::time::Duration;

use kv::ListOptions;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    email: String,
    visits: u32,
}

fn user(name: &str) -> User {
    User {
        name: name.to_owned(),
        email: format!("{}@example.org", name.to_lowercase()),
        visits: 0,
    }
}

#[tokio::main]
async fn main() -> Result<(), kv::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".to_owned());
    let kv = kv::connect(&url).await?;
    println!(
        "connected: {} backend, {:?}",
        kv.store().backend(),
        kv.capabilities()
    );

    // Keep this demo's keys in their own namespace: `quickstart:...`.
    let kv = kv.namespace("quickstart")?;
    kv.clear().await?;

    // 1. Typed values: any serde type, JSON by default.
    kv.set("user:ada", &user("Ada")).await?;
    let ada: Option<User> = kv.get("user:ada").await?;
    println!("1. get user:ada -> {ada:?}");

    // 2. One batch write, one batch read (aligned with the keys), one batch delete.
    kv.batch_set([
        ("user:bob", user("Bob")),
        ("user:cy", user("Cy")),
        ("user:dee", user("Dee")),
    ])
    .await?;
    let found: Vec<Option<User>> = kv.batch_get(["user:bob", "user:nobody", "user:cy"]).await?;
    let names: Vec<Option<&str>> = found
        .iter()
        .map(|u| u.as_ref().map(|u| u.name.as_str()))
        .collect();
    println!("2. batch_get [bob, nobody, cy] -> {names:?}");
    let removed = kv.batch_delete(["user:dee", "user:nobody"]).await?;
    println!("   batch_delete [dee, nobody] removed {removed} live key(s)");

    // 3. A TTL: the key is gone for every read once it elapses.
    kv.set_with_ttl("session:42", &"token-abc", Duration::from_millis(200))
        .await?;
    println!(
        "3. session:42 exists now: {}",
        kv.exists("session:42").await?
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "   session:42 exists after 300 ms: {}",
        kv.exists("session:42").await?
    );

    // 4. A paged list: ascending byte order, each key exactly once.
    let mut cursor = None;
    let mut page_no = 1;
    loop {
        let page = kv
            .list(
                "user:",
                ListOptions {
                    start_after: cursor,
                    limit: Some(2),
                },
            )
            .await?;
        println!(
            "4. page {page_no}: {:?}",
            page.keys.iter().map(|k| k.as_str()).collect::<Vec<_>>()
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        page_no += 1;
    }

    // 5. Compare-and-swap: count a visit only if nobody changed the user meanwhile.
    let before = kv
        .get::<User>("user:ada")
        .await?
        .unwrap_or_else(|| user("Ada"));
    let after = User {
        visits: before.visits + 1,
        ..before.clone()
    };
    let swapped = kv
        .compare_and_swap("user:ada", Some(&before), Some(&after))
        .await?;
    let stale = kv
        .compare_and_swap("user:ada", Some(&before), Some(&after))
        .await?;
    println!("5. CAS with the current value: {swapped}; again with the stale value: {stale}");

    // 6. A typed write batch: puts (each with its own TTL) and deletes, applied together.
    let batch = kv
        .batch()
        .put("user:eve", &user("Eve"))
        .put_with_ttl("invite:eve", &"welcome", Duration::from_secs(3600))
        .delete("user:bob");
    kv.write_batch(batch).await?;
    println!(
        "6. after write_batch: {:?}",
        kv.list("", ListOptions::default()).await?.keys
    );

    let cleared = kv.clear().await?;
    println!("done: cleared {cleared} key(s) of the quickstart namespace");
    Ok(())
}

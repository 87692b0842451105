//! kv on Redis: the builder's options, a native batch, and the driver's own
//! connection for commands kv does not cover.
//!
//! ```text
//! redis-server --port 6379 &        # or: docker run -p 6379:6379 redis:7
//! cargo run --example redis --features redis -- redis://127.0.0.1:6379
//! ```
//!
//! `rediss://` speaks TLS; `redis://user:password@host/db` authenticates.

use std::time::Duration;

use kv::Kv;
use kv::redis::{RedisStore, redis};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());

    // Every key of this store lives under `example:`; its ordered index is
    // `example:` too, so two apps with different prefixes share a server.
    let store = RedisStore::builder()
        .url(&url)
        .key_prefix("example:")
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?;
    let conn = store.connection(); // the driver's multiplexed connection
    let kv = Kv::new(store.into_dyn());
    println!("Redis at {}", kv::redact_url(&url));

    // One MULTI/EXEC: all three keys are written, or none.
    kv.batch_set([("city:1", "Paris"), ("city:2", "Lima"), ("city:3", "Oslo")])
        .await?;
    // One MGET, aligned with the keys asked for.
    let cities: Vec<Option<String>> = kv.batch_get(["city:3", "city:9", "city:1"]).await?;
    println!("batch_get -> {cities:?}");

    // Listing is in byte order from the prefix's index, never KEYS or SCAN
    // with a glob: `*` here is a plain character.
    let page = kv
        .list("city:", kv::ListOptions::default().limit(2))
        .await?;
    println!(
        "first page -> {:?}, more: {}",
        page.keys,
        page.next.is_some()
    );

    // The driver itself, for what kv does not wrap.
    let mut raw = conn.clone();
    let version: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut raw)
        .await?;
    let version = version
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?");
    println!("server version {version}");

    let removed = kv.batch_delete(["city:1", "city:2", "city:3"]).await?;
    println!("removed {removed} keys");
    Ok(())
}

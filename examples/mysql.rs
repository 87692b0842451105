//! kv on MySQL or MariaDB: a table of its own, a batch as one multi-row
//! upsert, a transaction over two keys, and the sqlx pool for SQL of your
//! own.
//!
//! ```text
//! # MariaDB 10.11 (tested) or MySQL 8 (untested); for example: docker run -e MARIADB_ROOT_PASSWORD=pw -e MARIADB_DATABASE=kv -p 3306:3306 mariadb:10.11
//! cargo run --example mysql --features mysql -- mysql://root:pw@127.0.0.1:3306/kv
//! ```
//!
//! The URL names a database that exists. Add
//! `?ssl-mode=verify_identity&ssl-ca=ca.pem` for TLS.

use std::time::Duration;

use kv::Kv;
use kv::mysql::{MysqlStore, sqlx};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mysql://root:pw@127.0.0.1:3306/kv".to_owned());

    // One table is one store; it is created (with `<table>_meta`, the
    // version counter) when missing. Expired rows are invisible at once
    // and purged in the background.
    let store = MysqlStore::builder()
        .url(&url)
        .table("kv_example")
        .max_connections(4)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?;
    let pool = store.pool().clone();
    let table = store.table().to_owned();
    println!(
        "MySQL at {}, table {table}, max_allowed_packet {} B",
        kv::redact_url(&url),
        store.max_packet()
    );
    let kv = Kv::new(store.into_dyn());

    // One INSERT ... VALUES (...), (...) ON DUPLICATE KEY UPDATE: atomic.
    let accounts: Vec<(String, i64)> = (1..=100).map(|i| (format!("acct:{i:03}"), 100)).collect();
    kv.batch_set(accounts).await?;
    kv.set_with_ttl("acct:tmp", &0, Duration::from_secs(60))
        .await?;

    // A transfer: both rows locked (SELECT ... FOR UPDATE), checked and
    // written in one transaction.
    let (Some(a), Some(b)) = (
        kv.get_versioned::<i64>("acct:001").await?,
        kv.get_versioned::<i64>("acct:002").await?,
    ) else {
        return Err("the accounts were just written".into());
    };
    let outcome = kv
        .transaction()
        .check_version("acct:001", &a.version)
        .check_version("acct:002", &b.version)
        .put("acct:001", &(a.value - 30))
        .put("acct:002", &(b.value + 30))
        .commit()
        .await?;
    println!("transfer committed: {}", outcome.is_committed());
    let both: Vec<Option<i64>> = kv.batch_get(["acct:001", "acct:002", "acct:999"]).await?;
    println!("balances -> {both:?}");

    // Keys with `%` and `_` are literal: listing is a range, never LIKE.
    kv.set("100%_sure", &true).await?;
    let page = kv.list("100%", kv::ListOptions::default()).await?;
    println!("keys starting with `100%` -> {:?}", page.keys);

    // SQL of your own on the same pool.
    let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{table}`"))
        .fetch_one(&pool)
        .await?;
    println!("{rows} rows in {table}");

    kv.clear().await?; // everything this store holds
    Ok(())
}

//! kv on PostgreSQL: a table of its own, a batch as one UNNEST statement,
//! and the sqlx pool for SQL of your own.
//!
//! ```text
//! # any PostgreSQL 12+; for example: docker run -e POSTGRES_PASSWORD=pw -p 5432:5432 postgres:16
//! cargo run --example postgres --features postgres -- postgres://postgres:pw@127.0.0.1:5432/postgres
//! ```
//!
//! A packaged PostgreSQL (Debian, Ubuntu) refuses password-less logins over
//! TCP: give the user a password (`sudo -u postgres psql -c "ALTER USER
//! postgres PASSWORD 'pw'"`) and put it in the URL. Add
//! `?sslmode=verify-full&sslrootcert=ca.pem` for TLS.

use std::time::Duration;

use kv::Kv;
use kv::postgres::{PostgresStore, sqlx};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "postgres://postgres:pw@127.0.0.1:5432/postgres".to_owned());

    // One table is one store; it is created (with its expiry index) when
    // missing. Expired rows are invisible at once and purged in the
    // background.
    let store = PostgresStore::builder()
        .url(&url)
        .table("kv_example")
        .max_connections(4)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?;
    let pool = store.pool().clone();
    let table = store.table();
    let kv = Kv::new(store.into_dyn());
    println!("PostgreSQL at {}, table {table}", kv::redact_url(&url));

    // One INSERT ... SELECT FROM UNNEST(...) ON CONFLICT: atomic.
    let orders: Vec<(String, u32)> = (1..=100)
        .map(|i| (format!("order:{i:03}"), i * 10))
        .collect();
    kv.batch_set(orders).await?;
    kv.set_with_ttl("order:tmp", &0, Duration::from_secs(60))
        .await?;

    // Keys with `%` and `_` are literal: no LIKE wildcards anywhere.
    kv.set("100%_sure", &true).await?;
    let page = kv.list("100%", kv::ListOptions::default()).await?;
    println!("keys starting with `100%` -> {:?}", page.keys);

    // SQL of your own on the same pool.
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&pool)
        .await?;
    println!("{rows} rows in {table}");

    kv.clear().await?; // everything this store holds
    Ok(())
}

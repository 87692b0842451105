//! kv on MongoDB: a batch is one `update` command of upserts (and one
//! `delete` command) in one transaction on a replica set; a standalone
//! server has no transactions, and the store says so.
//!
//! ```text
//! # a replica set, even of one node: docker run -p 27017:27017 mongo:7 --replSet rs0
//! #   then once: docker exec <id> mongosh --eval 'rs.initiate()'
//! cargo run --example mongo --features mongo -- 'mongodb://127.0.0.1:27017/shop?directConnection=true'
//! ```

use kv::mongo::{MongoStore, mongodb::bson::doc};
use kv::{Kv, KvStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mongodb://127.0.0.1:27017/kv?directConnection=true".to_owned());

    // The database comes from the URL's path; one collection is one store.
    // The TTL index on the expiry field is created when missing.
    let store = MongoStore::builder()
        .url(&url)
        .collection("kv_example")
        .connect()
        .await?;
    let collection = store.collection().clone();
    println!(
        "MongoDB at {}: {:?}, atomic batches: {}",
        kv::redact_url(&url),
        store.topology(),
        store.capabilities().atomic_batch
    );
    let kv = Kv::new(store.into_dyn());

    // Keys that look like operators or regular expressions are plain `_id`s.
    kv.batch_set([
        ("cart:$where", 1),
        ("cart:.*", 2),
        ("cart:{\"$gt\":\"\"}", 3),
    ])
    .await?;
    let page = kv.list("cart:", kv::ListOptions::default()).await?;
    println!("listed -> {:?}", page.keys);

    // The driver's collection, for queries of your own: one document per key.
    let documents = collection.count_documents(doc! {}).await?;
    println!("{documents} documents in {}", collection.name());

    kv.clear().await?;
    Ok(())
}

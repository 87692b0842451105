//! kv on SQLite, embedded: no server, one file. Data survives a reopen;
//! two stores (or processes) may share the file, and a version written by
//! one guards the other's writes.
//!
//! ```text
//! cargo run --example sqlite --features sqlite                    # a temp file
//! cargo run --example sqlite --features sqlite -- ./data/kv.db    # a file of yours
//! ```
//!
//! SQLite is compiled in (no system package): the first build takes about
//! a minute.

use std::path::PathBuf;

use kv::Kv;
use kv::sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (path, temporary) = match std::env::args().nth(1) {
        Some(path) => (PathBuf::from(path), false),
        None => (
            std::env::temp_dir().join(format!("kv-example-{}.db", std::process::id())),
            true,
        ),
    };

    {
        // The durable default: every commit is fsynced (synchronous = FULL).
        let kv = Kv::new(SqliteStore::open(&path).await?.into_dyn());
        // One transaction: atomic, and durable as a whole.
        let batch = kv.batch().put("a", &1).put("b", &2).delete("c");
        kv.write_batch(batch).await?;
        println!("wrote a and b to {}", path.display());
    } // the store is closed here

    let kv = Kv::new(SqliteStore::open(&path).await?.into_dyn());
    let values: Vec<Option<u32>> = kv.batch_get(["a", "b", "c"]).await?;
    println!("after reopening -> {values:?}");

    // A second store on the same file: it sees the first one's writes, and
    // the version it reads guards a write against the first store's.
    let other = Kv::new(SqliteStore::open(&path).await?.into_dyn());
    let seen = other
        .get_versioned::<u32>("a")
        .await?
        .ok_or("a is missing")?;
    kv.set("a", &10).await?;
    let stale = other
        .set_if("a", kv::Condition::Version(seen.version), &11)
        .await?;
    println!("a write at a version another store changed: applied = {stale}");
    println!("a = {:?}", other.get::<u32>("a").await?);

    drop((kv, other));
    if temporary {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    Ok(())
}

//! kv on RocksDB, embedded: no server. Data survives a reopen; one process
//! owns the directory at a time.
//!
//! ```text
//! cargo run --example rocksdb --features rocksdb                 # a temp dir
//! cargo run --example rocksdb --features rocksdb -- ./data/kv    # a dir of yours
//! ```
//!
//! The first build compiles RocksDB's C++: about 20 minutes on 2 cores.

use std::path::PathBuf;

use kv::Kv;
use kv::rocksdb::RocksDbStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (path, temporary) = match std::env::args().nth(1) {
        Some(path) => (PathBuf::from(path), false),
        None => (
            std::env::temp_dir().join(format!("kv-example-{}", std::process::id())),
            true,
        ),
    };

    {
        // sync_writes: each write is on disk (fsync) before it returns.
        let store = RocksDbStore::builder(&path)
            .sync_writes(true)
            .open()
            .await?;
        let kv = Kv::new(store.into_dyn());
        // One WriteBatch: atomic, and durable as a whole.
        let batch = kv.batch().put("a", &1).put("b", &2).delete("c");
        kv.write_batch(batch).await?;
        println!("wrote a and b to {}", path.display());
    } // the store is closed here: its lock on the directory is released

    let store = RocksDbStore::builder(&path).open().await?;
    let kv = Kv::new(store.into_dyn());
    let values: Vec<Option<u32>> = kv.batch_get(["a", "b", "c"]).await?;
    println!("after reopening -> {values:?}");
    // batch_get reads one snapshot: the values belong to one moment.
    println!("snapshot reads: {}", kv.capabilities().snapshot_batch_get);

    drop(kv);
    if temporary {
        std::fs::remove_dir_all(&path)?;
    }
    Ok(())
}

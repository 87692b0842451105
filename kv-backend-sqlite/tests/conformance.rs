//! The whole conformance suite against SQLite: once with every case's
//! store opened on one shared file (so the cases also run as many stores
//! on one file, concurrently, with the default `synchronous = FULL`), and
//! once on a private in-memory database per case with the background purge
//! deleting expired rows every 500 ms.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kv_backend_sqlite::SqliteStore;
use kv_core::KvStore;

/// The shared file, under the target directory; removed once per run.
fn shared_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-conformance");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        dir.join("kv.db")
    })
}

async fn on_shared_file() -> Arc<dyn KvStore> {
    SqliteStore::builder()
        .path(shared_file())
        .purge_interval(None)
        .open()
        .await
        .expect("open the shared SQLite file")
        .into_dyn()
}

async fn in_memory() -> Arc<dyn KvStore> {
    SqliteStore::builder()
        .memory()
        .purge_interval(Some(Duration::from_millis(500)))
        .open()
        .await
        .expect("open an in-memory SQLite database")
        .into_dyn()
}

/// Expired rows stay: only the read filter hides them.
mod shared_file {
    kv_conformance::suite!(super::on_shared_file);
}

/// The purge deletes expired rows underneath.
mod memory {
    kv_conformance::suite!(super::in_memory);
}

//! What both SQLite benchmarks share: a store on a temp file, the
//! hand-written side's pools of the same shape, the clock, and fresh
//! versions for the hand-written writes.

use std::sync::atomic::{AtomicI64, Ordering};

use kv_backend_sqlite::SqliteStore;
use sqlx::SqlitePool;
use sqlx::sqlite::SqlitePoolOptions;

pub(crate) struct Bench {
    pub(crate) store: SqliteStore,
    /// One connection, as the store's writer.
    pub(crate) writer: SqlitePool,
    /// As the store's readers.
    pub(crate) readers: SqlitePool,
    next_version: AtomicI64,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// The store with the durable default (`synchronous = FULL`) and, on the
    /// same file with its connection options, pools of its shape.
    pub(crate) async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::builder()
            .path(dir.path().join("bench.db"))
            .purge_interval(None)
            .open()
            .await
            .unwrap();
        let options = store.connect_options();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .unwrap();
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options);
        Self {
            store,
            writer,
            readers,
            next_version: AtomicI64::new(1 << 40),
            _dir: dir,
        }
    }

    /// A new version per hand-written write, as kv's: a row rewritten with
    /// the very same bytes is not written at all by SQLite (nor synced).
    pub(crate) fn version(&self) -> i64 {
        self.next_version.fetch_add(1, Ordering::Relaxed)
    }
}

/// Milliseconds since the Unix epoch, as the store binds it.
pub(crate) fn now() -> i64 {
    i64::try_from(kv_core::backend::stamp::now_millis()).unwrap()
}

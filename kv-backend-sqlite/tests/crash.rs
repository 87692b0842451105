//! A process killed with SIGKILL while it writes batches (at 1 to 29 ms after
//! an acknowledged `batch_set`, so inside the next batch) leaves every
//! acknowledged batch wholly present on reopen, and never part of one, with
//! the default `synchronous = FULL`. Each batch of 300 keys is two upsert
//! statements in one `BEGIN IMMEDIATE` transaction, so a partial batch is
//! possible only if the transaction is not atomic. The harness is
//! `kv_testkit::crash`; the writer is this test binary run again as a child
//! process.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::path::PathBuf;
use std::sync::Arc;

use kv_backend_sqlite::SqliteStore;
use kv_core::KvStore;

async fn open(path: PathBuf) -> Arc<dyn KvStore> {
    SqliteStore::open(path).await.unwrap().into_dyn()
}

/// Not a test of its own: the child that writes until it is killed.
#[test]
#[ignore = "run by sigkill_inside_batch_set_never_leaves_part_of_a_batch in a child process"]
fn writer() {
    kv_testkit::crash::write_until_killed(open);
}

#[test]
fn sigkill_inside_batch_set_never_leaves_part_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    kv_testkit::crash::sigkill_during_batch_sets("writer", &dir.path().join("kv.db"), open);
}

//! The crash test of the embedded backends (RocksDB, SQLite): a writer
//! process killed with SIGKILL inside a `batch_set` leaves every
//! acknowledged batch wholly present on reopen, and never part of one.
//!
//! The writer is the test binary itself, run again as a child process on
//! one of its ignored tests, which calls [`write_until_killed`]; the test
//! calls [`sigkill_during_batch_sets`] with that test's name:
//!
//! ```no_run
//! use std::path::PathBuf;
//! use std::sync::Arc;
//! use kv_core::{KvStore, MemoryStore};
//!
//! async fn open(_path: PathBuf) -> Arc<dyn KvStore> {
//!     MemoryStore::new().into_dyn() // a real test opens the database at `path`
//! }
//!
//! // #[test] #[ignore = "the child process of the crash test"]
//! fn writer() {
//!     kv_testkit::crash::write_until_killed(open);
//! }
//!
//! // #[test]
//! fn sigkill_never_leaves_part_of_a_batch() {
//!     let path = std::env::temp_dir().join("crash-test-db");
//!     kv_testkit::crash::sigkill_during_batch_sets("writer", &path, open);
//! }
//! ```

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kv_core::{Entry, Key, KvStore};

/// The environment variable that hands the child its database path.
const PATH_VAR: &str = "KV_CRASH_DB";

/// How many keys each batch writes.
pub const KEYS: usize = 300;

fn keys() -> Vec<Key> {
    (0..KEYS)
        // `k000`..`k299` are valid keys.
        .map(|i| Key::new(format!("k{i:03}")).expect("a valid key"))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// The child: opens the store at the path the parent gave and writes
/// generations of [`KEYS`] keys (512 B values naming the generation) with
/// `batch_set` until it is killed, printing `ACK n` after each. Returns at
/// once when not run by [`sigkill_during_batch_sets`] (a plain
/// `--ignored` run).
///
/// # Panics
///
/// When the store fails to open or to write.
pub fn write_until_killed<F, Fut>(open: F)
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = Arc<dyn KvStore>>,
{
    let Some(path) = std::env::var_os(PATH_VAR) else {
        return;
    };
    runtime().block_on(async {
        let store = open(PathBuf::from(path)).await;
        for generation in 1u32.. {
            let value = format!("{generation:08}").repeat(64);
            let batch = keys()
                .into_iter()
                .map(|k| Entry::new(k, value.clone()))
                .collect();
            store.batch_set(batch).await.expect("batch_set");
            println!("ACK {generation}");
        }
    });
}

/// Runs the test binary's ignored test `child_test` (which calls
/// [`write_until_killed`]) on `path` five times, killing it with SIGKILL 1
/// to 29 ms after an acknowledgement (so inside the next batch), and
/// checks after each kill, through `open`, that every key holds the same
/// generation and that it is at least the last one acknowledged.
///
/// # Panics
///
/// When a batch survived in part, an acknowledged batch was lost, or the
/// child could not be run.
pub fn sigkill_during_batch_sets<F, Fut>(child_test: &str, path: &Path, open: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Arc<dyn KvStore>>,
{
    let exe = std::env::current_exe().expect("the test binary");
    for (attempt, delay_ms) in [1u64, 4, 9, 17, 29].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                child_test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PATH_VAR, path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the writer");
        let stdout = child.stdout.take().expect("the writer's stdout");
        let mut last_ack = 0u32;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line.split("ACK ").nth(1) {
                last_ack = n.trim().parse().expect("ACK n");
                if last_ack as usize >= 10 + attempt * 5 {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL the writer");
        child.wait().expect("reap the writer");
        assert!(last_ack > 0, "the writer never acknowledged a batch");

        runtime().block_on(async {
            let store = open(path.to_path_buf()).await;
            let values = store.batch_get(&keys()).await.expect("batch_get");
            let first = values[0]
                .clone()
                .expect("the acknowledged batches are present");
            assert!(
                values.iter().all(|v| v.as_ref() == Some(&first)),
                "a batch survived in part"
            );
            let generation: u32 = std::str::from_utf8(&first[..8])
                .ok()
                .and_then(|g| g.parse().ok())
                .expect("a generation");
            assert!(
                generation >= last_ack,
                "acknowledged batch {last_ack} was lost (found {generation})"
            );
        });
    }
}

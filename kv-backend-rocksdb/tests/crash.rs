//! A process killed with SIGKILL while it writes batches (at 1 to 29 ms after
//! an acknowledged `batch_set`, so inside the next batch) leaves every
//! acknowledged batch wholly present on reopen, and never part of one.
//! The writer is this test binary run again as a child process.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use kv_backend_rocksdb::RocksDbStore;
use kv_core::{Entry, Key, KvStore};

const KEYS: usize = 300;

fn keys() -> Vec<Key> {
    (0..KEYS)
        .map(|i| Key::new(format!("k{i:03}")).unwrap())
        .collect()
}

/// Not a test of its own: the child that writes until it is killed.
#[test]
#[ignore = "run by sigkill_after_batch_set_never_leaves_part_of_a_batch in a child process"]
fn writer() {
    let Ok(path) = std::env::var("KV_CRASH_DB") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = RocksDbStore::builder(path)
            .sync_writes(true)
            .open()
            .await
            .unwrap();
        for generation in 1u32.. {
            let value = format!("{generation:08}").repeat(64); // 512 B
            let batch = keys()
                .into_iter()
                .map(|k| Entry::new(k, value.clone()))
                .collect();
            store.batch_set(batch).await.unwrap();
            println!("ACK {generation}");
        }
    });
}

#[test]
fn sigkill_after_batch_set_never_leaves_part_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    // Kill at different points: right after an acknowledgement the next
    // batch is already being written, so a delay lands the SIGKILL inside it.
    for (attempt, delay_ms) in [1u64, 4, 9, 17, 29].into_iter().enumerate() {
        let attempt = attempt as u32;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KV_CRASH_DB", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut last_ack = 0u32;
        while let Some(Ok(line)) = lines.next() {
            if let Some(n) = line.split("ACK ").nth(1) {
                last_ack = n.trim().parse().unwrap();
                if last_ack >= 10 + attempt * 5 {
                    break;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(last_ack > 0, "the writer never acknowledged a batch");

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = RocksDbStore::builder(&path).open().await.unwrap();
            let values = store.batch_get(&keys()).await.unwrap();
            let first = values[0]
                .clone()
                .expect("the acknowledged batches are present");
            assert!(
                values.iter().all(|v| v.as_ref() == Some(&first)),
                "a batch survived in part"
            );
            let generation: u32 = std::str::from_utf8(&first[..8]).unwrap().parse().unwrap();
            assert!(
                generation >= last_ack,
                "acknowledged batch {last_ack} was lost (found {generation})"
            );
        });
    }
}

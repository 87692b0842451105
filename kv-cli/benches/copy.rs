//! The memory and speed of `kv copy`: 100,000 and 1,000,000 entries of
//! 100 B copied from the testkit's Redis to its PostgreSQL by the real
//! binary, its peak RSS read by `/usr/bin/time -v`.
//!
//! ```text
//! cargo bench -p anykv-cli --no-default-features --features redis,postgres --bench copy
//! KV_BENCH_QUICK=1 cargo bench -p anykv-cli --no-default-features --features redis,postgres --bench copy   # 20k and 100k
//! ```

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::process::Command;
use std::time::Instant;

use kv::{BulkWriter, Entry, Key, KvStoreExt};

const VALUE_BYTES: usize = 100;

fn main() {
    let quick = std::env::var("KV_BENCH_QUICK").is_ok_and(|v| v == "1");
    let sizes: [u64; 2] = if quick {
        [20_000, 100_000]
    } else {
        [100_000, 1_000_000]
    };
    let redis = kv_testkit::server_blocking(kv_testkit::Kind::Redis)
        .unwrap()
        .kv_url();
    let postgres = kv_testkit::server_blocking(kv_testkit::Kind::Postgres)
        .unwrap()
        .kv_url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("kv copy Redis -> PostgreSQL, values {VALUE_BYTES} B, default batch and concurrency");
    println!();
    println!("| entries | seconds | keys/s | peak RSS | RSS / smallest run |");
    println!("|---:|---:|---:|---:|---:|");
    let mut first_rss = None;
    for n in sizes {
        let prefix = format!("bench-copy/{}-{n}/", std::process::id());
        runtime.block_on(async {
            let src = kv::connect_store(&redis).await.unwrap();
            let value = kv::Bytes::from(vec![b'v'; VALUE_BYTES]);
            let loaded = BulkWriter::new(src)
                .write_iter((0..n).map(|i| {
                    Entry::new(Key::new(format!("{prefix}{i:08}")).unwrap(), value.clone())
                }))
                .await
                .into_result()
                .unwrap();
            assert_eq!(loaded.keys_written, n);
        });
        let started = Instant::now();
        let out = Command::new("/usr/bin/time")
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_kv"))
            .args([
                "--quiet", "--url", &redis, "copy", &prefix, "--to", &postgres,
            ])
            .output()
            .expect("/usr/bin/time (Debian package `time`)");
        let secs = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kv copy failed: {stderr}");
        let rss_kib: u64 = stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a peak RSS from /usr/bin/time -v");
        let base = *first_rss.get_or_insert(rss_kib);
        println!(
            "| {n} | {secs:.1} | {:.0} | {} MiB | {:.2} |",
            n as f64 / secs,
            rss_kib / 1024,
            rss_kib as f64 / base as f64
        );
        runtime.block_on(async {
            for url in [&redis, &postgres] {
                let store = kv::connect_store(url).await.unwrap();
                assert_eq!(store.clear(&prefix).await.unwrap(), n, "{url}");
            }
        });
    }
}

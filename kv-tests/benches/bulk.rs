//! The BulkWriter loading N entries of 100 B into each backend: keys/s,
//! the process's peak RSS at 100k and at 1M entries (each load in a child
//! process of its own, so the peaks are comparable), the server's and the
//! client's CPU while loading, and the same keys written by a loop of
//! single `set` calls at the same concurrency.
//!
//! ```text
//! cargo bench -p kv-tests --features full --bench bulk                      # every backend, 100k and 1M
//! KV_BENCH_QUICK=1 cargo bench -p kv-tests --features full --bench bulk     # 20k and 100k
//! cargo bench -p kv-tests --features full --bench bulk -- redis postgres    # some backends
//! cargo bench -p kv-tests --features redis,postgres,mysql,sqlite,etcd,mongo --bench bulk # without RocksDB's C++ build
//! ```
//!
//! Servers come from kv-testkit (`KV_TEST_*_URL`, Docker, or local binaries).

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly
#![allow(missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kv::{BulkWriter, Entry, Key, KvStore, SetOptions};

const VALUE_BYTES: usize = 100;
const CONCURRENCY: usize = kv::DEFAULT_CONCURRENCY;
/// The concurrency levels of the sweep that chose the default.
const SWEEP: [usize; 5] = [1, 2, 4, 8, 16];
const BACKENDS: [&str; 8] = [
    "memory", "redis", "postgres", "mysql", "rocksdb", "sqlite", "etcd", "mongo",
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    // A child: `--child <backend> <entries> <url>` loads and prints one line.
    if args.first().map(String::as_str) == Some("--child") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(child(
            &args[1],
            args[2].parse().unwrap(),
            &args[3],
            args[4].parse().unwrap(),
            args[5] == "singles",
        ));
        return;
    }
    let quick = std::env::var("KV_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (small, large) = if quick {
        (20_000, 100_000)
    } else {
        (100_000, 1_000_000)
    };
    let chosen: Vec<&str> = if args.is_empty() {
        BACKENDS.to_vec()
    } else {
        BACKENDS
            .iter()
            .copied()
            .filter(|b| args.iter().any(|a| a == b))
            .collect()
    };
    println!(
        "BulkWriter: values {VALUE_BYTES} B, concurrency {CONCURRENCY}, default chunk size; \
         each load in its own process; CPU as % of one core over the load"
    );
    println!();
    println!(
        "| backend | entries | keys/s | peak RSS | RSS large/small | server CPU | client CPU | single sets keys/s | bulk/singles |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let dir = tempfile::tempdir().unwrap();
    let mut targets = Vec::new();
    for backend in chosen {
        if backend == "rocksdb" && cfg!(not(feature = "rocksdb")) {
            println!("| rocksdb | (built without the rocksdb feature) | | | | | | | |");
            continue;
        }
        if backend == "mysql" && cfg!(not(feature = "mysql")) {
            println!("| mysql | (built without the mysql feature) | | | | | | | |");
            continue;
        }
        if backend == "sqlite" && cfg!(not(feature = "sqlite")) {
            println!("| sqlite | (built without the sqlite feature) | | | | | | | |");
            continue;
        }
        let url = match backend {
            "memory" => "memory://".to_owned(),
            "rocksdb" => format!("rocksdb://{}", dir.path().join("db").display()),
            "sqlite" => format!("sqlite://{}", dir.path().join("kv.db").display()),
            "redis" => server_url(kv_testkit::Kind::Redis),
            "postgres" => server_url(kv_testkit::Kind::Postgres),
            "mysql" => server_url(kv_testkit::Kind::Mysql),
            "etcd" => server_url(kv_testkit::Kind::Etcd),
            _ => server_url(kv_testkit::Kind::Mongo),
        };
        targets.push((backend, url));
    }
    for (backend, url) in &targets {
        let (backend, url) = (*backend, url.as_str());
        let small_run = run_child(backend, small, url, CONCURRENCY, true);
        let large_run = run_child(backend, large, url, CONCURRENCY, true);
        for (run, entries) in [(&small_run, small), (&large_run, large)] {
            println!(
                "| {backend} | {entries} | {:.0} | {:.0} MiB | {} | {} | {:.0}% | {} | {} |",
                run.keys_per_sec,
                run.peak_rss_kib as f64 / 1024.0,
                if entries == large {
                    format!(
                        "{:.2}",
                        large_run.peak_rss_kib as f64 / small_run.peak_rss_kib as f64
                    )
                } else {
                    String::new()
                },
                run.server_cpu
                    .map_or("-".to_owned(), |c| format!("{c:.0}%")),
                run.client_cpu,
                run.singles_per_sec
                    .map_or("-".to_owned(), |s| format!("{s:.0}")),
                run.singles_per_sec
                    .map_or("-".to_owned(), |s| format!("{:.1}x", run.keys_per_sec / s)),
            );
        }
    }
    // How the default concurrency was chosen: the same load at each level.
    println!();
    println!("Concurrency sweep, {small} entries, keys/s (the best level in bold):");
    println!();
    let header: Vec<String> = SWEEP.iter().map(|c| format!("{c} in flight")).collect();
    println!("| backend | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(SWEEP.len()));
    for (backend, url) in &targets {
        let rates: Vec<f64> = SWEEP
            .iter()
            .map(|c| run_child(backend, small, url, *c, false).keys_per_sec)
            .collect();
        let best = rates.iter().copied().fold(0.0, f64::max);
        let cells: Vec<String> = rates
            .iter()
            .map(|r| {
                if *r == best {
                    format!("**{r:.0}**")
                } else {
                    format!("{r:.0} ({:.0}%)", r / best * 100.0)
                }
            })
            .collect();
        println!("| {backend} | {} |", cells.join(" | "));
    }
}

fn server_url(kind: kv_testkit::Kind) -> String {
    kv_testkit::server_blocking(kind).unwrap().kv_url()
}

struct ChildRun {
    keys_per_sec: f64,
    peak_rss_kib: u64,
    server_cpu: Option<f64>,
    client_cpu: f64,
    singles_per_sec: Option<f64>,
}

fn run_child(
    backend: &str,
    entries: usize,
    url: &str,
    concurrency: usize,
    singles: bool,
) -> ChildRun {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--child",
            backend,
            &entries.to_string(),
            url,
            &concurrency.to_string(),
            if singles { "singles" } else { "bulk-only" },
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().find(|l| l.starts_with("RESULT ")).unwrap();
    let f: Vec<&str> = line.split_whitespace().skip(1).collect();
    let opt = |s: &str| (s != "-").then(|| s.parse().unwrap());
    ChildRun {
        keys_per_sec: f[0].parse().unwrap(),
        peak_rss_kib: f[1].parse().unwrap(),
        server_cpu: opt(f[2]),
        client_cpu: f[3].parse().unwrap(),
        singles_per_sec: opt(f[4]),
    }
}

async fn child(backend: &str, entries: usize, url: &str, concurrency: usize, singles: bool) {
    let store: Arc<dyn KvStore> = kv::connect_store(url).await.unwrap();
    let run = format!("bench-bulk/{}/", std::process::id());
    let value = bytes::Bytes::from(vec![b'x'; VALUE_BYTES]);
    let server_pid = server_pid(backend, url);
    let server_before = server_pid.map(cpu_ticks);
    let client_before = cpu_ticks(std::process::id());
    let started = Instant::now();
    let input =
        (0..entries).map(|i| Entry::new(Key::new(format!("{run}{i:08}")).unwrap(), value.clone()));
    let report = BulkWriter::new(store.clone())
        .concurrency(concurrency)
        .write_iter(input)
        .await;
    let elapsed = started.elapsed();
    assert!(report.is_complete(), "{:?}", report.failed.first());
    let server_cpu = server_pid
        .zip(server_before)
        .map(|(pid, before)| percent(cpu_ticks(pid) - before, elapsed));
    let client_cpu = percent(cpu_ticks(std::process::id()) - client_before, elapsed);
    let keys_per_sec = entries as f64 / elapsed.as_secs_f64();
    // The peak of the load itself, before the singles run below adds its
    // own keys (the memory backend holds them in this process).
    let peak = peak_rss_kib();

    // A loop of single sets, CONCURRENCY tasks, for a bounded time.
    let (singles_per_sec, singles) = if singles {
        let (rate, counts) = single_sets(&store, &run, &value).await;
        (Some(rate), counts)
    } else {
        (None, Vec::new())
    };
    // Clean up by point deletes of the keys written (a listing of the whole
    // run is O(collection) per page on the MongoDB test server).
    let loaded = (0..entries).map(|i| format!("{run}{i:08}"));
    let run_ref = run.as_str();
    let single_keys = singles
        .iter()
        .enumerate()
        .flat_map(|(t, n)| (0..*n).map(move |n| format!("{run_ref}single/{t}/{n:08}")));
    let deletes = loaded
        .chain(single_keys)
        .map(|k| kv::WriteOp::Delete(Key::new(k).unwrap()));
    let cleanup = BulkWriter::new(store.clone())
        .concurrency(concurrency)
        .write_iter(deletes)
        .await;
    assert!(cleanup.is_complete(), "{:?}", cleanup.failed.first());
    let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    println!(
        "RESULT {keys_per_sec:.1} {peak} {} {client_cpu:.1} {}",
        show(server_cpu),
        show(singles_per_sec)
    );
}

/// Keys per second of `set` calls from CONCURRENCY tasks for about 3 s,
/// and how many keys each task wrote.
async fn single_sets(store: &Arc<dyn KvStore>, run: &str, value: &bytes::Bytes) -> (f64, Vec<u64>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let (store, value, run) = (store.clone(), value.clone(), run.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < Duration::from_secs(3) {
                let key = Key::new(format!("{run}single/{t}/{n:08}")).unwrap();
                store
                    .set(&key, value.clone(), SetOptions::default())
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    let total: u64 = counts.iter().sum();
    (total as f64 / started.elapsed().as_secs_f64(), counts)
}

/// The local server process serving `url`: the one whose command line
/// names its port (testkit servers), else none (remote or embedded).
fn server_pid(backend: &str, url: &str) -> Option<u32> {
    let program = match backend {
        "redis" => "redis-server",
        "postgres" => "postgres",
        "mysql" => "mariadbd",
        "etcd" => "etcd",
        "mongo" => "python",
        _ => return None,
    };
    let port = url.rsplit(':').next()?.split(['/', '?']).next()?.to_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        // The server itself, not the testkit's watchdog shell around it.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim().starts_with(program) && cmdline.contains(&port) {
            found.push(pid);
        }
    }
    // PostgreSQL serves each connection from a child; its postmaster is
    // the one with the port on its command line: count the whole tree.
    found.into_iter().min()
}

/// utime + stime of `pid` and, for PostgreSQL-style servers, its children
/// that have exited (cutime + cstime) and its live children.
fn cpu_ticks(pid: u32) -> u64 {
    let own = stat_ticks(pid);
    let children: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| parent_of(*p) == Some(pid))
        .map(stat_ticks)
        .sum();
    own + children
}

fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn stat_ticks(pid: u32) -> u64 {
    let f = stat_fields(pid);
    // utime, stime, cutime, cstime are fields 14-17 (1-based), 11-14 here.
    (11..=14)
        .map(|i| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum()
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid).get(1).and_then(|p| p.parse().ok())
}

/// CPU `ticks` (at 100 Hz) over `elapsed`, as % of one core.
fn percent(ticks: u64, elapsed: Duration) -> f64 {
    ticks as f64 / 100.0 / elapsed.as_secs_f64() * 100.0
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

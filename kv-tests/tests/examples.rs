//! Every example runs, against live servers from `kv-testkit`: the
//! per-backend examples on their backend, the task examples (sessions,
//! rate limiter, bulk import) on each network backend too. `cargo test`
//! builds the examples before it runs any test; this runs their binaries.

#![cfg(all(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "rocksdb",
    feature = "sqlite",
    feature = "etcd",
    feature = "mongo"
))]
#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::path::PathBuf;
use std::process::Command;

use kv_testkit::TestServer;

/// The workspace root, where the facade (package `anykv`) and its
/// `examples/` are.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds every example once per test run (`cargo test --test examples`
/// alone would not, and would run stale binaries). The whole workspace, as
/// `cargo test --workspace --all-features` builds it: with the facade alone
/// selected, cargo unifies the build scripts' dependencies differently and
/// RocksDB's C++ would be compiled a second time (17 minutes here).
fn build_examples() {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--examples",
                "--all-features",
            ])
            .current_dir(workspace_root())
            .status()
            .unwrap();
        assert!(status.success(), "building the examples failed");
    });
}

/// Runs example `name` with `args`, prints its output, fails on a non-zero
/// exit.
fn run(name: &str, args: &[&str]) -> String {
    build_examples();
    // This test is target/debug/deps/examples-<hash>; examples are in
    // target/debug/examples/.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let program: PathBuf = dir.join("examples").join(name);
    assert!(
        program.exists(),
        "{} is missing: build the examples first (`cargo test` does; \
         `cargo build --workspace --examples --all-features` too)",
        program.display()
    );
    let out = Command::new(&program).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "$ {name} {args:?}\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "example {name} {args:?} failed: {out:?}"
    );
    stdout
}

fn etcd_endpoint(server: &TestServer) -> String {
    server.kv_url().trim_start_matches("etcd://").to_owned()
}

#[tokio::test]
async fn the_redis_example_runs() {
    let Some(server) = kv_testkit::redis().await else {
        return;
    };
    let out = run("redis", &[server.url()]);
    assert!(out.contains("removed 3 keys"), "{out}");
}

#[tokio::test]
async fn the_postgres_example_runs() {
    let Some(server) = kv_testkit::postgres().await else {
        return;
    };
    let out = run("postgres", &[server.url()]);
    assert!(out.contains("[\"100%_sure\"]"), "{out}");
}

#[tokio::test]
async fn the_mysql_example_runs() {
    let Some(server) = kv_testkit::mysql().await else {
        return;
    };
    let out = run("mysql", &[server.url()]);
    assert!(out.contains("transfer committed: true"), "{out}");
    assert!(
        out.contains("balances -> [Some(70), Some(130), None]"),
        "{out}"
    );
    assert!(out.contains("[\"100%_sure\"]"), "{out}");
}

#[tokio::test]
async fn the_rocksdb_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let out = run("rocksdb", &[path.to_str().unwrap()]);
    assert!(out.contains("[Some(1), Some(2), None]"), "{out}");
}

#[tokio::test]
async fn the_sqlite_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let out = run("sqlite", &[path.to_str().unwrap()]);
    assert!(out.contains("[Some(1), Some(2), None]"), "{out}");
    assert!(out.contains("applied = false"), "{out}");
    assert!(out.contains("a = Some(10)"), "{out}");
}

#[tokio::test]
async fn the_etcd_example_runs() {
    let Some(server) = kv_testkit::etcd().await else {
        return;
    };
    let out = run("etcd", &[&etcd_endpoint(server)]);
    assert!(out.contains("bulk: 1000 keys in"), "{out}");
}

#[tokio::test]
async fn the_mongo_example_runs() {
    let Some(server) = kv_testkit::mongo().await else {
        return;
    };
    let out = run("mongo", &[server.url()]);
    assert!(out.contains("atomic batches: true"), "{out}");
}

/// The task examples take a `kv::connect` URL; each runs on every network
/// backend (the bulk import not on the MongoDB test server, whose writes
/// are a thousand times slower than a real server's).
#[tokio::test]
async fn the_task_examples_run_on_every_network_backend() {
    let (Some(redis), Some(postgres), Some(mysql), Some(etcd), Some(mongo)) = (
        kv_testkit::redis().await,
        kv_testkit::postgres().await,
        kv_testkit::mysql().await,
        kv_testkit::etcd().await,
        kv_testkit::mongo().await,
    ) else {
        return;
    };
    let urls = [
        redis.url().to_owned(),
        postgres.url().to_owned(),
        mysql.url().to_owned(),
        etcd.kv_url(),
        mongo.url().to_owned(),
    ];
    for url in &urls {
        let out = run("session_store", &[url]);
        assert!(
            out.contains("a 300 ms session after 500 ms -> None"),
            "{out}"
        );
        let out = run("rate_limiter", &[url]);
        assert!(out.contains("-> 50 allowed"), "{out}");
    }
    for url in &urls[..4] {
        let out = run("bulk_import", &[url]);
        assert!(out.contains("200000 keys in "), "{out}");
    }
}

/// The two examples that need no server: the quickstart's tour on memory,
/// and every layer stacked, printing the Prometheus text of its calls.
#[test]
fn the_quickstart_and_layers_examples_run_on_memory() {
    let out = run("quickstart", &[]);
    assert!(out.contains("connected: memory backend"), "{out}");
    let out = run("layers", &[]);
    assert!(out.contains("kv_operations_total"), "{out}");
}

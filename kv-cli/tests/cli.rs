//! The real `kv` binary against RocksDB and SQLite in a temp dir and the
//! testkit's Redis and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use predicates::prelude::*;

/// The binary, with no `KV_URL` from the environment.
fn kv(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("kv").unwrap();
    cmd.env_remove("KV_URL")
        .env_remove("KV_TO_URL")
        .arg("--url")
        .arg(url);
    cmd
}

/// A prefix of this test's own on a shared server.
fn space(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("cli-{test}/{}-{nanos:x}/", std::process::id())
}

fn rocksdb(dir: &Path) -> String {
    format!("rocksdb://{}", dir.join("db").display())
}

fn redis() -> String {
    kv_testkit::server_blocking(kv_testkit::Kind::Redis)
        .expect("Redis from kv-testkit")
        .kv_url()
}

fn postgres() -> String {
    kv_testkit::server_blocking(kv_testkit::Kind::Postgres)
        .expect("PostgreSQL from kv-testkit")
        .kv_url()
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

/// set, get, exists, ttl, list, del and their exit codes on one store.
fn single_keys(url: &str, s: &str) {
    let k = |name: &str| format!("{s}{name}");
    kv(url).args(["set", &k("a"), "one"]).assert().success();
    kv(url)
        .args(["set", &k("b"), "two", "--ttl", "1h"])
        .assert()
        .success();
    assert_eq!(stdout(kv(url).args(["get", &k("a")])), "one");
    assert_eq!(stdout(kv(url).args(["exists", &k("a")])), "true\n");
    assert_eq!(stdout(kv(url).args(["exists", &k("zz")])), "false\n");
    assert_eq!(stdout(kv(url).args(["ttl", &k("a")])), "none\n");
    let ttl = stdout(kv(url).args(["ttl", &k("b")]));
    let ms: u64 = ttl.trim().trim_end_matches("ms").parse().unwrap();
    assert!(ms > 3_500_000 && ms <= 3_600_000, "{ttl}");
    assert_eq!(stdout(kv(url).args(["list", s])), format!("{s}a\n{s}b\n"));
    assert_eq!(
        stdout(kv(url).args(["list", s, "--json"])),
        format!("[\"{s}a\",\"{s}b\"]\n")
    );
    // A page of one says how to go on.
    kv(url)
        .args(["list", s, "--limit", "1"])
        .assert()
        .success()
        .stdout(format!("{s}a\n"))
        .stderr(predicate::str::contains(format!("--start-after \"{s}a\"")));
    assert_eq!(stdout(kv(url).args(["del", &k("a"), &k("zz")])), "1\n");
    kv(url)
        .args(["get", &k("a")])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("no such key"));
    // Usage errors: exit code 2.
    kv(url).args(["set", &k("c")]).assert().code(2);
    kv(url).args(["set", "", "v"]).assert().code(2);
    kv(url)
        .args(["set", &k("c"), "v", "--ttl", "30"])
        .assert()
        .code(2);
    kv(url)
        .args(["del", &k("b")])
        .assert()
        .success()
        .stdout("1\n");
}

#[test]
fn single_keys_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    single_keys(&rocksdb(dir.path()), "app/");
}

#[test]
fn single_keys_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    single_keys(
        &format!("sqlite://{}", dir.path().join("kv.db").display()),
        "app/",
    );
}

#[test]
fn single_keys_on_redis() {
    single_keys(&redis(), &space("keys"));
}

#[test]
fn a_value_from_a_file_keeps_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let url = rocksdb(dir.path());
    let file = dir.path().join("blob");
    let bytes: Vec<u8> = (0..=255).collect();
    std::fs::write(&file, &bytes).unwrap();
    kv(&url)
        .args(["set", "blob", "--file"])
        .arg(&file)
        .assert()
        .success();
    let out = kv(&url).args(["get", "blob"]).assert().success();
    assert_eq!(out.get_output().stdout, bytes);
    kv(&url)
        .args(["set", "piped", "--file", "-"])
        .write_stdin("from stdin")
        .assert()
        .success();
    assert_eq!(stdout(kv(&url).args(["get", "piped"])), "from stdin");
}

/// 10,000 entries, every tenth binary and every third with a TTL: Redis ->
/// file -> RocksDB -> file again gives the same keys, values and TTLs.
#[test]
fn export_then_import_round_trips_10000_keys_with_binary_values_and_ttls() {
    let (url, s) = (redis(), space("roundtrip"));
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..10_000u32 {
        let key = format!("{s}{i:05}");
        let ttl = if i % 3 == 0 { "600000" } else { "null" };
        if i % 10 == 0 {
            let value = base64_of(&[0, 0xff, (i % 256) as u8, 0x80]);
            lines.push_str(&format!(
                "{{\"key\":\"{key}\",\"value\":\"{value}\",\"encoding\":\"base64\",\"ttl_ms\":{ttl}}}\n"
            ));
        } else {
            lines.push_str(&format!(
                "{{\"key\":\"{key}\",\"value\":\"v{i} ü\",\"ttl_ms\":{ttl}}}\n"
            ));
        }
    }
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, &lines).unwrap();
    kv(&url)
        .arg("import")
        .arg(&input)
        .assert()
        .success()
        .stderr(predicate::str::contains("imported 10,000 entries"));

    let exported = dir.path().join("redis.jsonl");
    kv(&url)
        .args(["export", &s, "-o"])
        .arg(&exported)
        .assert()
        .success()
        .stderr(predicate::str::contains("exported 10,000 entries"));
    let rocks = rocksdb(dir.path());
    kv(&rocks).arg("import").arg(&exported).assert().success();
    let again = stdout(kv(&rocks).args(["export", &s]));
    compare_exports(&lines, &again);
    kv(&url).args(["del"]).assert().code(2);
    clear(&url, &s);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Same keys and values in the same order; TTLs present on the same keys
/// and within a minute of the original.
fn compare_exports(original: &str, exported: &str) {
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (a, b) = (parse(original), parse(exported));
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a["key"], b["key"]);
        assert_eq!(a["value"], b["value"], "{}", a["key"]);
        assert_eq!(a.get("encoding"), b.get("encoding"), "{}", a["key"]);
        match (a["ttl_ms"].as_u64(), b["ttl_ms"].as_u64()) {
            (None, None) => {}
            (Some(x), Some(y)) => assert!(y <= x && y + 60_000 > x, "{}: {x} {y}", a["key"]),
            other => panic!("{}: TTLs {other:?}", a["key"]),
        }
    }
}

fn clear(url: &str, prefix: &str) {
    let keys = stdout(kv(url).args(["list", prefix, "--all"]));
    for chunk in keys.lines().collect::<Vec<_>>().chunks(500) {
        kv(url).arg("del").args(chunk).assert().success();
    }
}

#[test]
fn copy_redis_to_postgres_to_rocksdb_with_verify() {
    let (redis, postgres, s) = (redis(), postgres(), space("copy"));
    let dir = tempfile::tempdir().unwrap();
    let rocks = rocksdb(dir.path());
    let lines: String = (0..2_000)
        .map(|i| {
            let ttl = if i % 4 == 0 { "600000" } else { "null" };
            format!("{{\"key\":\"{s}{i:04}\",\"value\":\"value {i}\",\"ttl_ms\":{ttl}}}\n")
        })
        .collect();
    kv(&redis)
        .args(["import", "-"])
        .write_stdin(lines.clone())
        .assert()
        .success();
    kv(&redis)
        .args(["copy", &s, "--verify", "--batch", "300", "--to", &postgres])
        .assert()
        .success()
        .stderr(predicate::str::contains("copied 2,000 entries"))
        .stderr(predicate::str::contains("verified 2,000 entries"));
    kv(&postgres)
        .args(["copy", &s, "--verify", "--to", &rocks])
        .assert()
        .success()
        .stderr(predicate::str::contains("verified 2,000 entries"));
    compare_exports(&lines, &stdout(kv(&rocks).args(["export", &s])));

    // Resumed after a key: only the keys after it.
    let rest = tempfile::tempdir().unwrap();
    kv(&postgres)
        .args(["copy", &s, "--start-after", &format!("{s}1499"), "--to"])
        .arg(rocksdb(rest.path()))
        .assert()
        .success()
        .stderr(predicate::str::contains("copied 500 entries"));
    clear(&redis, &s);
    clear(&postgres, &s);
}

#[test]
fn a_malformed_import_line_reports_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let url = rocksdb(dir.path());
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"key\":\"a\",\"value\":\"1\"}\n\n{\"key\":\"b\",\"value\":\"2\",\"ttl_ms\":0}\nnot json\n{\"key\":\"c\",\"value\":\"3\"}\n",
    )
    .unwrap();
    // Strict from a file: nothing written.
    kv(&url)
        .args(["import", "--strict"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "line 3: ttl_ms must be at least 1",
        ))
        .stderr(predicate::str::contains("nothing was written"));
    assert_eq!(stdout(kv(&url).arg("list")), "");
    // Strict from stdin: stops there.
    kv(&url)
        .args(["import", "--strict", "-"])
        .write_stdin(std::fs::read(&file).unwrap())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("-: line 3"));
    assert_eq!(stdout(kv(&url).arg("list")), "a\n");
    // Otherwise the bad lines are skipped, each reported.
    kv(&url)
        .arg("import")
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("line 3: ttl_ms"))
        .stderr(predicate::str::contains("line 4: expected"))
        .stderr(predicate::str::contains("skipped 2 bad lines"));
    assert_eq!(stdout(kv(&url).arg("list")), "a\nc\n");
}

#[test]
fn a_password_in_a_url_never_shows() {
    let secret = "Sup3rSecretPw";
    let with_password = |url: &str| url.replacen("://", &format!("://kvuser:{secret}@"), 1);
    // Redis without authentication refuses the login; PostgreSQL may or
    // may not: either way nothing printed contains the password.
    let urls = [
        with_password("redis://127.0.0.1:1"),
        with_password(&redis()),
        match postgres().split_once('@') {
            Some((_, rest)) => format!("postgres://kvuser:{secret}@{rest}"),
            None => with_password(&postgres()),
        },
    ];
    for url in &urls {
        for args in [
            &["info"][..],
            &["--verbose", "info"],
            &["--verbose", "get", "k"],
        ] {
            let out = kv(url).args(args).output().unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !all.contains(secret),
                "{args:?} printed the password: {all}"
            );
            assert!(!all.is_empty());
        }
    }
    // The refused one is one clear line with its kind.
    kv(&urls[0])
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("kv: error [unavailable]"));
    // A password given to copy --to is hidden too.
    let dir = tempfile::tempdir().unwrap();
    kv(&rocksdb(dir.path()))
        .args(["--verbose", "copy", "--to", &urls[0]])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(secret).not());
}

#[test]
fn bench_prints_a_row_per_requested_op() {
    let url = redis();
    let out = stdout(kv(&url).args([
        "bench",
        "--ops",
        "set,get,exists,batch_set,batch_get",
        "--batch",
        "50",
        "--value-size",
        "1KiB",
        "--duration",
        "300ms",
        "--concurrency",
        "2",
        "--prefix",
        &space("bench"),
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("redis: 1024 B values, 2 calls in flight"),
        "{out}"
    );
    assert!(
        lines[1]
            .split_whitespace()
            .eq(["op", "batch", "calls", "calls/s", "keys/s", "p50", "p99"])
    );
    for (line, op) in lines[2..]
        .iter()
        .zip(["set", "get", "exists", "batch_set", "batch_get"])
    {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[0], op, "{out}");
        assert_eq!(cells[1], if op.starts_with("batch") { "50" } else { "1" });
        assert_ne!(cells[2], "0", "{op} made no call: {out}");
    }
    assert_eq!(lines.len(), 7, "{out}");
    kv(&url).args(["bench", "--ops", "frob"]).assert().code(2);
}

#[test]
fn info_shows_the_backend_and_its_capabilities() {
    let out = stdout(kv(&redis()).arg("info"));
    for row in [
        "backend              redis",
        "atomic_batch         true",
        "health               ok",
    ] {
        assert!(out.contains(row), "{out}");
    }
    kv("nope://x")
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("kv: error [config]"));
    Command::cargo_bin("kv")
        .unwrap()
        .env_remove("KV_URL")
        .arg("info")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--url"));
}

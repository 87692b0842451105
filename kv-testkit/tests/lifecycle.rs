//! How the testkit behaves around a test process: servers stop with it, env
//! URLs win, a missing server fails loudly or skips loudly. Each case runs
//! this test binary again as a child process (the `helper` test) with a
//! controlled environment.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kv_testkit::{Kind, Source};

/// Runs the `helper` test in a child process with `mode` and extra env.
fn child(mode: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        "helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for kind in Kind::ALL {
        command.env_remove(kind.env_var());
    }
    command.env_remove("KV_TEST_SKIP_UNAVAILABLE");
    command
        .env("KV_TESTKIT_HELPER", mode)
        .env("KV_TEST_NO_DOCKER", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.find(name).map(|at| l[at + name.len()..].trim()))
        .unwrap_or_else(|| panic!("no {name} in child output:\n{out}"))
}

/// Not a test of its own: what the child process does.
#[test]
#[ignore = "run by the lifecycle tests in a child process"]
fn helper() {
    let Ok(mode) = std::env::var("KV_TESTKIT_HELPER") else {
        return;
    };
    let server = kv_testkit::server_blocking(Kind::Redis);
    match mode.as_str() {
        "report" => {
            let server = server.expect("a server");
            println!("URL={}", server.url());
            println!("SOURCE={:?}", server.source());
        }
        "abort" => {
            let server = server.expect("a server");
            println!("URL={}", server.url());
            // Die without unwinding, like a crash or SIGKILL would.
            std::process::abort();
        }
        "skip" => assert!(server.is_none()),
        "restart" => {
            let server = server.expect("a server");
            server.restart().expect("restart");
            let addr = server.url().trim_start_matches("redis://");
            let mut stream = TcpStream::connect(addr).expect("connect after restart");
            std::io::Write::write_all(&mut stream, b"PING\r\n").unwrap();
            let mut answer = [0u8; 7];
            std::io::Read::read_exact(&mut stream, &mut answer).unwrap();
            println!("ANSWER={}", String::from_utf8_lossy(&answer).trim());
            println!("URL={}", server.url());
        }
        other => panic!("unknown helper mode {other}"),
    }
}

#[test]
fn local_server_stops_when_the_test_process_dies() {
    let out = child("abort", &[]);
    let out = text(&out);
    let url = field(&out, "URL=");
    let addr = url.trim_start_matches("redis://").to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{url}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "redis at {addr} still runs 10 s after its test process died"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn env_url_is_used_instead_of_starting_a_server() {
    let server = kv_testkit::server_blocking(Kind::Redis).expect("a local redis for this test");
    let out = child("report", &[("KV_TEST_REDIS_URL", server.url())]);
    let out = text(&out);
    assert_eq!(field(&out, "SOURCE="), "Env");
    assert_eq!(field(&out, "URL="), server.url());
}

#[test]
fn without_docker_the_local_binary_is_started() {
    let out = child("report", &[]);
    let out = text(&out);
    assert_eq!(field(&out, "SOURCE="), format!("{:?}", Source::Local));
}

#[test]
fn missing_server_fails_and_says_what_to_install() {
    let out = child("report", &[("PATH", "/nonexistent")]);
    assert!(!out.status.success(), "the child should fail");
    let out = text(&out);
    assert!(out.contains("apt-get install redis-server"), "{out}");
    assert!(out.contains("KV_TEST_REDIS_URL"), "{out}");
    assert!(out.contains("scripts/install-test-deps.sh"), "{out}");
}

#[test]
fn missing_server_with_the_skip_flag_skips_loudly() {
    let out = child(
        "skip",
        &[("PATH", "/nonexistent"), ("KV_TEST_SKIP_UNAVAILABLE", "1")],
    );
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SKIPPING A TEST"), "{text}");
}

#[test]
fn restart_brings_a_local_server_back_on_the_same_port() {
    let out = child("restart", &[]);
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(field(&text, "ANSWER="), "+PONG");
}

#[test]
fn a_server_from_the_environment_cannot_be_restarted() {
    let server = kv_testkit::server_blocking(Kind::Redis).expect("a local redis for this test");
    let out = child("restart", &[("KV_TEST_REDIS_URL", server.url())]);
    let text = text(&out);
    assert!(
        !out.status.success(),
        "restarting a server from the environment must fail:\n{text}"
    );
    assert!(
        text.contains("only a server started locally can be restarted"),
        "{text}"
    );
}

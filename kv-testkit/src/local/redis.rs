//! Redis: one server (TLS, password) or a cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Local, READY_TIMEOUT, dir_for, ready_or_stop, retrying, spawn, strings};
use crate::process::{free_port, tcp_exchange, wait_until, which};

/// How a Redis test server is started.
#[derive(Debug, Clone, Default)]
pub(crate) struct RedisOptions {
    /// `requirepass` (the `default` user's password).
    pub(crate) password: Option<String>,
    /// Serve only TLS (`tls-port`, no plain port) with this certificate and
    /// key; clients need no certificate.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
}

pub(crate) fn redis(options: &RedisOptions) -> Result<Local, String> {
    let program = which("redis-server").ok_or("`redis-server` is not on PATH")?;
    let port = free_port().map_err(|e| e.to_string())?.to_string();
    let dir = dir_for("redis")?;
    let dir_arg = dir.display().to_string();
    let mut args = strings(&[
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir_arg,
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
    ]);
    if let Some(password) = &options.password {
        args.extend(strings(&["--requirepass", password]));
    }
    let scheme = match &options.tls {
        Some((cert, key)) => {
            let (cert, key) = (cert.display().to_string(), key.display().to_string());
            args.extend(strings(&[
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-auth-clients",
                "no",
            ]));
            "rediss"
        }
        None => {
            args.extend(strings(&["--port", &port]));
            "redis"
        }
    };
    let watched = spawn(dir, None, &program, &args)?;
    let addr = format!("127.0.0.1:{port}");
    let user = match &options.password {
        Some(password) => format!(":{password}@"),
        None => String::new(),
    };
    let url = format!("{scheme}://{user}{addr}");
    let plain = options.tls.is_none() && options.password.is_none();
    ready_or_stop("redis-server", watched, url, || {
        if plain {
            tcp_exchange(&addr, b"PING\r\n").is_some_and(|r| r.starts_with("+PONG"))
        } else {
            addr.parse().is_ok_and(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok()
            })
        }
    })
}

/// Starts a Redis Cluster on loopback: `masters` primaries with
/// `replicas` replicas each (`redis-server --cluster-enabled yes`, joined by
/// `redis-cli --cluster create`), a node timeout of 2 s so a failover takes
/// seconds; ready once every node says `cluster_state:ok`. Nodes are in
/// start order; `redis-cli` makes the first `masters` the primaries.
pub(crate) fn redis_cluster(masters: usize, replicas: usize) -> Result<Vec<Local>, String> {
    let program = which("redis-server").ok_or("`redis-server` is not on PATH")?;
    let cli = which("redis-cli").ok_or("`redis-cli` is not on PATH")?;
    retrying(3, || redis_cluster_once(&program, &cli, masters, replicas))
}

/// How long a Redis node may take to answer `PING` after it was spawned
/// (it takes milliseconds; one that has not answered by then has exited).
const REDIS_NODE_TIMEOUT: Duration = Duration::from_secs(15);

fn redis_cluster_once(
    program: &Path,
    cli: &Path,
    masters: usize,
    replicas: usize,
) -> Result<Vec<Local>, String> {
    let count = masters * (1 + replicas);
    let mut nodes: Vec<Local> = Vec::new();
    let stop_all = |nodes: Vec<Local>| nodes.into_iter().for_each(|n| n.watched.stop());
    for _ in 0..count {
        let port = free_port().map_err(|e| e.to_string())?.to_string();
        // The bus port is named, not left to its default of port + 10,000:
        // a port over 55,535 (a quarter of the ephemeral range) would make
        // that default overflow and the node refuse to start.
        let bus_port = free_port().map_err(|e| e.to_string())?.to_string();
        let dir = dir_for("redis-node")?;
        let args = strings(&[
            "--port",
            &port,
            "--cluster-port",
            &bus_port,
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
            "--daemonize",
            "no",
        ]);
        match spawn(dir, None, program, &args) {
            Ok(watched) => nodes.push(Local {
                url: format!("redis://127.0.0.1:{port}"),
                watched,
            }),
            Err(e) => {
                stop_all(nodes);
                return Err(e);
            }
        }
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| n.url.trim_start_matches("redis://").to_owned())
        .collect();
    let answers = |a: &String| tcp_exchange(a, b"PING\r\n").is_some_and(|r| r.starts_with("+PONG"));
    let up = wait_until(REDIS_NODE_TIMEOUT, || addrs.iter().all(answers));
    if !up {
        let silent = addrs.iter().position(|a| !answers(a)).unwrap_or(0);
        let mut tail = nodes[silent].watched.log_tail();
        if tail.is_empty() {
            // The watchdog removes a server's directory, log included, when
            // the server exits.
            tail = "(none: it exited, its log removed with its directory; usually a port \
                    taken between the probe and the bind)"
                .to_owned();
        }
        let addr = &addrs[silent];
        stop_all(nodes);
        return Err(format!(
            "the Redis cluster node at {addr} did not start; its log ends:\n{tail}"
        ));
    }
    let created = Command::new(cli)
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    if !created.status.success() {
        stop_all(nodes);
        return Err(format!(
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        ));
    }
    let ok = wait_until(READY_TIMEOUT, || {
        addrs.iter().all(|a| {
            tcp_exchange(a, b"CLUSTER INFO\r\n").is_some_and(|r| r.contains("cluster_state:ok"))
        })
    });
    if ok {
        Ok(nodes)
    } else {
        stop_all(nodes);
        Err("the Redis cluster did not reach cluster_state:ok".to_owned())
    }
}

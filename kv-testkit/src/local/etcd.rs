//! etcd: one member (TLS) or a cluster.

use std::path::Path;

use super::{Local, READY_TIMEOUT, dir_for, ready_or_stop, retrying, spawn, strings};
use crate::process::{free_port, tcp_exchange, wait_until, which};

pub(super) fn etcd() -> Result<Local, String> {
    etcd_with(None)
}

/// Starts etcd serving its clients over TLS with this PEM certificate and
/// key (`https://` client URL); ready once its log says so.
pub(crate) fn etcd_tls(cert_file: &Path, key_file: &Path) -> Result<Local, String> {
    etcd_with(Some((cert_file, key_file)))
}

fn etcd_with(tls: Option<(&Path, &Path)>) -> Result<Local, String> {
    let program = which("etcd").ok_or("`etcd` is not on PATH")?;
    let client = free_port().map_err(|e| e.to_string())?;
    let peer = free_port().map_err(|e| e.to_string())?;
    let dir = dir_for("etcd")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let client_url = format!("{scheme}://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut args = etcd_member_args(
        "kvtest",
        &dir,
        &client_url,
        &peer_url,
        &format!("kvtest={peer_url}"),
    );
    if let Some((cert, key)) = tls {
        args.extend([
            "--cert-file".into(),
            cert.display().to_string(),
            "--key-file".into(),
            key.display().to_string(),
        ]);
    }
    let watched = spawn(dir, None, &program, &args)?;
    let addr = format!("127.0.0.1:{client}");
    if tls.is_some() {
        let log = watched.dir.join("server.log");
        return ready_or_stop("etcd", watched, client_url, || {
            std::fs::read_to_string(&log)
                .is_ok_and(|l| l.contains("serving client traffic securely"))
        });
    }
    ready_or_stop("etcd", watched, client_url, || etcd_healthy(&addr))
}

/// The arguments of one etcd member: its name, data dir, client and peer
/// URLs, and the whole `--initial-cluster`.
fn etcd_member_args(
    name: &str,
    dir: &Path,
    client_url: &str,
    peer_url: &str,
    initial_cluster: &str,
) -> Vec<String> {
    strings(&[
        "--name",
        name,
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--listen-client-urls",
        client_url,
        "--advertise-client-urls",
        client_url,
        "--listen-peer-urls",
        peer_url,
        "--initial-advertise-peer-urls",
        peer_url,
        "--initial-cluster",
        initial_cluster,
        "--unsafe-no-fsync",
        "--logger",
        "zap",
        "--log-outputs",
        "stderr",
    ])
}

/// Whether the etcd member at `addr` says it is healthy (which needs a
/// leader, so a quorum).
fn etcd_healthy(addr: &str) -> bool {
    tcp_exchange(addr, b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_some_and(|r| r.contains("\"health\":\"true\""))
}

/// Starts an etcd cluster of `members` members on loopback, each under its
/// own watchdog; ready once every member is healthy.
pub(crate) fn etcd_cluster(members: usize) -> Result<Vec<Local>, String> {
    let program = which("etcd").ok_or("`etcd` is not on PATH")?;
    retrying(3, || etcd_cluster_once(&program, members))
}

fn etcd_cluster_once(program: &Path, members: usize) -> Result<Vec<Local>, String> {
    let mut ports = Vec::new();
    for _ in 0..members {
        let client = free_port().map_err(|e| e.to_string())?;
        let peer = free_port().map_err(|e| e.to_string())?;
        ports.push((client, peer));
    }
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
        .collect();
    let initial = initial.join(",");
    let token = format!("kvtest-{}-{}", std::process::id(), ports[0].0);
    let mut started = Vec::new();
    for (i, (client, peer)) in ports.iter().enumerate() {
        let dir = dir_for("etcd-member")?;
        let client_url = format!("http://127.0.0.1:{client}");
        let mut args = etcd_member_args(
            &format!("m{i}"),
            &dir,
            &client_url,
            &format!("http://127.0.0.1:{peer}"),
            &initial,
        );
        args.extend(strings(&["--initial-cluster-token", &token]));
        match spawn(dir, None, program, &args) {
            Ok(watched) => started.push(Local {
                url: client_url,
                watched,
            }),
            Err(e) => {
                started.into_iter().for_each(|l: Local| l.watched.stop());
                return Err(e);
            }
        }
    }
    let healthy = wait_until(READY_TIMEOUT, || {
        ports
            .iter()
            .all(|(client, _)| etcd_healthy(&format!("127.0.0.1:{client}")))
    });
    if healthy {
        Ok(started)
    } else {
        let tail = started
            .iter()
            .map(|l| l.watched.log_tail())
            .collect::<Vec<_>>()
            .join("\n---\n");
        started.into_iter().for_each(|l| l.watched.stop());
        Err(format!(
            "the etcd cluster did not become healthy within {READY_TIMEOUT:?}; the logs end:\n{tail}"
        ))
    }
}

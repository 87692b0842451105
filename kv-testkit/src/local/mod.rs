//! Starting the real server binaries on free loopback ports, one file per
//! server.

mod etcd;
mod mongo;
mod mysql;
mod postgres;
mod redis;

pub(crate) use etcd::{etcd_cluster, etcd_tls};
pub(crate) use mongo::{MongoOptions, MongoTls, mongo, mongod_replica_set};
pub(crate) use mysql::{MysqlOptions, mysql};
pub(crate) use postgres::{PostgresOptions, postgres};
pub(crate) use redis::{RedisOptions, redis, redis_cluster};

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Kind;
use crate::process::{Watched, server_dir, spawn_watched, tcp_exchange, wait_until};

pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A started local server: its URL and its watchdog.
pub(crate) struct Local {
    pub(crate) url: String,
    pub(crate) watched: Watched,
}

/// Starts `kind` locally, retrying once (a free port can be taken between
/// the probe and the bind).
pub(crate) fn start(kind: Kind) -> Result<Local, String> {
    retrying(2, || start_once(kind))
}

/// Runs `start` up to `attempts` times until it succeeds: servers bind
/// ports probed free a moment before, and another process (an outgoing
/// connection's ephemeral port, often) can take one in between. The error
/// is the last attempt's, with the first line of each earlier one.
pub(crate) fn retrying<T>(
    attempts: usize,
    mut start: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let mut earlier = Vec::new();
    loop {
        match start() {
            Ok(started) => return Ok(started),
            Err(why) if earlier.len() + 1 >= attempts => {
                return Err(if earlier.is_empty() {
                    why
                } else {
                    format!(
                        "{why}\n(earlier attempts failed too: {})",
                        earlier.join("; ")
                    )
                });
            }
            Err(why) => earlier.push(why.lines().next().unwrap_or("").to_owned()),
        }
    }
}

fn start_once(kind: Kind) -> Result<Local, String> {
    match kind {
        Kind::Redis => redis(&RedisOptions::default()),
        Kind::Postgres => postgres(&PostgresOptions::default()),
        Kind::Etcd => etcd::etcd(),
        Kind::Mongo => mongo(MongoOptions::default()),
        Kind::Mysql => mysql(&MysqlOptions::default()),
    }
}

pub(super) fn dir_for(name: &str) -> Result<PathBuf, String> {
    server_dir(name).map_err(|e| format!("cannot create a temp dir for {name}: {e}"))
}

pub(super) fn spawn(
    dir: PathBuf,
    as_user: Option<&str>,
    program: &Path,
    args: &[String],
) -> Result<Watched, String> {
    spawn_watched(dir, as_user, program, args)
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

/// Waits for `ready`; on timeout stops the server and reports its log.
pub(super) fn ready_or_stop(
    name: &str,
    watched: Watched,
    url: String,
    ready: impl FnMut() -> bool,
) -> Result<Local, String> {
    if wait_until(READY_TIMEOUT, ready) {
        Ok(Local { url, watched })
    } else {
        let tail = watched.log_tail();
        watched.stop();
        Err(format!(
            "{name} did not become ready within {READY_TIMEOUT:?}; its log ends:\n{tail}"
        ))
    }
}

pub(super) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Waits until a restarted local server answers again.
pub(crate) fn wait_ready(kind: Kind, url: &str) -> bool {
    let addr = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .map(|host| host.rsplit('@').next().unwrap_or(host).to_owned())
        .unwrap_or_default();
    wait_until(READY_TIMEOUT, || match kind {
        Kind::Redis => tcp_exchange(&addr, b"PING\r\n").is_some_and(|r| r.starts_with("+PONG")),
        Kind::Etcd => tcp_exchange(&addr, b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .is_some_and(|r| r.contains("\"health\":\"true\"")),
        Kind::Postgres | Kind::Mongo | Kind::Mysql => addr.parse().is_ok_and(|a| {
            std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::retrying;

    #[test]
    fn a_start_is_retried_until_it_succeeds_or_the_attempts_run_out() {
        let mut calls = 0;
        let started = retrying(3, || {
            calls += 1;
            if calls < 3 {
                Err(format!("port taken ({calls})\nlog"))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(started, Ok(3));

        let mut calls = 0;
        let failed: Result<(), String> = retrying(2, || {
            calls += 1;
            Err(format!("attempt {calls}\nits log"))
        });
        assert_eq!(calls, 2);
        assert_eq!(
            failed.unwrap_err(),
            "attempt 2\nits log\n(earlier attempts failed too: attempt 1)"
        );
    }
}

//! Test servers in Docker containers, through testcontainers.

use std::any::Any;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, GenericImage, Image, ImageExt};
use testcontainers_modules::{mariadb::Mariadb, mongo::Mongo, postgres::Postgres, redis::Redis};

use crate::Kind;
use crate::process::{on_owner_exit, which};

/// Why no container was used, for the "no server" message.
pub(crate) const NOT_USED: &str = "no Docker daemon answers";

/// A running container, kept alive for the life of the test process.
pub(crate) struct Running {
    pub(crate) url: String,
    pub(crate) keep: Box<dyn Any + Send + Sync>,
}

/// Whether a Docker daemon answers `/_ping` (at `DOCKER_HOST` or the default
/// socket) within a second. `KV_TEST_NO_DOCKER=1` says no without asking.
pub(crate) fn docker_answers() -> bool {
    if std::env::var("KV_TEST_NO_DOCKER").is_ok_and(|v| v == "1") {
        return false;
    }
    let request = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    let timeout = Some(Duration::from_secs(1));
    let answer = |mut stream: Box<dyn ReadWrite>| {
        let mut buf = [0u8; 256];
        stream.write_all(request).is_ok()
            && stream
                .read(&mut buf)
                .is_ok_and(|n| String::from_utf8_lossy(&buf[..n]).contains(" 200 "))
    };
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("tcp://") => {
            let addr = host.trim_start_matches("tcp://");
            let Some(addr) = std::net::ToSocketAddrs::to_socket_addrs(addr)
                .ok()
                .and_then(|mut a| a.next())
            else {
                return false;
            };
            TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .is_ok_and(|s| s.set_read_timeout(timeout).is_ok() && answer(Box::new(s)))
        }
        Ok(host) if host.starts_with("unix://") => {
            unix_ping(host.trim_start_matches("unix://"), timeout, answer)
        }
        _ => unix_ping("/var/run/docker.sock", timeout, answer),
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn unix_ping(
    path: &str,
    timeout: Option<Duration>,
    answer: impl Fn(Box<dyn ReadWrite>) -> bool,
) -> bool {
    UnixStream::connect(path)
        .is_ok_and(|s| s.set_read_timeout(timeout).is_ok() && answer(Box::new(s)))
}

/// Starts `kind` in a container: Redis 7.2, PostgreSQL 16, MongoDB 7 as a
/// one-node replica set, etcd 3.5, MariaDB 10.11 with a database `kv`.
pub(crate) fn start(kind: Kind) -> Result<Running, String> {
    match kind {
        Kind::Redis => run(Redis::default().with_tag("7.2"), 6379, |port| {
            format!("redis://127.0.0.1:{port}")
        }),
        Kind::Postgres => run(Postgres::default().with_tag("16-alpine"), 5432, |port| {
            format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres")
        }),
        Kind::Mongo => run(Mongo::repl_set().with_tag("7.0"), 27017, |port| {
            format!("mongodb://127.0.0.1:{port}/?directConnection=true")
        }),
        Kind::Etcd => etcd(),
        Kind::Mysql => run(
            Mariadb::default()
                .with_init_sql("CREATE DATABASE IF NOT EXISTS kv;".as_bytes().to_vec())
                .with_tag("10.11"),
            3306,
            |port| format!("mysql://root@127.0.0.1:{port}/kv"),
        ),
    }
}

/// MongoDB 7 without a replica set.
pub(crate) fn mongo_standalone() -> Result<Running, String> {
    run(Mongo::default().with_tag("7.0"), 27017, |port| {
        format!("mongodb://127.0.0.1:{port}/?directConnection=true")
    })
}

fn etcd() -> Result<Running, String> {
    {
        {
            let image = GenericImage::new("quay.io/coreos/etcd", "v3.5.17")
                .with_exposed_port(2379.tcp())
                .with_wait_for(WaitFor::message_on_stderr("ready to serve client requests"))
                .with_cmd([
                    "etcd",
                    "--listen-client-urls=http://0.0.0.0:2379",
                    "--advertise-client-urls=http://0.0.0.0:2379",
                    "--unsafe-no-fsync",
                ]);
            run(image, 2379, |port| format!("http://127.0.0.1:{port}"))
        }
    }
}

fn run<I, R>(request: R, port: u16, url: impl Fn(u16) -> String) -> Result<Running, String>
where
    I: Image + 'static,
    R: Into<testcontainers::ContainerRequest<I>> + Send,
    Container<I>: Send + Sync,
{
    let container = request
        .start()
        .map_err(|e| format!("testcontainers could not start the container: {e}"))?;
    let host_port = container
        .get_host_port_ipv4(port.tcp())
        .map_err(|e| format!("the container exposes no port {port}: {e}"))?;
    // The container lives in a static that is never dropped: remove it once
    // this process is gone.
    if which("docker").is_some() {
        let _ = on_owner_exit(&format!(
            "docker rm -f -v {} >/dev/null 2>&1",
            container.id()
        ));
    }
    Ok(Running {
        url: url(host_port),
        keep: Box::new(container),
    })
}

//! Starting the real server binaries on free loopback ports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::Kind;
use crate::process::{
    Watched, free_port, is_root, server_dir, spawn_watched, tcp_exchange, wait_until, which,
};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

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
        Kind::Etcd => etcd(),
        Kind::Mongo => mongo(MongoOptions::default()),
    }
}

fn dir_for(name: &str) -> Result<PathBuf, String> {
    server_dir(name).map_err(|e| format!("cannot create a temp dir for {name}: {e}"))
}

fn spawn(
    dir: PathBuf,
    as_user: Option<&str>,
    program: &Path,
    args: &[String],
) -> Result<Watched, String> {
    spawn_watched(dir, as_user, program, args)
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

/// Waits for `ready`; on timeout stops the server and reports its log.
fn ready_or_stop(
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

fn strings(args: &[&str]) -> Vec<String> {
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
        Kind::Postgres | Kind::Mongo => addr.parse().is_ok_and(|a| {
            std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok()
        }),
    })
}

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

/// The directory holding `initdb`, `postgres` and `pg_isready`: PATH first,
/// else Debian's `/usr/lib/postgresql/<newest>/bin`.
fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(initdb) = which("initdb") {
        let resolved = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        return resolved.parent().map(Path::to_path_buf);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// How a PostgreSQL test server is started.
#[derive(Debug, Clone, Default)]
pub(crate) struct PostgresOptions {
    /// Require `scram-sha-256` with this password for the `postgres` user
    /// (else `trust`).
    pub(crate) password: Option<String>,
    /// Serve TLS (`ssl = on`) with this certificate and key.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
}

pub(crate) fn postgres(options: &PostgresOptions) -> Result<Local, String> {
    let bin = postgres_bin_dir()
        .ok_or("PostgreSQL's `initdb` is neither on PATH nor under /usr/lib/postgresql/*/bin")?;
    let dir = dir_for("postgres")?;
    // initdb and postgres refuse to run as root: use the `postgres` user.
    let as_user = if is_root() {
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        if !chown.is_ok_and(|s| s.success()) {
            return Err("running as root, but cannot hand the data dir to a `postgres` user (does it exist?)".into());
        }
        Some("postgres")
    } else {
        None
    };
    let data = dir.join("data");
    let mut initdb = match as_user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(bin.join("initdb"));
            c
        }
        None => Command::new(bin.join("initdb")),
    };
    let auth = match &options.password {
        Some(password) => {
            let file = dir.join("pwfile");
            std::fs::write(&file, password).map_err(|e| format!("cannot write the pwfile: {e}"))?;
            if as_user.is_some() {
                let _ = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&file)
                    .status();
            }
            initdb.arg(format!("--pwfile={}", file.display()));
            "scram-sha-256"
        }
        None => "trust",
    };
    let out = initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            auth,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port().map_err(|e| e.to_string())?.to_string();
    let mut tls_args = Vec::new();
    if let Some((cert, key)) = &options.tls {
        // The key must belong to the server's user and be private to it.
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            std::fs::copy(from, data.join(to)).map_err(|e| format!("cannot copy {to}: {e}"))?;
            if as_user.is_some() {
                let _ = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(data.join(to))
                    .status();
            }
        }
        let _ = Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key"))
            .status();
        for setting in [
            "ssl=on",
            "ssl_cert_file=server.crt",
            "ssl_key_file=server.key",
        ] {
            tls_args.push("-c".to_owned());
            tls_args.push(setting.to_owned());
        }
    }
    let mut args = vec![
        "-D".into(),
        data.display().to_string(),
        "-p".into(),
        port.clone(),
        "-k".into(),
        dir.display().to_string(),
        "-h".into(),
        "127.0.0.1".into(),
        "-F".into(),
        "-c".into(),
        "max_connections=500".into(),
        "-c".into(),
        "shared_buffers=128MB".into(),
    ];
    args.extend(tls_args);
    let watched = spawn(dir, as_user, &bin.join("postgres"), &args)?;
    let user = match &options.password {
        Some(password) => format!("postgres:{password}"),
        None => "postgres".to_owned(),
    };
    let url = format!("postgres://{user}@127.0.0.1:{port}/postgres");
    let pg_isready = bin.join("pg_isready");
    ready_or_stop("postgres", watched, url, || {
        Command::new(&pg_isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn etcd() -> Result<Local, String> {
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

/// The venv holding SecantusDB.
fn secantus_python() -> PathBuf {
    let venv = std::env::var_os("KV_SECANTUS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| "/root".into());
            home.join(".cache/kv/secantus")
        });
    venv.join("bin/python")
}

/// Starts SecantusDB and prints its port when it listens. Arguments: the
/// replica set name (empty: a standalone server), the port (the same one
/// again after a restart), and a user and password (empty: no
/// authentication), and a TLS certificate and key (empty: no TLS). Without a user the data lives in memory; with one it
/// lives in `./data`: the user is created on a first start without
/// authentication, then the server starts again requiring it (SecantusDB
/// has no localhost exception).
const SECANTUS: &str = r#"
import signal, sys, threading
from secantus import SecantusDBServer
rs, port, user, password = sys.argv[1] or None, int(sys.argv[2]), sys.argv[3], sys.argv[4]
cert, key = sys.argv[5] or None, sys.argv[6] or None
def server(port, **kw):
    return SecantusDBServer(host="127.0.0.1", port=port, ttl_sweep_seconds=1.0,
                            replica_set_name=rs, **kw)
if user:
    import pymongo
    first = server(0, storage_path="data")
    first.start()
    client = pymongo.MongoClient("127.0.0.1", first.port, directConnection=True)
    client.admin.command("createUser", user, pwd=password, roles=[{"role": "root", "db": "admin"}])
    client.close()
    first.stop()
    main = server(port, storage_path="data", require_auth=True, tls_cert_file=cert, tls_key_file=key)
else:
    main = server(port, storage_path=":memory:", tls_cert_file=cert, tls_key_file=key)
main.start()
print("KV-TESTKIT-READY", main.port, flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
threading.Event().wait()
"#;

/// How a MongoDB test server is started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MongoOptions {
    /// A standalone server instead of a one-node replica set.
    pub(crate) standalone: bool,
    /// Require authentication, with this root user and password.
    pub(crate) auth: Option<(String, String)>,
    /// Serve only TLS with these files.
    pub(crate) tls: Option<MongoTls>,
}

/// The files of a TLS MongoDB test server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MongoTls {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// Certificate and key in one file (mongod's `--tlsCertificateKeyFile`).
    pub(crate) cert_and_key: PathBuf,
    /// The CA, for `mongosh`.
    pub(crate) ca: PathBuf,
}

impl MongoOptions {
    /// The URL's options after `?`.
    fn url_options(&self) -> &'static str {
        if self.tls.is_some() {
            "directConnection=true&tls=true"
        } else {
            "directConnection=true"
        }
    }
}

pub(crate) fn mongo(options: MongoOptions) -> Result<Local, String> {
    if let Some(mongod) = which("mongod") {
        return mongod_server(&mongod, options);
    }
    let python = secantus_python();
    if !python.is_file() {
        return Err(format!(
            "neither `mongod` is on PATH nor SecantusDB installed in {}",
            python
                .parent()
                .and_then(Path::parent)
                .map_or(String::new(), |p| p.display().to_string())
        ));
    }
    let dir = dir_for("secantus")?;
    let port = free_port().map_err(|e| e.to_string())?;
    let replica_set = if options.standalone { "" } else { "secantus" };
    let (user, password) = options.auth.clone().unwrap_or_default();
    let (cert, key) = options.tls.as_ref().map_or_else(Default::default, |t| {
        (t.cert.display().to_string(), t.key.display().to_string())
    });
    let watched = spawn(
        dir,
        None,
        &python,
        &[
            "-u".into(),
            "-c".into(),
            SECANTUS.into(),
            replica_set.into(),
            port.to_string(),
            user,
            password,
            cert,
            key,
        ],
    )?;
    let ready = wait_until(READY_TIMEOUT, || {
        watched
            .log()
            .lines()
            .any(|l| l.starts_with("KV-TESTKIT-READY "))
    });
    match ready {
        true => Ok(Local {
            url: format!("mongodb://127.0.0.1:{port}/?{}", options.url_options()),
            watched,
        }),
        false => {
            let tail = watched.log_tail();
            watched.stop();
            Err(format!(
                "SecantusDB did not start within {READY_TIMEOUT:?}; its log ends:\n{tail}"
            ))
        }
    }
}

/// A real `mongod`: a one-node replica set (transactions need one),
/// initiated with `mongosh`, or a standalone server; with `--auth` when
/// asked (a replica set then authenticates its members with a key file).
fn mongod_server(mongod: &Path, options: MongoOptions) -> Result<Local, String> {
    let mongosh = which("mongosh")
        .ok_or("`mongod` is on PATH but `mongosh` (needed to initiate the replica set) is not")?;
    let port = free_port().map_err(|e| e.to_string())?.to_string();
    let dir = dir_for("mongod")?;
    let db = dir.join("db");
    std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
    let mut args = vec![
        "--port".into(),
        port.clone(),
        "--bind_ip".into(),
        "127.0.0.1".into(),
        "--dbpath".into(),
        db.display().to_string(),
    ];
    if options.auth.is_some() {
        args.push("--auth".into());
    }
    let mut shell_tls = Vec::new();
    if let Some(tls) = &options.tls {
        args.extend(["--tlsMode".into(), "requireTLS".into()]);
        args.extend([
            "--tlsCertificateKeyFile".into(),
            tls.cert_and_key.display().to_string(),
        ]);
        shell_tls = vec![
            "--tls".to_owned(),
            "--tlsCAFile".to_owned(),
            tls.ca.display().to_string(),
        ];
    }
    if !options.standalone {
        args.extend(["--replSet".into(), "kvtest".into()]);
        if options.auth.is_some() {
            let key_file = dir.join("keyfile");
            std::fs::write(&key_file, "kvtestkeyfilekvtestkeyfile").map_err(|e| e.to_string())?;
            set_owner_only(&key_file)?;
            args.extend(["--keyFile".into(), key_file.display().to_string()]);
        }
    }
    let url = format!("mongodb://127.0.0.1:{port}/?{}", options.url_options());
    let watched = spawn(dir, None, mongod, &args)?;
    let create_user = options.auth.as_ref().map(|(user, password)| {
        format!(
            "try {{ db.getSiblingDB('admin').createUser({{user: {user:?}, pwd: {password:?}, \
             roles: [{{role: 'root', db: 'admin'}}]}}); print(true) }} \
             catch (e) {{ print(e.codeName === 'DuplicateKey' || e.code === 51003) }}"
        )
    });
    let eval = |script: &str| {
        Command::new(&mongosh)
            .args(["--quiet", "--port", &port])
            .args(&shell_tls)
            .args(["--eval", script])
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("true")
            })
    };
    let init = format!(
        "try {{ rs.initiate({{_id: 'kvtest', members: [{{_id: 0, host: '127.0.0.1:{port}'}}]}}); print(true) }} \
         catch (e) {{ print(e.codeName === 'AlreadyInitialized') }}"
    );
    // Under --auth, the localhost exception allows rs.initiate and the
    // first createUser; a standalone server needs no initiation.
    ready_or_stop("mongod", watched, url, || {
        (options.standalone || eval(&init))
            && match &create_user {
                Some(create) => eval(create),
                None => options.standalone || eval("print(db.hello().isWritablePrimary)"),
            }
            && wait_ready(Kind::Mongo, &format!("mongodb://127.0.0.1:{port}"))
    })
}

/// A real replica set of `members` `mongod`s on loopback (`--replSet
/// kvrs`), initiated together with `mongosh`; ready once one member is a
/// writable primary. `None` when `mongod` or `mongosh` is not on PATH.
pub(crate) fn mongod_replica_set(members: usize) -> Option<Result<Vec<Local>, String>> {
    let mongod = which("mongod")?;
    let mongosh = which("mongosh")?;
    Some(retrying(2, || {
        start_mongod_replica_set(&mongod, &mongosh, members)
    }))
}

fn start_mongod_replica_set(
    mongod: &Path,
    mongosh: &Path,
    members: usize,
) -> Result<Vec<Local>, String> {
    let mut started: Vec<Local> = Vec::new();
    let mut ports = Vec::new();
    let stop_all = |started: Vec<Local>| started.into_iter().for_each(|l| l.watched.stop());
    for _ in 0..members {
        let port = free_port().map_err(|e| e.to_string())?.to_string();
        let dir = dir_for("mongod-rs")?;
        let db = dir.join("db");
        std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
        let args = strings(&[
            "--port",
            &port,
            "--bind_ip",
            "127.0.0.1",
            "--dbpath",
            &db.display().to_string(),
            "--replSet",
            "kvrs",
        ]);
        match spawn(dir, None, mongod, &args) {
            Ok(watched) => started.push(Local {
                url: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
                watched,
            }),
            Err(e) => {
                stop_all(started);
                return Err(e);
            }
        }
        ports.push(port);
    }
    let eval = |port: &str, script: &str| {
        Command::new(mongosh)
            .args(["--quiet", "--port", port, "--eval", script])
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("true")
            })
    };
    let hosts = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{{_id: {i}, host: '127.0.0.1:{p}'}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let init = format!(
        "try {{ rs.initiate({{_id: 'kvrs', members: [{hosts}]}}); print(true) }} \
         catch (e) {{ print(e.codeName === 'AlreadyInitialized') }}"
    );
    let first = &ports[0];
    let ready = wait_until(READY_TIMEOUT, || eval(first, &init))
        && wait_until(READY_TIMEOUT, || {
            ports
                .iter()
                .any(|p| eval(p, "print(db.hello().isWritablePrimary)"))
        });
    if ready {
        Ok(started)
    } else {
        let tail = started[0].watched.log_tail();
        stop_all(started);
        Err(format!(
            "the mongod replica set did not elect a primary within {READY_TIMEOUT:?}; a log ends:\n{tail}"
        ))
    }
}

/// `chmod 600`: mongod refuses a key file others can read.
fn set_owner_only(path: &Path) -> Result<(), String> {
    let status = Command::new("chmod")
        .arg("600")
        .arg(path)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err("chmod 600 on the mongod key file failed".into())
    }
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

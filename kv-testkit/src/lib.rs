//! Live test servers for kv's backends, and the [`FaultProxy`] the
//! conformance suite's fault tests use. Published as `anykv-testkit` (the
//! conformance suite depends on it); a dev-dependency of the backend crates.
//!
//! [`server`] (or [`redis`], [`postgres`], [`etcd`], [`mongo`]) returns a
//! running server of that kind, started once per test process and shared by
//! all its tests. It is found in this order:
//!
//! 1. a URL in the environment: `KV_TEST_REDIS_URL`, `KV_TEST_POSTGRES_URL`,
//!    `KV_TEST_ETCD_URL`, `KV_TEST_MONGO_URL` (your own server; nothing is
//!    started or stopped);
//! 2. with the `docker` feature (off by default), a container through
//!    testcontainers, when a Docker daemon answers
//!    (Redis 7.2, PostgreSQL 16, MongoDB 7 as a one-node replica set,
//!    etcd 3.5); `KV_TEST_NO_DOCKER=1` skips this step;
//! 3. the server binary on this machine, started on a free 127.0.0.1 port in
//!    a temp dir: `redis-server`; PostgreSQL's `initdb` + `postgres` (as the
//!    `postgres` user when running as root); `etcd`; a real `mongod` as a
//!    replica set, else SecantusDB, a MongoDB-wire-compatible server
//!    installed by `scripts/install-test-deps.sh`;
//! 4. otherwise the calling test fails with a message saying what to install.
//!    Only `KV_TEST_SKIP_UNAVAILABLE=1` turns that into a skip (`None`), and
//!    a skip prints a loud line.
//!
//! Local servers and containers stop when the test process ends, however it
//! ends (a watchdog process follows the test process), and their temp dirs
//! are removed.
//!
//! ```no_run
//! # async fn demo() {
//! let Some(redis) = kv_testkit::redis().await else { return }; // skipped, and said so
//! println!("testing against {} ({:?})", redis.url(), redis.source());
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod bench;
#[cfg(feature = "docker")]
mod container;
#[cfg(not(feature = "docker"))]
#[path = "no_container.rs"]
mod container;
mod local;
mod process;
pub mod proxy;
pub mod tls;

pub use proxy::{FaultProxy, closed_port, seed};
pub use tls::TestCerts;

use std::any::Any;
use std::fmt;
use std::sync::OnceLock;

/// A kind of server the backends test against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Redis.
    Redis,
    /// PostgreSQL.
    Postgres,
    /// etcd.
    Etcd,
    /// MongoDB (or a MongoDB-wire-compatible server).
    Mongo,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Redis, Kind::Postgres, Kind::Etcd, Kind::Mongo];

    /// The server's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "Redis",
            Kind::Postgres => "PostgreSQL",
            Kind::Etcd => "etcd",
            Kind::Mongo => "MongoDB",
        }
    }

    /// The environment variable that points the tests at an existing server.
    pub fn env_var(self) -> &'static str {
        match self {
            Kind::Redis => "KV_TEST_REDIS_URL",
            Kind::Postgres => "KV_TEST_POSTGRES_URL",
            Kind::Etcd => "KV_TEST_ETCD_URL",
            Kind::Mongo => "KV_TEST_MONGO_URL",
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Kind::Redis => "apt-get install redis-server",
            Kind::Postgres => "apt-get install postgresql",
            Kind::Etcd => "apt-get install etcd-server etcd-client",
            Kind::Mongo => {
                "install mongod and mongosh on PATH, or SecantusDB: python3 -m venv ~/.cache/kv/secantus \
                 && ~/.cache/kv/secantus/bin/pip install SecantusDB==0.7.0b3"
            }
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a [`TestServer`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A URL from the environment variable of its [`Kind`].
    Env,
    /// A Docker container started through testcontainers.
    Container,
    /// A server binary started on this machine.
    Local,
}

/// A running server, shared by every test of the process.
pub struct TestServer {
    kind: Kind,
    url: String,
    source: Source,
    local: Option<process::Watched>,
    /// Started by [`private`]: stopped when dropped.
    private: bool,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.private
            && let Some(watched) = self.local.take()
        {
            watched.stop();
        }
    }
}

impl TestServer {
    /// A server this process started on this machine; a `private` one stops
    /// when dropped.
    fn started_here(kind: Kind, local: local::Local, private: bool) -> Self {
        Self {
            kind,
            url: local.url,
            source: Source::Local,
            local: Some(local.watched),
            private,
            _keep: None,
        }
    }

    /// The kind of server.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The URL its native driver takes: `redis://`, `postgres://`,
    /// `http://host:port` for etcd, `mongodb://`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL `kv::connect` takes (for etcd `etcd://host:port`, or
    /// `etcds://` over TLS; the others are the driver's URL).
    pub fn kv_url(&self) -> String {
        match self.kind {
            Kind::Etcd => {
                let scheme = if self.url.trim_start().starts_with("https://") {
                    "etcds"
                } else {
                    "etcd"
                };
                let hosts = self.url.split(',').map(|u| {
                    u.trim()
                        .trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .trim_end_matches('/')
                });
                format!("{scheme}://{}", hosts.collect::<Vec<_>>().join(","))
            }
            _ => self.url.clone(),
        }
    }

    /// Where the server came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Restarts a server this process started on this machine: stops it and
    /// starts it again on the same port (data is not kept unless the server
    /// persists it), then waits until it answers. For tests of reconnection;
    /// run them in a test binary of their own, since every test of the
    /// process shares the server.
    ///
    /// # Errors
    ///
    /// When the server came from the environment or a container (kv-testkit
    /// does not control it), or it did not come back.
    pub fn restart(&self) -> Result<(), String> {
        let watched = self.local.as_ref().ok_or_else(|| {
            format!(
                "only a server started locally can be restarted; this one is {:?}",
                self.source
            )
        })?;
        // PostgreSQL's SIGTERM is a "smart" shutdown that waits for every
        // client to leave; SIGINT is the fast one.
        let signal = if self.kind == Kind::Postgres {
            "INT"
        } else {
            "TERM"
        };
        watched.restart(signal)?;
        if local::wait_ready(self.kind, &self.url) {
            Ok(())
        } else {
            Err(format!("{} did not answer after the restart", self.kind))
        }
    }

    /// Kills a server this process started (SIGKILL: no shutdown, open
    /// connections reset, as in a crash), starts it again on the same port
    /// with the same data directory, and waits until it answers.
    ///
    /// # Errors
    ///
    /// As [`TestServer::restart`].
    pub fn crash(&self) -> Result<(), String> {
        let watched = self.local.as_ref().ok_or_else(|| {
            format!(
                "only a server started locally can be crashed; this one is {:?}",
                self.source
            )
        })?;
        watched.restart("KILL")?;
        if local::wait_ready(self.kind, &self.url) {
            Ok(())
        } else {
            Err(format!("{} did not answer after the crash", self.kind))
        }
    }
}

impl TestServer {
    /// Freezes a server this process started (SIGSTOP): it keeps its
    /// connections open but answers nothing, as a hung machine does, until
    /// [`thaw`](TestServer::thaw). A cluster sees it fail after its timeout.
    ///
    /// # Errors
    ///
    /// When the server was not started here, or the signal failed.
    pub fn freeze(&self) -> Result<(), String> {
        self.watched()?.signal("STOP")
    }

    /// Lets a [frozen](TestServer::freeze) server run again (SIGCONT).
    ///
    /// # Errors
    ///
    /// As [`TestServer::freeze`].
    pub fn thaw(&self) -> Result<(), String> {
        self.watched()?.signal("CONT")
    }

    fn watched(&self) -> Result<&process::Watched, String> {
        self.local.as_ref().ok_or_else(|| {
            format!(
                "only a server started locally can be signalled; this one is {:?}",
                self.source
            )
        })
    }
}

/// An etcd cluster of the caller's own: several members on loopback, each
/// a [`TestServer`] that can be [crashed](TestServer::crash) or
/// [restarted](TestServer::restart); all stopped when dropped.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<TestServer>,
}

impl EtcdCluster {
    /// The members, in the order they were started.
    pub fn members(&self) -> &[TestServer] {
        &self.members
    }

    /// Every member's client address, `127.0.0.1:port`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| m.url().trim_start_matches("http://").to_owned())
            .collect()
    }

    /// `etcd://` with every member, for `kv::connect`.
    pub fn kv_url(&self) -> String {
        format!("etcd://{}", self.endpoints().join(","))
    }
}

/// A new etcd cluster of `members` members (3 or 5 make sense) of the
/// caller's own, from the local `etcd` binary, ready once every member is
/// healthy. `None` only when it is unavailable and
/// `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`].
pub async fn etcd_cluster(members: usize) -> Option<EtcdCluster> {
    match tokio::task::spawn_blocking(move || local::etcd_cluster(members)).await {
        Ok(Ok(locals)) => Some(EtcdCluster {
            members: locals
                .into_iter()
                .map(|local| TestServer::started_here(Kind::Etcd, local, true))
                .collect(),
        }),
        Ok(Err(why)) => unavailable(Kind::Etcd, &why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password when it came from the environment.
        let url = match self.source {
            Source::Env => "<from environment>",
            _ => self.url.as_str(),
        };
        f.debug_struct("TestServer")
            .field("kind", &self.kind)
            .field("url", &url)
            .field("source", &self.source)
            .finish()
    }
}

static SERVERS: [OnceLock<Result<TestServer, String>>; 4] = [
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
];

/// The shared server of `kind`, started on first use (see the crate docs for
/// the order). `None` only when it is unavailable and
/// `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// When no server can be had and skipping is not allowed: the message says
/// what to install or which variable to set.
pub async fn server(kind: Kind) -> Option<&'static TestServer> {
    match tokio::task::spawn_blocking(move || server_blocking(kind)).await {
        Ok(server) => server,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// [`server`] for synchronous code. Blocks while the server starts.
///
/// # Panics
///
/// As [`server`].
pub fn server_blocking(kind: Kind) -> Option<&'static TestServer> {
    match SERVERS[kind.index()].get_or_init(|| resolve(kind)) {
        Ok(server) => Some(server),
        Err(why) => unavailable(kind, why),
    }
}

/// A new server of `kind` for the caller alone, stopped when dropped: a
/// container when Docker answers, else the local binary; never the server
/// of the environment variable, since the caller may reconfigure it (turn
/// on authentication) or read its exact counters. `None` only when it is
/// unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// ```no_run
/// # async fn demo() {
/// let Some(etcd) = kv_testkit::private(kv_testkit::Kind::Etcd).await else { return };
/// println!("an etcd of my own at {}", etcd.url());
/// # }
/// ```
///
/// # Panics
///
/// As [`server`].
pub async fn private(kind: Kind) -> Option<TestServer> {
    match tokio::task::spawn_blocking(move || start_new(kind)).await {
        Ok(Ok(mut server)) => {
            server.private = true;
            Some(server)
        }
        Ok(Err(why)) => unavailable(kind, &why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// A new etcd of the caller's own serving its clients over TLS with this
/// PEM certificate and key (its [`url`](TestServer::url) is `https://`),
/// started from the local `etcd` binary and stopped when dropped. `None`
/// only when it is unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`].
pub async fn private_etcd_tls(
    cert_file: std::path::PathBuf,
    key_file: std::path::PathBuf,
) -> Option<TestServer> {
    let started = tokio::task::spawn_blocking(move || {
        local::retrying(2, || local::etcd_tls(&cert_file, &key_file))
    })
    .await;
    match started {
        Ok(Ok(local)) => Some(TestServer::started_here(Kind::Etcd, local, true)),
        Ok(Err(why)) => unavailable(Kind::Etcd, &why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// The variable pointing the tests at a Redis Cluster of your own:
/// `redis+cluster://host:port[,host:port...]`.
pub const REDIS_CLUSTER_ENV: &str = "KV_TEST_REDIS_CLUSTER_URL";

/// A Redis Cluster: three primaries with a replica each, started here on
/// loopback (or one of your own, from [`REDIS_CLUSTER_ENV`]).
#[derive(Debug)]
pub struct RedisCluster {
    url: String,
    nodes: Vec<TestServer>,
}

impl RedisCluster {
    /// `redis+cluster://` naming the nodes, for `kv::connect` and
    /// `RedisStore`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The nodes started here, primaries first (empty for a cluster from
    /// the environment); each can be [crashed](TestServer::crash).
    pub fn nodes(&self) -> &[TestServer] {
        &self.nodes
    }
}

static REDIS_CLUSTER: OnceLock<Result<RedisCluster, String>> = OnceLock::new();

/// The shared Redis Cluster of this test binary: [`REDIS_CLUSTER_ENV`], or
/// three primaries and three replicas started from the local
/// `redis-server` and `redis-cli` (Docker is not used for clusters).
///
/// # Panics
///
/// As [`server`].
pub async fn redis_cluster() -> Option<&'static RedisCluster> {
    let found = tokio::task::spawn_blocking(|| {
        REDIS_CLUSTER.get_or_init(|| {
            if let Ok(url) = std::env::var(REDIS_CLUSTER_ENV)
                && !url.trim().is_empty()
            {
                return Ok(RedisCluster {
                    url: url.trim().to_owned(),
                    nodes: Vec::new(),
                });
            }
            start_redis_cluster(false)
        })
    })
    .await;
    match found {
        Ok(Ok(cluster)) => Some(cluster),
        Ok(Err(why)) => unavailable(Kind::Redis, why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// A new Redis Cluster of the caller's own (three primaries, three
/// replicas), for tests that fail nodes over; stopped when dropped.
///
/// # Panics
///
/// As [`server`].
pub async fn private_redis_cluster() -> Option<RedisCluster> {
    match tokio::task::spawn_blocking(|| start_redis_cluster(true)).await {
        Ok(Ok(cluster)) => Some(cluster),
        Ok(Err(why)) => unavailable(Kind::Redis, &why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

fn start_redis_cluster(private: bool) -> Result<RedisCluster, String> {
    let nodes = local::redis_cluster(3, 1)?;
    let hosts: Vec<&str> = nodes[..3]
        .iter()
        .map(|n| n.url.trim_start_matches("redis://"))
        .collect();
    let url = format!("redis+cluster://{}", hosts.join(","));
    Ok(RedisCluster {
        url,
        nodes: nodes
            .into_iter()
            .map(|n| TestServer::started_here(Kind::Redis, n, private))
            .collect(),
    })
}

/// The variable pointing the tests at a MongoDB replica set of several
/// members: `mongodb://h1,h2,h3/?replicaSet=rs0`.
pub const MONGO_RS_ENV: &str = "KV_TEST_MONGO_RS_URL";

/// A MongoDB replica set of several members (three when started here).
#[derive(Debug)]
pub struct MongoReplicaSet {
    url: String,
    members: Vec<TestServer>,
}

impl MongoReplicaSet {
    /// `mongodb://` naming every member and the set.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The members started here (empty for a set from the environment),
    /// each reached directly; each can be [crashed](TestServer::crash).
    pub fn members(&self) -> &[TestServer] {
        &self.members
    }
}

/// A MongoDB replica set of the caller's own, for tests that step its
/// primary down: [`MONGO_RS_ENV`], or three `mongod` started here on
/// loopback when `mongod` and `mongosh` are on PATH (stopped when dropped).
///
/// Unlike [`server`], `None` when neither is there: the test server used
/// elsewhere (SecantusDB) has one member, and a fresh machine may have no
/// `mongod` at all, so the caller says loudly that it did not run.
///
/// # Panics
///
/// When `mongod` is there but the set does not start.
pub async fn mongo_replica_set() -> Option<MongoReplicaSet> {
    if let Ok(url) = std::env::var(MONGO_RS_ENV)
        && !url.trim().is_empty()
    {
        return Some(MongoReplicaSet {
            url: url.trim().to_owned(),
            members: Vec::new(),
        });
    }
    let started = tokio::task::spawn_blocking(|| local::mongod_replica_set(3)).await;
    match started {
        Ok(None) => None,
        Ok(Some(Ok(members))) => {
            let hosts: Vec<String> = members
                .iter()
                .map(|m| {
                    let addr = m.url.trim_start_matches("mongodb://");
                    addr.split('/').next().unwrap_or(addr).to_owned()
                })
                .collect();
            Some(MongoReplicaSet {
                url: format!("mongodb://{}/?replicaSet=kvrs", hosts.join(",")),
                members: members
                    .into_iter()
                    .map(|m| TestServer::started_here(Kind::Mongo, m, true))
                    .collect(),
            })
        }
        Ok(Some(Err(why))) => panic!("a MongoDB replica set: {why}"),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// The variable pointing the tests at a standalone MongoDB (no replica set).
pub const MONGO_STANDALONE_ENV: &str = "KV_TEST_MONGO_STANDALONE_URL";

static MONGO_STANDALONE: OnceLock<Result<TestServer, String>> = OnceLock::new();

/// The shared *standalone* MongoDB server (no replica set, so no
/// transactions), for the tests of what a store does without them. Found
/// like [`server`]: [`MONGO_STANDALONE_ENV`], a container, a local `mongod`
/// without `--replSet` or SecantusDB without its replica-set persona.
///
/// # Panics
///
/// As [`server`].
pub async fn mongo_standalone() -> Option<&'static TestServer> {
    let found = tokio::task::spawn_blocking(|| {
        MONGO_STANDALONE.get_or_init(|| {
            if let Ok(url) = std::env::var(MONGO_STANDALONE_ENV)
                && !url.trim().is_empty()
            {
                return Ok(TestServer {
                    kind: Kind::Mongo,
                    url: url.trim().to_owned(),
                    source: Source::Env,
                    local: None,
                    private: false,
                    _keep: None,
                });
            }
            start_mongo_standalone()
        })
    })
    .await;
    match found {
        Ok(Ok(server)) => Some(server),
        Ok(Err(why)) => unavailable(Kind::Mongo, why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// A new MongoDB of the caller's own that requires SCRAM authentication,
/// with one user, `user`, who has the `root` role on `admin` (authenticate
/// with `authSource=admin`). A one-node replica set, started from the local
/// `mongod` or SecantusDB, stopped when dropped. `None` only when it is
/// unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`].
pub async fn private_mongo_with_auth(user: &str, password: &str) -> Option<TestServer> {
    let options = local::MongoOptions {
        standalone: false,
        auth: Some((user.to_owned(), password.to_owned())),
        tls: None,
    };
    match tokio::task::spawn_blocking(move || local::retrying(2, || local::mongo(options.clone())))
        .await
    {
        Ok(Ok(local)) => Some(TestServer::started_here(Kind::Mongo, local, true)),
        Ok(Err(why)) => unavailable(Kind::Mongo, &why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// A new Redis of the caller's own, with `requirepass` when `password`
/// is given (its [`url`](TestServer::url) carries it) and serving only TLS
/// (`rediss://`) with `tls`'s server certificate when given; started from
/// the local `redis-server`, stopped when dropped. `None` only when it is
/// unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`].
pub async fn private_redis_secured(
    password: Option<&str>,
    tls: Option<&TestCerts>,
) -> Option<TestServer> {
    let options = local::RedisOptions {
        password: password.map(str::to_owned),
        tls: tls.map(|t| (t.cert(), t.key())),
    };
    started(Kind::Redis, move || {
        local::retrying(2, || local::redis(&options))
    })
    .await
}

/// A new PostgreSQL of the caller's own requiring `scram-sha-256` with
/// `password` for the `postgres` user when given (else `trust`; its
/// [`url`](TestServer::url) carries the password), and with `ssl = on` and
/// `tls`'s server certificate when given (clients choose the `sslmode`);
/// started from the local binaries, stopped when dropped. `None` only when
/// it is unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`].
pub async fn private_postgres_secured(
    password: Option<&str>,
    tls: Option<&TestCerts>,
) -> Option<TestServer> {
    let options = local::PostgresOptions {
        password: password.map(str::to_owned),
        tls: tls.map(|t| (t.cert(), t.key())),
    };
    started(Kind::Postgres, move || {
        local::retrying(2, || local::postgres(&options))
    })
    .await
}

/// A new MongoDB of the caller's own (a one-node replica set) serving only
/// TLS with `tls`'s server certificate (its [`url`](TestServer::url) has
/// `tls=true`; add `tlsCAFile`); from the local `mongod` or SecantusDB,
/// stopped when dropped. `None` only when it is unavailable and
/// `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`].
pub async fn private_mongo_tls(tls: &TestCerts) -> Option<TestServer> {
    let options = local::MongoOptions {
        standalone: false,
        auth: None,
        tls: Some(local::MongoTls {
            cert: tls.cert(),
            key: tls.key(),
            cert_and_key: tls.cert_and_key(),
            ca: tls.ca(),
        }),
    };
    started(Kind::Mongo, move || {
        local::retrying(2, || local::mongo(options.clone()))
    })
    .await
}

/// Starts a private local server on a blocking thread.
async fn started(
    kind: Kind,
    start: impl FnOnce() -> Result<local::Local, String> + Send + 'static,
) -> Option<TestServer> {
    match tokio::task::spawn_blocking(start).await {
        Ok(Ok(local)) => Some(TestServer::started_here(kind, local, true)),
        Ok(Err(why)) => unavailable(kind, &why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

fn start_mongo_standalone() -> Result<TestServer, String> {
    let mut notes = Vec::new();
    if container::docker_answers() {
        match container::mongo_standalone() {
            Ok(running) => {
                return Ok(TestServer {
                    kind: Kind::Mongo,
                    url: running.url,
                    source: Source::Container,
                    local: None,
                    private: false,
                    _keep: Some(running.keep),
                });
            }
            Err(why) => notes.push(format!("Docker answered but {why}")),
        }
    }
    let options = local::MongoOptions {
        standalone: true,
        auth: None,
        tls: None,
    };
    match local::retrying(2, || local::mongo(options.clone())) {
        Ok(local) => Ok(TestServer::started_here(Kind::Mongo, local, false)),
        Err(why) => {
            notes.push(why);
            Err(notes.join("; "))
        }
    }
}

/// `None` with a loud line when skipping is allowed; else a panic saying
/// what to install.
/// Says on the terminal, past the test harness's output capture (a passing
/// test's `println!` is never shown), that a test did not run and why.
///
/// ```
/// kv_testkit::not_run("my_test", "it needs a real three-member replica set");
/// ```
pub fn not_run(test: &str, why: &str) {
    shout(&format!(
        "\n!!!!!!!!!! NOT RUN: {test}: {why}. THE TEST DID NOT RUN. !!!!!!!!!!\n"
    ));
}

/// Writes `text` to the process's stderr directly, not through
/// `eprintln!`, which libtest captures. A failed write to stderr has
/// nowhere to go.
fn shout(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn unavailable<T>(kind: Kind, why: &str) -> Option<T> {
    if skip_allowed() {
        shout(&format!(
            "\n!!!!!!!!!! KV-TESTKIT: SKIPPING A TEST: NOT RUN: no {kind} server ({why}); \
             KV_TEST_SKIP_UNAVAILABLE=1 allows this. THE TEST DID NOT RUN. !!!!!!!!!!\n"
        ));
        return None;
    }
    panic!(
        "no {kind} server for the tests: {why}\n\
         To fix: {hint} (scripts/install-test-deps.sh installs every server), \
         or set {var} to the URL of a running server, or start a Docker daemon. \
         KV_TEST_SKIP_UNAVAILABLE=1 skips such tests instead (loudly).",
        hint = kind.install_hint(),
        var = kind.env_var(),
    )
}

/// The shared Redis server. See [`server`].
pub async fn redis() -> Option<&'static TestServer> {
    server(Kind::Redis).await
}

/// The shared PostgreSQL server. See [`server`].
pub async fn postgres() -> Option<&'static TestServer> {
    server(Kind::Postgres).await
}

/// The shared etcd server. See [`server`].
pub async fn etcd() -> Option<&'static TestServer> {
    server(Kind::Etcd).await
}

/// The shared MongoDB server (a one-node replica set). See [`server`].
pub async fn mongo() -> Option<&'static TestServer> {
    server(Kind::Mongo).await
}

fn skip_allowed() -> bool {
    std::env::var("KV_TEST_SKIP_UNAVAILABLE").is_ok_and(|v| v == "1")
}

fn resolve(kind: Kind) -> Result<TestServer, String> {
    if let Ok(url) = std::env::var(kind.env_var()) {
        let url = url.trim();
        if !url.is_empty() {
            return Ok(TestServer {
                kind,
                url: url.to_owned(),
                source: Source::Env,
                local: None,
                private: false,
                _keep: None,
            });
        }
    }
    start_new(kind)
}

/// Starts a server of `kind`: a container when Docker answers, else the
/// local binary.
fn start_new(kind: Kind) -> Result<TestServer, String> {
    let mut notes = Vec::new();
    if container::docker_answers() {
        match container::start(kind) {
            Ok(running) => {
                return Ok(TestServer {
                    kind,
                    url: running.url,
                    source: Source::Container,
                    local: None,
                    private: false,
                    _keep: Some(running.keep),
                });
            }
            Err(why) => notes.push(format!("Docker answered but {why}")),
        }
    } else {
        notes.push(container::NOT_USED.to_owned());
    }
    match local::start(kind) {
        Ok(local) => Ok(TestServer::started_here(kind, local, false)),
        Err(why) => {
            notes.push(why);
            Err(notes.join("; "))
        }
    }
}

//! Live test servers for kv's backends, and the [`FaultProxy`] the
//! conformance suite's fault tests use. Published as `anykv-testkit` (the
//! conformance suite depends on it); a dev-dependency of the backend crates.
//!
//! [`server`] (or [`redis`], [`postgres`], [`etcd`], [`mongo`], [`mysql`]) returns a
//! running server of that kind, started once per test process and shared by
//! all its tests. It is found in this order:
//!
//! 1. a URL in the environment: `KV_TEST_REDIS_URL`, `KV_TEST_POSTGRES_URL`,
//!    `KV_TEST_ETCD_URL`, `KV_TEST_MONGO_URL`, `KV_TEST_MYSQL_URL` (your own
//!    server; nothing is started or stopped);
//! 2. with the `docker` feature (off by default), a container through
//!    testcontainers, when a Docker daemon answers
//!    (Redis 7.2, PostgreSQL 16, MongoDB 7 as a one-node replica set,
//!    etcd 3.5, MariaDB 10.11); `KV_TEST_NO_DOCKER=1` skips this step;
//! 3. the server binary on this machine, started on a free 127.0.0.1 port in
//!    a temp dir: `redis-server`; PostgreSQL's `initdb` + `postgres` (as the
//!    `postgres` user when running as root); `etcd`; a real `mongod` as a
//!    replica set, else SecantusDB, a MongoDB-wire-compatible server
//!    installed by `scripts/install-test-deps.sh`; MariaDB's
//!    `mariadb-install-db` + `mariadbd` with a database `kv`;
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
pub mod crash;
mod local;
mod process;
pub mod proxy;
mod servers;
pub mod tls;

pub use proxy::{FaultProxy, closed_port, seed};
pub use servers::etcd::{EtcdCluster, etcd_cluster, private_etcd_tls};
pub use servers::mongo::{
    MONGO_RS_ENV, MONGO_STANDALONE_ENV, MongoReplicaSet, mongo_replica_set, mongo_standalone,
    private_mongo_tls, private_mongo_with_auth,
};
pub use servers::mysql::private_mysql_secured;
pub use servers::postgres::private_postgres_secured;
pub use servers::redis::{
    REDIS_CLUSTER_ENV, RedisCluster, private_redis_cluster, private_redis_secured, redis_cluster,
};
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
    /// MySQL or MariaDB.
    Mysql,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Redis,
        Kind::Postgres,
        Kind::Etcd,
        Kind::Mongo,
        Kind::Mysql,
    ];

    /// The server's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "Redis",
            Kind::Postgres => "PostgreSQL",
            Kind::Etcd => "etcd",
            Kind::Mongo => "MongoDB",
            Kind::Mysql => "MySQL",
        }
    }

    /// The environment variable that points the tests at an existing server.
    pub fn env_var(self) -> &'static str {
        match self {
            Kind::Redis => "KV_TEST_REDIS_URL",
            Kind::Postgres => "KV_TEST_POSTGRES_URL",
            Kind::Etcd => "KV_TEST_ETCD_URL",
            Kind::Mongo => "KV_TEST_MONGO_URL",
            Kind::Mysql => "KV_TEST_MYSQL_URL",
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
            Kind::Mysql => "apt-get install mariadb-server",
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
    pub(crate) kind: Kind,
    pub(crate) url: String,
    pub(crate) source: Source,
    pub(crate) local: Option<process::Watched>,
    /// Started by [`private`]: stopped when dropped.
    pub(crate) private: bool,
    pub(crate) _keep: Option<Box<dyn Any + Send + Sync>>,
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
    pub(crate) fn started_here(kind: Kind, local: local::Local, private: bool) -> Self {
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

static SERVERS: [OnceLock<Result<TestServer, String>>; 5] = [
    OnceLock::new(),
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

/// Starts a private local server on a blocking thread.
pub(crate) async fn started(
    kind: Kind,
    start: impl FnOnce() -> Result<local::Local, String> + Send + 'static,
) -> Option<TestServer> {
    match tokio::task::spawn_blocking(start).await {
        Ok(Ok(local)) => Some(TestServer::started_here(kind, local, true)),
        Ok(Err(why)) => unavailable(kind, &why),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Reads `read()` every 20 ms until `done` holds for what it read, for at
/// most `within`; returns the last reading (check it: on time-out `done`
/// does not hold). For state a background task changes, such as a
/// store's purge status.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let waited = kv_testkit::poll_until(Duration::from_secs(5), || start.elapsed(), |d| {
///     *d >= Duration::from_millis(50)
/// })
/// .await;
/// assert!(waited >= Duration::from_millis(50));
/// # }
/// ```
pub async fn poll_until<T>(
    within: std::time::Duration,
    mut read: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let reading = read();
        if done(&reading) || tokio::time::Instant::now() >= deadline {
            return reading;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

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

/// `None` with a loud line when skipping is allowed; else a panic saying
/// what to install.
pub(crate) fn unavailable<T>(kind: Kind, why: &str) -> Option<T> {
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

/// The shared MySQL server (MariaDB started locally, or MariaDB 10.11 in
/// Docker), with a database `kv`: its [`url`](TestServer::url) is
/// `mysql://root@127.0.0.1:port/kv`. See [`server`].
pub async fn mysql() -> Option<&'static TestServer> {
    server(Kind::Mysql).await
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

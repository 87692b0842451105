//! MongoDB: replica sets, a standalone server, SCRAM, TLS.

use std::sync::OnceLock;

use crate::{Kind, Source, TestCerts, TestServer, container, local, started, unavailable};

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
/// Unlike [`server`](crate::server), `None` when neither is there: the test server used
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
/// like [`server`](crate::server): [`MONGO_STANDALONE_ENV`], a container, a local `mongod`
/// without `--replSet` or SecantusDB without its replica-set persona.
///
/// # Panics
///
/// As [`server`](crate::server).
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
/// As [`server`](crate::server).
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

/// A new MongoDB of the caller's own (a one-node replica set) serving only
/// TLS with `tls`'s server certificate (its [`url`](TestServer::url) has
/// `tls=true`; add `tlsCAFile`); from the local `mongod` or SecantusDB,
/// stopped when dropped. `None` only when it is unavailable and
/// `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`](crate::server).
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

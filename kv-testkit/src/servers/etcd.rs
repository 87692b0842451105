//! etcd: clusters of several members, TLS.

use crate::{Kind, TestServer, local, unavailable};

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
/// As [`server`](crate::server).
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

/// A new etcd of the caller's own serving its clients over TLS with this
/// PEM certificate and key (its [`url`](TestServer::url) is `https://`),
/// started from the local `etcd` binary and stopped when dropped. `None`
/// only when it is unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`](crate::server).
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

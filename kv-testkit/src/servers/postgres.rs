//! PostgreSQL: passwords and TLS.

use crate::{Kind, TestCerts, TestServer, local, started};

/// A new PostgreSQL of the caller's own requiring `scram-sha-256` with
/// `password` for the `postgres` user when given (else `trust`; its
/// [`url`](TestServer::url) carries the password), and with `ssl = on` and
/// `tls`'s server certificate when given (clients choose the `sslmode`);
/// started from the local binaries, stopped when dropped. `None` only when
/// it is unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`](crate::server).
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

//! MySQL / MariaDB: passwords and TLS.

use crate::{Kind, TestCerts, TestServer, local, started};

/// A new MariaDB of the caller's own, started from the local binaries and
/// stopped when dropped. With `password`, a user `kv_app` with that
/// password and all privileges on the database `kv` (its
/// [`url`](TestServer::url) is theirs, password included); with `tls`, the
/// server serves TLS with `tls`'s server certificate and that user must
/// use it (`REQUIRE SSL`; clients add `ssl-mode` and `ssl-ca`). `None`
/// only when it is unavailable and `KV_TEST_SKIP_UNAVAILABLE=1`.
///
/// # Panics
///
/// As [`server`](crate::server).
pub async fn private_mysql_secured(
    password: Option<&str>,
    tls: Option<&TestCerts>,
) -> Option<TestServer> {
    let options = local::MysqlOptions {
        password: password.map(str::to_owned),
        tls: tls.map(|t| (t.cert(), t.key())),
    };
    started(Kind::Mysql, move || {
        local::retrying(2, || local::mysql(&options))
    })
    .await
}

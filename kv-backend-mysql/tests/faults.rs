//! MySQL under injected faults: connections cut mid-request, stalled,
//! refused, and 64 tasks of load (kv-conformance's fault suite). The store
//! under test goes through a `kv_testkit::FaultProxy`; checks read over a
//! direct connection.

use std::sync::Arc;

use kv_backend_mysql::MysqlStore;
use kv_conformance::fault_suite::{FaultTarget, Timeouts};
use kv_core::KvStore;

struct Mysql;

impl FaultTarget for Mysql {
    const NAME: &'static str = "MySQL";

    async fn server() -> Option<String> {
        Some(kv_testkit::mysql().await?.url().to_owned())
    }

    fn refused() -> String {
        format!("mysql://root@{}/kv", kv_testkit::closed_port())
    }

    async fn connect(address: &str, timeouts: Timeouts) -> kv_core::Result<Arc<dyn KvStore>> {
        let mut builder = MysqlStore::builder().url(address);
        if let Some(request) = timeouts.request {
            builder = builder.request_timeout(request);
        }
        if let Some(connect) = timeouts.connect {
            builder = builder.connect_timeout(connect);
        }
        Ok(builder.connect().await?.into_dyn())
    }
}

kv_conformance::fault_suite!(Mysql);

//! etcd under injected faults: connections cut mid-request, stalled,
//! refused, and 64 tasks of load (kv-conformance's fault suite). The store
//! under test goes through a `kv_testkit::FaultProxy`; checks read over a
//! direct connection. etcd's stores take `host:port` endpoints.

use std::sync::Arc;

use kv_backend_etcd::EtcdStore;
use kv_conformance::fault_suite::{FaultTarget, Timeouts};
use kv_core::KvStore;
use kv_testkit::FaultProxy;

struct Etcd;

impl FaultTarget for Etcd {
    const NAME: &'static str = "etcd";

    async fn server() -> Option<String> {
        let server = kv_testkit::etcd().await?;
        Some(server.kv_url().trim_start_matches("etcd://").to_owned())
    }

    fn through(proxy: &FaultProxy, _address: &str) -> String {
        proxy.addr().to_string()
    }

    fn refused() -> String {
        kv_testkit::closed_port().to_string()
    }

    async fn connect(address: &str, timeouts: Timeouts) -> kv_core::Result<Arc<dyn KvStore>> {
        let mut builder = EtcdStore::builder().endpoints([address]);
        if let Some(request) = timeouts.request {
            builder = builder.request_timeout(request);
        }
        if let Some(connect) = timeouts.connect {
            builder = builder.connect_timeout(connect);
        }
        Ok(builder.connect().await?.into_dyn())
    }
}

kv_conformance::fault_suite!(Etcd);

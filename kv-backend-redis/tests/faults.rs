//! Redis under injected faults: connections cut mid-request, stalled,
//! refused, and 64 tasks of load (kv-conformance's fault suite). The store
//! under test goes through a `kv_testkit::FaultProxy`; checks read over a
//! direct connection.

use std::sync::Arc;

use kv_backend_redis::RedisStore;
use kv_conformance::fault_suite::{FaultTarget, Timeouts};
use kv_core::KvStore;

struct Redis;

impl FaultTarget for Redis {
    const NAME: &'static str = "Redis";

    async fn server() -> Option<String> {
        Some(kv_testkit::redis().await?.url().to_owned())
    }

    fn refused() -> String {
        format!("redis://{}", kv_testkit::closed_port())
    }

    async fn connect(address: &str, timeouts: Timeouts) -> kv_core::Result<Arc<dyn KvStore>> {
        let mut builder = RedisStore::builder().url(address).purge_interval(None);
        if let Some(request) = timeouts.request {
            builder = builder.response_timeout(request);
        }
        if let Some(connect) = timeouts.connect {
            builder = builder.connect_timeout(connect);
        }
        Ok(builder.connect().await?.into_dyn())
    }
}

kv_conformance::fault_suite!(Redis);

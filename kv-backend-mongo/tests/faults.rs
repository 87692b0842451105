//! MongoDB under injected faults: connections cut mid-request, stalled,
//! refused, and 64 tasks of load (kv-conformance's fault suite). The store
//! under test goes through a `kv_testkit::FaultProxy`; checks read over a
//! direct connection.

use std::sync::Arc;

use kv_backend_mongo::MongoStore;
use kv_conformance::fault_suite::{FaultTarget, Timeouts};
use kv_core::KvStore;

struct Mongo;

impl FaultTarget for Mongo {
    const NAME: &'static str = "MongoDB";

    /// After a cut the driver marks the server unknown and may check it
    /// again only 500 ms later (the drivers' minHeartbeatFrequencyMS), so a
    /// cut costs about half a second: four lanes, each with its own proxy
    /// and client, make 250 cuts each at the same time.
    const LANES: u64 = 4;

    async fn server() -> Option<String> {
        Some(kv_testkit::mongo().await?.url().to_owned())
    }

    fn refused() -> String {
        format!(
            "mongodb://{}/?directConnection=true",
            kv_testkit::closed_port()
        )
    }

    /// The driver's server selection waits its whole timeout (the connect
    /// timeout) even for a refused connection.
    async fn connect(address: &str, timeouts: Timeouts) -> kv_core::Result<Arc<dyn KvStore>> {
        let mut builder = MongoStore::builder().url(address);
        if let Some(request) = timeouts.request {
            builder = builder.request_timeout(request);
        }
        if let Some(connect) = timeouts.connect {
            builder = builder.connect_timeout(connect);
        }
        Ok(builder.connect().await?.into_dyn())
    }
}

kv_conformance::fault_suite!(Mongo);

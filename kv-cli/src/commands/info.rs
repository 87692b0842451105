//! `kv info`: what the store is and what it can do.

use super::Ctx;
use crate::failure::{Failure, Outcome};
use crate::units::show_duration;

/// Prints the backend, the redacted URL, one health round trip and the
/// capabilities as a table.
pub(crate) async fn run(ctx: &Ctx<'_>) -> Outcome {
    let store = ctx.store().await?;
    let health = store
        .health()
        .await
        .map_err(|e| Failure::store("health", &e))?;
    let caps = store.capabilities();
    let limit = |n: Option<usize>| n.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    let rows = [
        ("backend", store.backend().to_owned()),
        ("url", ctx.redacted_url()),
        (
            "health",
            format!("ok, {} round trip", show_duration(health.latency)),
        ),
        ("atomic_batch", caps.atomic_batch.to_string()),
        ("max_batch_ops", limit(caps.max_batch_ops)),
        ("max_key_bytes", caps.max_key_bytes.to_string()),
        ("max_value_bytes", caps.max_value_bytes.to_string()),
        ("ttl", caps.ttl.to_string()),
        ("cas", caps.cas.to_string()),
        ("versions", caps.versions.to_string()),
        ("transactions", caps.transactions.to_string()),
        ("counters", caps.counters.to_string()),
        ("listing", caps.listing.to_string()),
        ("ordered_list", caps.ordered_list.to_string()),
        ("snapshot_batch_get", caps.snapshot_batch_get.to_string()),
        ("persistent", caps.persistent.to_string()),
    ];
    for (name, value) in rows {
        println!("{name:<20} {value}");
    }
    Ok(())
}

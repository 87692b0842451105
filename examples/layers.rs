//! Layers around a store: a concurrency limit, deadlines, retries, metrics
//! exported for Prometheus and one tracing span per call, printed to stderr.
//!
//! ```text
//! cargo run --example layers --features tracing,metrics                # memory://
//! cargo run --example layers --features tracing,metrics,redis -- redis://127.0.0.1:6379
//! ```
//!
//! It prints the Prometheus text a `/metrics` endpoint would serve.

use std::time::Duration;

use futures::TryStreamExt;
use kv::{ConcurrencyLimitLayer, MetricsLayer, RetryLayer, TimeoutLayer, TracingLayer};
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Spans go to stderr; `RUST_LOG`-style filtering is up to the app.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    // The recorder every `MetricsLayer` reports to; serve `handle.render()`
    // on your HTTP server's `/metrics`.
    let handle = PrometheusBuilder::new().install_recorder()?;

    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".to_owned());
    // Innermost first: the layer added last sees each call first.
    let kv = kv::connect(&url)
        .await?
        .layer(ConcurrencyLimitLayer::new(64))
        .layer(TimeoutLayer::new(Duration::from_secs(1)).batch(Duration::from_secs(5)))
        .layer(RetryLayer::new().max_retries(3))
        .layer(MetricsLayer::new())
        .layer(TracingLayer::new());

    kv.set("page:/home", &1u64).await?;
    kv.batch_set((0..100).map(|i| (format!("page:/post/{i}"), i)))
        .await?;
    let views: Vec<Option<u64>> = kv
        .batch_get(["page:/home", "page:/post/7", "page:/none"])
        .await?;
    assert_eq!(views, [Some(1), Some(7), None]);
    let swapped = kv
        .compare_and_swap("page:/home", Some(&1u64), Some(&2u64))
        .await?;
    assert!(swapped);
    let keys: Vec<kv::Key> = kv.list_stream("page:").try_collect().await?;
    println!("{} keys under page:", keys.len());

    let text = handle.render();
    println!("{text}");
    assert!(text.contains("kv_operations_total"), "no metrics rendered");
    Ok(())
}

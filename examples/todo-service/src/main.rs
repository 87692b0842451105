//! The todo service: `KV_URL` picks the store (default `memory://`),
//! `BIND` the address (default `127.0.0.1:3000`).
//!
//! ```text
//! cargo run -p todo-service
//! KV_URL=redis://127.0.0.1:6379 cargo run -p todo-service --features redis
//! curl -X POST localhost:3000/todos -H 'content-type: application/json' -d '{"title":"try kv"}'
//! ```

use std::error::Error;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("KV_URL").unwrap_or_else(|_| "memory://".to_owned());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    // The URL may hold a password: print it redacted.
    let shown = kv::redact_url(&url);
    let app = todo_service::connect(&url)
        .await
        .map_err(|e| format!("cannot open the store at {shown}: {e}"))?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!(
        "todo-service on http://{} with {shown}",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

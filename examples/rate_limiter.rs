//! A rate limiter on an atomic counter (one per time window, which expires
//! with its window) and a lock with a TTL (released by its owner, or by
//! time if the owner dies).
//!
//! ```text
//! cargo run --example rate_limiter                             # memory://
//! cargo run --example rate_limiter --features postgres -- postgres://postgres:pw@127.0.0.1/postgres
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kv::Kv;

/// At most `limit` calls per `window` for each user.
struct RateLimiter {
    kv: Kv,
    limit: u32,
    window: Duration,
}

impl RateLimiter {
    /// Counts one call made at `now` (an application passes
    /// `SystemTime::now()`); `false` when the user is over the limit in
    /// `now`'s window. One atomic increment of the window's counter: the
    /// counter is created with a TTL (it outlives its window a little,
    /// then expires), and later increments keep that TTL. A call over the
    /// limit still counts, which is what a fixed window does.
    async fn allow(&self, user: &str, now: SystemTime) -> kv::Result<bool> {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let window = now.as_millis() / self.window.as_millis().max(1);
        let key = format!("{user}:{window}");
        let calls = self.kv.increment_with_ttl(&key, 1, self.window * 2).await?;
        Ok(calls <= i64::from(self.limit))
    }
}

/// Takes the lock `name` for `owner` until `ttl` passes, if it is free.
async fn try_lock(kv: &Kv, name: &str, owner: &str, ttl: Duration) -> kv::Result<bool> {
    kv.compare_and_swap_with_ttl(name, None, Some(owner), ttl)
        .await
}

/// Releases the lock only if `owner` still holds it (not after it expired
/// and someone else took it).
async fn unlock(kv: &Kv, name: &str, owner: &str) -> kv::Result<bool> {
    kv.compare_and_swap(name, Some(owner), None).await
}

#[tokio::main]
async fn main() -> kv::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".to_owned());
    let kv = kv::connect(&url).await?;
    let caps = kv.capabilities();
    if !caps.counters || !caps.cas || !caps.ttl {
        println!("{} has no counters, CAS or TTL", kv.store().backend());
        return Ok(());
    }

    // 8 tasks send 20 calls each for one user, limit 50 per minute:
    // exactly 50 are allowed, however the calls interleave. The calls all
    // count at the instant the demo starts, so a slow store whose calls
    // cross a minute boundary still sees one window (with the wall clock,
    // such a run would rightly allow 50 in each window).
    let now = SystemTime::now();
    let limiter = Arc::new(RateLimiter {
        kv: kv.namespace("rate")?,
        limit: 50,
        window: Duration::from_secs(60),
    });
    let user = format!("user-{}", std::process::id());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, user) = (limiter.clone(), user.clone());
            tokio::spawn(async move {
                let mut allowed = 0;
                for _ in 0..20 {
                    allowed += u32::from(limiter.allow(&user, now).await?);
                }
                kv::Result::Ok(allowed)
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.expect("a limiter task panicked")?;
    }
    println!("160 calls, limit 50 -> {allowed} allowed");
    assert_eq!(allowed, 50);

    // A lock with a TTL.
    let locks = kv.namespace("locks")?;
    let ttl = Duration::from_millis(500);
    println!(
        "A takes the lock -> {}",
        try_lock(&locks, "report", "A", ttl).await?
    );
    println!(
        "B takes the lock -> {}",
        try_lock(&locks, "report", "B", ttl).await?
    );
    println!("A releases it -> {}", unlock(&locks, "report", "A").await?);
    println!(
        "B takes the lock -> {}",
        try_lock(&locks, "report", "B", ttl).await?
    );
    // B "crashes" without unlocking: the TTL frees the lock.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    println!(
        "after B's TTL, C takes the lock -> {}",
        try_lock(&locks, "report", "C", ttl).await?
    );
    println!(
        "B's late unlock -> {}",
        unlock(&locks, "report", "B").await?
    );
    unlock(&locks, "report", "C").await?;
    Ok(())
}

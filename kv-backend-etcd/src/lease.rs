//! Shared leases: the storage of expiring keys is reclaimed by etcd leases,
//! and one lease serves every key that expires in the same bucket of time,
//! so a TTL write does not pay a LeaseGrant round trip each time.
//!
//! Exactness does not depend on the lease: every read filters by the expiry
//! stamped in the value. A lease only has to outlive its keys' expiry, and
//! it does: a key expiring at `at` gets the lease of the bucket ending at
//! `end >= at`, granted for `end - now` plus a second, rounded up. A bucket
//! is `width` wide, the smallest power of two of seconds at least 1/16 of
//! the TTL: a key's storage is reclaimed at most a second plus 1/16 of its
//! TTL after it expires (plus etcd's own revoke lag), and keys with similar
//! TTLs written close together share one lease.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::LeaseClient;
use tokio::sync::OnceCell;

/// Extra lifetime of every lease past its bucket's end, in seconds: covers
/// the time between computing `now` and the server granting the lease.
const SLACK_SECS: i64 = 1;

/// The lease cache of one store.
pub(crate) struct Leases {
    client: LeaseClient,
    /// Bucket end (Unix ms) to its lease, granted on first use.
    buckets: Mutex<BTreeMap<u64, Arc<OnceCell<i64>>>>,
}

impl Leases {
    pub(crate) fn new(client: LeaseClient) -> Self {
        Self {
            client,
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    /// The lease for a key written at `now` (Unix ms) with `ttl`: the cached
    /// lease of its bucket, or a new one (one LeaseGrant) on the bucket's
    /// first use.
    pub(crate) async fn lease_for(
        &self,
        ttl: Duration,
        now: u64,
    ) -> Result<i64, etcd_client::Error> {
        let end = bucket_end(ttl, now);
        let cell = {
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(cell) = buckets.get(&end) {
                cell.clone()
            } else {
                // Buckets that ended are of no use to any later write.
                *buckets = buckets.split_off(&now.saturating_add(1));
                buckets.entry(end).or_default().clone()
            }
        };
        let id = cell
            .get_or_try_init(|| async {
                let secs = i64::try_from(end.saturating_sub(now).div_ceil(1000))
                    .unwrap_or(i64::MAX / 2)
                    .saturating_add(SLACK_SECS);
                let granted = self.client.clone().grant(secs, None).await?;
                Ok::<i64, etcd_client::Error>(granted.id())
            })
            .await?;
        Ok(*id)
    }

    /// Forgets every cached lease, after etcd said one no longer exists.
    pub(crate) fn forget_all(&self) {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many buckets are cached (for tests and `Debug`).
    pub(crate) fn cached(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The end (Unix ms) of the bucket holding the expiry `now + ttl`: a
/// multiple of the bucket width, at or after the expiry.
pub(crate) fn bucket_end(ttl: Duration, now: u64) -> u64 {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let at = now.saturating_add(ttl_ms);
    let width = ttl_ms.div_ceil(16 * 1000).max(1).next_power_of_two() * 1000;
    at.div_ceil(width).saturating_mul(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_end_at_or_after_the_expiry_within_a_sixteenth_of_the_ttl() {
        for (ttl_ms, now) in [
            (1, 0),
            (1, 999),
            (1500, 1_700_000_000_123),
            (5_000, 1_700_000_000_999),
            (60_000, 1_700_000_000_001),
            (86_400_000, 1_700_000_000_500),
            (315_360_000_000, 1_700_000_000_000),
        ] {
            let ttl = Duration::from_millis(ttl_ms);
            let at = now + ttl_ms;
            let end = bucket_end(ttl, now);
            assert!(end >= at, "{ttl_ms} {now}");
            let slack = (ttl_ms / 16).max(1000) * 2;
            assert!(end - at < slack, "{ttl_ms}: {} ms late", end - at);
        }
    }

    #[test]
    fn writes_close_together_share_a_bucket() {
        let ttl = Duration::from_secs(5);
        let ends: std::collections::BTreeSet<u64> = (0..2_000u64)
            .map(|ms| bucket_end(ttl, 1_700_000_000_000 + ms))
            .collect();
        assert!(ends.len() <= 3, "{ends:?}");
    }
}

//! Exponential backoff with full jitter, shared by the BulkWriter's chunk
//! retries and the retry layer.

use std::time::Duration;

/// The pause before retry number `attempt` (1 for the first retry): a random
/// duration in `[0, min(first * 2^(attempt-1), max)]` ("full jitter"), so
/// concurrent callers that fail at the same instant spread out. Backends use
/// it (as `kv_core::backend::backoff_delay`) between the attempts of a
/// read-decide-write loop that lost a race.
///
/// ```
/// use std::time::Duration;
/// use kv_core::backend::backoff_delay;
///
/// let pause = backoff_delay(Duration::from_millis(1), Duration::from_millis(50), 3);
/// assert!(pause <= Duration::from_millis(4));
/// ```
pub fn delay(first: Duration, max: Duration, attempt: u32) -> Duration {
    let ceiling = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(max);
    let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=ceiling_nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_ceiling_is_no_pause_and_pauses_vary() {
        assert_eq!(delay(Duration::ZERO, Duration::ZERO, 1), Duration::ZERO);
        let pauses: std::collections::HashSet<Duration> = (0..100)
            .map(|_| delay(Duration::from_millis(10), Duration::from_millis(10), 1))
            .collect();
        assert!(pauses.len() > 50, "full jitter spreads callers out");
    }

    #[test]
    fn delay_doubles_up_to_its_maximum() {
        let (first, max) = (Duration::from_millis(10), Duration::from_millis(35));
        for _ in 0..200 {
            assert!(delay(first, max, 1) <= Duration::from_millis(10));
            assert!(delay(first, max, 2) <= Duration::from_millis(20));
            assert!(delay(first, max, 9) <= max);
            assert!(delay(first, max, u32::MAX) <= max);
        }
    }
}

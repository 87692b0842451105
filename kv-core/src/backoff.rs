//! Exponential backoff with full jitter, shared by the BulkWriter's chunk
//! retries and the retry layer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The pause before retry number `attempt` (1 for the first retry): a random
/// duration in `[0, min(first * 2^(attempt-1), max)]` ("full jitter").
/// `salt` spreads concurrent callers that fail at the same instant.
pub(crate) fn delay(first: Duration, max: Duration, attempt: u32, salt: u64) -> Duration {
    let ceiling = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(max);
    jitter(ceiling, salt, attempt)
}

/// A random duration in `[0, ceiling]`, from the clock, the salt and the
/// attempt, without a random-number dependency.
fn jitter(ceiling: Duration, salt: u64, attempt: u32) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = u64::from(nanos) ^ salt.rotate_left(17) ^ (u64::from(attempt) << 40) | 1;
    // xorshift64
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(x % ceiling_nanos.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_its_ceiling() {
        for i in 0..1000 {
            assert!(jitter(Duration::from_millis(7), i, 3) <= Duration::from_millis(7));
        }
        assert_eq!(jitter(Duration::ZERO, 1, 1), Duration::ZERO);
    }

    #[test]
    fn delay_doubles_up_to_its_maximum() {
        let (first, max) = (Duration::from_millis(10), Duration::from_millis(35));
        for salt in 0..200 {
            assert!(delay(first, max, 1, salt) <= Duration::from_millis(10));
            assert!(delay(first, max, 2, salt) <= Duration::from_millis(20));
            assert!(delay(first, max, 9, salt) <= max);
            assert!(delay(first, max, u32::MAX, salt) <= max);
        }
    }
}

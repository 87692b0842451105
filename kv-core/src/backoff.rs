//! Exponential backoff with full jitter, shared by the BulkWriter's chunk
//! retries, the retry layer and every read-decide-write loop that can lose
//! a race ([`RaceBackoff`]).

use std::time::Duration;

use tokio::time::Instant;

/// The pause before retry number `attempt` (1 for the first retry): a random
/// duration in `[0, min(first * 2^(attempt-1), max)]` ("full jitter"), so
/// concurrent callers that fail at the same instant spread out.
pub(crate) fn delay(first: Duration, max: Duration, attempt: u32) -> Duration {
    let ceiling = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(max);
    let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=ceiling_nanos))
}

/// The pause after the first lost race is at most as long as the attempt
/// that lost, and never less than this.
const RACE_FIRST: Duration = Duration::from_millis(1);
/// The ceiling stops doubling here (unless one attempt alone took longer).
const RACE_MAX: Duration = Duration::from_secs(1);

/// The pauses of a read-decide-write loop (an optimistic update, a guarded
/// increment) between attempts that lost a race to another writer.
///
/// Full jitter whose ceiling is measured in attempts: it starts at the
/// length of the attempt that lost (at least 1 ms) and doubles with every
/// further loss, up to 1 s. Contenders on a slow server so spread over as
/// many attempt lengths as on a fast one; a fixed ceiling in milliseconds
/// lets a slow server's writers collide again and again (one of 8 lost 32
/// attempts in a row on the test MongoDB server with a 50 ms ceiling).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use kv_core::backend::RaceBackoff;
///
/// let mut backoff = RaceBackoff::start();
/// for attempt in 0..3 {
///     if attempt > 0 {
///         backoff.lost().await; // pauses, then the next attempt reads afresh
///     }
///     // read, decide, write if unchanged...
/// }
/// assert_eq!(backoff.losses(), 2);
/// # });
/// ```
#[derive(Debug)]
pub struct RaceBackoff {
    losses: u32,
    attempt_started: Instant,
}

impl RaceBackoff {
    /// Starts measuring the first attempt.
    pub fn start() -> Self {
        Self {
            losses: 0,
            attempt_started: Instant::now(),
        }
    }

    /// The attempt since the last call (or [`RaceBackoff::start`]) lost:
    /// pauses for a random time up to its ceiling and starts measuring the
    /// next attempt.
    pub async fn lost(&mut self) {
        let pause = self.next_pause();
        tokio::time::sleep(pause).await;
        self.attempt_started = Instant::now();
    }

    /// How many attempts lost so far.
    pub fn losses(&self) -> u32 {
        self.losses
    }

    fn next_pause(&mut self) -> Duration {
        self.losses = self.losses.saturating_add(1);
        let first = self.attempt_started.elapsed().max(RACE_FIRST);
        delay(first, RACE_MAX.max(first), self.losses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn race_pauses_scale_with_the_attempt_and_double() {
        for _ in 0..50 {
            let mut backoff = RaceBackoff::start();
            tokio::time::advance(Duration::from_millis(40)).await;
            let before = Instant::now();
            backoff.lost().await;
            assert!(before.elapsed() <= Duration::from_millis(40));
            tokio::time::advance(Duration::from_millis(40)).await;
            let before = Instant::now();
            backoff.lost().await;
            assert!(before.elapsed() <= Duration::from_millis(80));
            for _ in 0..20 {
                backoff.lost().await;
            }
            assert_eq!(backoff.losses(), 22);
            // Attempts of no time at all: 1 ms doubling, capped at 1 s.
            let pause = backoff.next_pause();
            assert!(pause <= RACE_MAX, "{pause:?}");
        }
        let mut fast = RaceBackoff::start();
        assert!(fast.next_pause() <= RACE_FIRST);
        let pauses: std::collections::HashSet<Duration> = (0..100)
            .map(|_| {
                let mut b = RaceBackoff::start();
                b.losses = 5;
                b.next_pause()
            })
            .collect();
        assert!(pauses.len() > 50, "full jitter spreads contenders out");
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_longer_than_the_cap_sets_the_ceiling() {
        let mut backoff = RaceBackoff::start();
        tokio::time::advance(Duration::from_secs(3)).await;
        let pause = backoff.next_pause();
        assert!(pause <= Duration::from_secs(3));
    }

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

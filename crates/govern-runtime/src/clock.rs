//! The runtime's clock: wall time at start, advanced by tokio's clock, so that tests drive
//! every decision time and state timeout with `tokio::time::pause` and `advance`.

use std::time::Duration;

use govern_governors::Timestamp;
use tokio::time::Instant;

/// Where a deadline too far ahead for the platform's `Instant` is put: 30 years (tokio's own
/// far-future bound for its timers).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// Decision times for governors and deadlines for state timeouts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    /// What `now` is at `origin`.
    epoch: Timestamp,
    /// The tokio instant the clock started at.
    origin: Instant,
}

impl Clock {
    /// A clock reading `epoch` now.
    pub(crate) fn starting_at(epoch: Timestamp) -> Self {
        Self { epoch, origin: Instant::now() }
    }

    /// The current time.
    pub(crate) fn now(&self) -> Timestamp {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.epoch.plus_ms(elapsed)
    }

    /// The tokio instant at which the clock reads `at` (now, if `at` has passed). A time
    /// beyond what the platform's `Instant` can hold (a timestamp argument centuries ahead,
    /// where `Instant` spans only about 584 years) is capped at [`FAR_FUTURE`] from the
    /// origin rather than overflowing: such a timer is never reached in practice.
    pub(crate) fn deadline(&self, at: Timestamp) -> Instant {
        let after = Duration::from_millis(at.as_ms().saturating_sub(self.epoch.as_ms()));
        instant_after(self.origin, after)
    }
}

/// `origin + after`, or [`FAR_FUTURE`] from `origin` where the platform's `Instant` cannot
/// hold the sum.
fn instant_after(origin: Instant, after: Duration) -> Instant {
    origin.checked_add(after).unwrap_or_else(|| origin + FAR_FUTURE)
}

/// The wall clock, read once when a runtime starts without a configured epoch.
pub(crate) fn wall_now() -> Timestamp {
    #[allow(clippy::disallowed_methods, reason = "the one read of the wall clock")]
    let now = std::time::SystemTime::now();
    let ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_past_what_instant_holds_is_capped_not_an_overflow() {
        let origin = Instant::now();
        // `Duration::MAX` overflows every platform's `Instant` (a timestamp's `u64` of
        // milliseconds does not on all of them).
        assert_eq!(instant_after(origin, Duration::MAX), origin + FAR_FUTURE);
        assert_eq!(instant_after(origin, FAR_FUTURE), origin + FAR_FUTURE);
        let clock = Clock::starting_at(Timestamp(0));
        assert!(clock.deadline(Timestamp(u64::MAX)) >= clock.origin + FAR_FUTURE);
        assert_eq!(clock.deadline(Timestamp(1_000)), clock.origin + Duration::from_secs(1));
    }
}

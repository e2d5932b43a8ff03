//! The runtime's clock: wall time at start, advanced by tokio's clock, so that tests drive
//! every decision time and state timeout with `tokio::time::pause` and `advance`.

use std::time::Duration;

use govern_governors::Timestamp;
use tokio::time::Instant;

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

    /// The tokio instant at which the clock reads `at` (now, if `at` has passed).
    pub(crate) fn deadline(&self, at: Timestamp) -> Instant {
        let after = at.as_ms().saturating_sub(self.epoch.as_ms());
        self.origin + Duration::from_millis(after)
    }
}

/// The wall clock, read once when a runtime starts without a configured epoch.
pub(crate) fn wall_now() -> Timestamp {
    #[allow(clippy::disallowed_methods, reason = "the one read of the wall clock")]
    let now = std::time::SystemTime::now();
    let ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}

//! Reset periods: which period a time falls in, for calendar (UTC) and rolling windows.

use govern_governors::{DAY_MS, Timestamp};
use serde::{Deserialize, Serialize};

/// The most buckets a rolling window may have (its ring's size).
pub const ROLLING_BUCKETS_MAX: u32 = 1_440;

/// When a meter's counter starts again from zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reset {
    /// Never: a running total (seats, storage).
    Never,
    /// At every UTC midnight.
    Daily,
    /// At 00:00 UTC on the first day of every calendar month.
    Monthly,
    /// A sliding window of `window_ms`, kept as `buckets` buckets of `window_ms / buckets`
    /// each: usage leaves the window one whole bucket at a time.
    Rolling {
        /// The window's length in ms, a multiple of `buckets`.
        window_ms: u64,
        /// How many buckets, from 1 to [`ROLLING_BUCKETS_MAX`].
        buckets: u32,
    },
}

/// Which period (or, for a rolling window, which bucket) a time falls in: days since the
/// epoch for [`Reset::Daily`], months since January 1970 for [`Reset::Monthly`], buckets since
/// the epoch for [`Reset::Rolling`], always 0 for [`Reset::Never`]. Keys of one meter increase
/// with time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeriodKey(pub u64);

impl Reset {
    /// A problem with this reset's parameters, if any.
    pub(crate) fn problem(self) -> Option<&'static str> {
        match self {
            Self::Rolling { buckets: 0, .. } => Some("a rolling window needs at least one bucket"),
            Self::Rolling { buckets, .. } if buckets > ROLLING_BUCKETS_MAX => {
                Some("a rolling window has more buckets than ROLLING_BUCKETS_MAX")
            }
            Self::Rolling { window_ms, buckets } => {
                if window_ms == 0 {
                    Some("a rolling window must be longer than 0 ms")
                } else if window_ms % u64::from(buckets) != 0 {
                    Some("a rolling window's length must be a multiple of its bucket count")
                } else {
                    None
                }
            }
            Self::Never | Self::Daily | Self::Monthly => None,
        }
    }

    /// The length of one rolling bucket in ms (at least 1); `None` for calendar resets.
    pub(crate) fn bucket_ms(self) -> Option<u64> {
        match self {
            Self::Rolling { window_ms, buckets } => {
                Some((window_ms / u64::from(buckets.max(1))).max(1))
            }
            Self::Never | Self::Daily | Self::Monthly => None,
        }
    }

    /// The period `at` falls in.
    #[must_use]
    pub fn key(self, at: Timestamp) -> PeriodKey {
        let ms = at.as_ms();
        PeriodKey(match self {
            Self::Never => 0,
            Self::Daily => ms / DAY_MS,
            Self::Monthly => {
                let (y, m, _) = civil_from_days(ms / DAY_MS);
                (y - 1970) * 12 + (m - 1)
            }
            Self::Rolling { .. } => ms / self.bucket_ms().unwrap_or(1),
        })
    }

    /// When the period `key` starts (saturating at the end of time); for a rolling window the
    /// start of that bucket.
    #[must_use]
    pub fn start(self, key: PeriodKey) -> Timestamp {
        Timestamp(match self {
            Self::Never => 0,
            Self::Daily => key.0.saturating_mul(DAY_MS),
            Self::Monthly => {
                let (y, m) = (1970 + key.0 / 12, key.0 % 12 + 1);
                // `y` is 1970 or later and `m` a month: always a day (saturating).
                days_from_civil(y, m, 1).map_or(u64::MAX, |days| days.saturating_mul(DAY_MS))
            }
            Self::Rolling { .. } => key.0.saturating_mul(self.bucket_ms().unwrap_or(1)),
        })
    }
}

pub(crate) use govern_governors::civil_from_days;
use govern_governors::days_from_civil;

#[cfg(test)]
mod tests;

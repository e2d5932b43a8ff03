//! Usage metering, quota thresholds, event deduplication and GCRA rate limits, decided purely.
//!
//! Nothing here reads a clock, does I/O or knows tokio: every decision takes `now` (a
//! [`Timestamp`], milliseconds since the epoch) as an argument, so the same inputs always give
//! the same answer and the runtime can replay receipted [`UsageBatch`]es into the same
//! counters. See `docs/usage.md`.

mod dedup;
mod error;
mod event;
mod meters;
mod period;
mod rate;

pub use dedup::{DEDUP_ENTRIES_MAX, DEDUP_WINDOW_MS, Dedup};
pub use error::UsageError;
pub use event::{
    EVENT_FUTURE_SKEW_MS, EventId, ID_LEN_MAX, MeterId, UsageEvent, quantity_from_i64,
    quantity_from_str,
};
pub use meters::{
    BATCH_EVENTS_MAX, BatchEvent, METERS_MAX, MeterConfig, MeterValue, Meters, Outcome, Recorded,
    Rollover, Threshold, Thresholds, UsageBatch,
};
pub use period::{PeriodKey, ROLLING_BUCKETS_MAX, Reset};
pub use rate::{
    RATE_KEYS_MAX, RATE_PERIOD_MS_MAX, RATE_QUOTAS_MAX, RateDecision, RateKey, RateLimits,
    RateQuota, RetryAfter,
};

pub use govern_governors::Timestamp;

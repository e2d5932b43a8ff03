//! The one error type of the crate: every way an input can be refused.

use govern_governors::Timestamp;

/// Why a usage event, a meter definition, a batch or a rate-limit check was refused. A refused
/// call changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// An id (event, meter, tenant, rate key) is empty.
    #[error("{what} is empty")]
    EmptyId {
        /// Which id.
        what: &'static str,
    },
    /// An id is longer than [`crate::ID_LEN_MAX`] bytes.
    #[error("{what} is {len} bytes long, more than the {max} allowed")]
    IdTooLong {
        /// Which id.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An id holds a control character.
    #[error("{what} holds a control character")]
    IdControlChar {
        /// Which id.
        what: &'static str,
    },
    /// A quantity of zero: it would count nothing and still use a deduplication slot.
    #[error("quantity is zero")]
    ZeroQuantity,
    /// A negative quantity.
    #[error("quantity {0} is negative")]
    NegativeQuantity(i64),
    /// A quantity that is not a whole number of units.
    #[error("quantity {0:?} is not a whole number of units")]
    NotWholeQuantity(String),
    /// An event dated further in the future than [`crate::EVENT_FUTURE_SKEW_MS`] allows.
    #[error("event at {at} is more than {skew_ms} ms after now ({now})")]
    EventInFuture {
        /// The event's time.
        at: Timestamp,
        /// The time of the decision.
        now: Timestamp,
        /// The allowed skew.
        skew_ms: u64,
    },
    /// An event older than the deduplication window: it could be a duplicate that was forgotten.
    #[error(
        "event at {at} is older than the {window_ms} ms deduplication window before now ({now})"
    )]
    EventTooOld {
        /// The event's time.
        at: Timestamp,
        /// The time of the decision.
        now: Timestamp,
        /// The deduplication window.
        window_ms: u64,
    },
    /// A meter that was never defined.
    #[error("meter {0:?} is not defined")]
    UnknownMeter(String),
    /// More meters than [`crate::METERS_MAX`].
    #[error("more than {0} meters")]
    TooManyMeters(usize),
    /// A meter configuration that cannot work.
    #[error("meter {meter:?}: {problem}")]
    BadMeterConfig {
        /// The meter.
        meter: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// Adding the quantity would overflow the meter's counter.
    #[error("meter {0:?} would overflow")]
    CounterOverflow(String),
    /// A batch whose totals do not match its events, or with too many events.
    #[error("batch for meter {meter:?}: {problem}")]
    BadBatch {
        /// The meter.
        meter: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A batch for a period before the meter's current one: replay must be in order.
    #[error("batch for meter {meter:?} is for period {batch:?}, before the current {current:?}")]
    StaleBatch {
        /// The meter.
        meter: String,
        /// The batch's period.
        batch: crate::PeriodKey,
        /// The meter's current period.
        current: crate::PeriodKey,
    },
    /// A rate quota that cannot work (zero burst or zero period).
    #[error("rate quota: {0}")]
    BadRateQuota(&'static str),
    /// More distinct rate quotas than [`crate::RATE_QUOTAS_MAX`].
    #[error("more than {0} distinct rate quotas")]
    TooManyRateQuotas(usize),
    /// More live rate keys than [`crate::RATE_KEYS_MAX`], none of them idle.
    #[error("more than {0} live rate-limit keys")]
    TooManyRateKeys(usize),
}

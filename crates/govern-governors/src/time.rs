//! Time as a value. The pure core never reads a clock: the caller passes `Ctx::now`.

use std::fmt;

/// One minute in milliseconds.
pub const MINUTE_MS: u64 = 60 * 1_000;
/// One hour in milliseconds.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp `ms` milliseconds later, saturating at the end of time.
    #[must_use]
    pub const fn plus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_ms(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Everything a decision may know besides the machine and the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// The time of the decision, from the runtime's clock (virtual in tests).
    pub now: Timestamp,
}

impl Ctx {
    /// A context at `now_ms` milliseconds since the epoch.
    #[must_use]
    pub const fn at_ms(now_ms: u64) -> Self {
        Self { now: Timestamp(now_ms) }
    }
}

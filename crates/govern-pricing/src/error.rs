//! What can go wrong pricing a period.

/// Bad input to [`crate::invoice`] or [`crate::aggregate`]: never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// A period of no days or more than [`crate::PERIOD_DAYS_MAX`].
    #[error("a billing period has 1 to {max} days, not {days}", max = crate::PERIOD_DAYS_MAX)]
    PeriodDays {
        /// The days given.
        days: u32,
    },
    /// A calendar month that is not one ([`crate::Period::month`]).
    #[error("{year}-{month} is not a month from {min}-01 to {max}-12", min = crate::YEAR_MIN, max = crate::YEAR_MAX)]
    BadMonth {
        /// The year given.
        year: u32,
        /// The month given.
        month: u32,
    },
    /// A plan change on a day outside the period: it must fall after its first day and before
    /// its end (day 1 to days - 1; a change on day 0 is simply the new plan).
    #[error("a plan change on day {day} of a {days}-day period: it falls on day 1 to {last}", last = days.saturating_sub(1))]
    ChangeDay {
        /// The day given.
        day: u32,
        /// The period's days.
        days: u32,
    },
    /// The plans before and after a change bill in different currencies.
    #[error("the plan changed from {from} to {to}: an invoice has one currency")]
    CurrencyMismatch {
        /// The old plan's currency code.
        from: &'static str,
        /// The new plan's currency code.
        to: &'static str,
    },
    /// The plans before and after a change bill per different intervals.
    #[error("the plan changed from a {from} price to a {to} price: prorate within one interval")]
    IntervalMismatch {
        /// The old plan's interval.
        from: govern_plans::Interval,
        /// The new plan's interval.
        to: govern_plans::Interval,
    },
    /// A sum or an amount too large to represent.
    #[error("{what} overflows")]
    Overflow {
        /// What overflowed (a meter's name, "subtotal").
        what: String,
    },
    /// A meter's tiers whose bounds do not rise (a plan built in code, not through the
    /// catalog's validators, which refuse it).
    #[error("{what}: tier {tier}'s bound is not above the tier before it")]
    TierOrder {
        /// The meter.
        what: String,
        /// The tier (from 0).
        tier: usize,
    },
    /// More events than [`crate::EVENTS_MAX`].
    #[error("{0} events: at most {max} are aggregated at once", max = crate::EVENTS_MAX)]
    TooManyEvents(usize),
    /// More metered quantities than [`crate::USAGE_METERS_MAX`].
    #[error("{0} meters of usage: at most {max}", max = crate::USAGE_METERS_MAX)]
    TooManyMeters(usize),
}

//! Prices and invoices, pure: from a plan's pricing (`govern_plans::Plan`: its base price and
//! its `[plans.<id>.pricing.<meter>]` tables) and a tenant's usage for one billing period,
//! [`invoice`] computes the invoice: the base price (prorated by days when the plan changed
//! mid-period), then each meter's overage beyond its allowance, tier by tier, every line
//! rounded half-even to the currency's minor unit. [`aggregate`] turns a period's usage events
//! into a meter's quantity (sum, count, max, unique count).
//!
//! No clock, no I/O: the period is a value (its label and number of days) and the change's day
//! is a value. Money is `rust_decimal::Decimal` with an `iso_currency::Currency`, never a
//! float. The rules: `docs/pricing.md`.

mod aggregate;
mod error;
mod invoice;
mod serde_money;

pub use aggregate::{Event, aggregate, count, max, sum, unique_count};
pub use error::PricingError;
pub use invoice::{
    Invoice, LineItem, LineKind, Period, PlanChange, Proration, YEAR_MAX, YEAR_MIN, invoice,
    meter_charge, round,
};

/// The most days of one billing period (a year of 366 days).
pub const PERIOD_DAYS_MAX: u32 = 366;
/// The most usage events aggregated at once.
pub const EVENTS_MAX: usize = 10_000_000;
/// The most metered quantities one invoice prices.
pub const USAGE_METERS_MAX: usize = 1_000;

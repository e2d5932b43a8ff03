//! One billing period's invoice.

use std::collections::BTreeMap;

use govern_plans::{MeterPricing, Plan, TierMode};
use iso_currency::Currency;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::{PERIOD_DAYS_MAX, PricingError, USAGE_METERS_MAX, serde_money};

/// A billing period: one interval of the plan's price (a month for a monthly plan).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Its name on the invoice (`2026-01`).
    pub label: String,
    /// Its length in days (1 to [`PERIOD_DAYS_MAX`]): proration counts days.
    pub days: u32,
}

/// The first year [`Period::month`] accepts (govern-usage's monthly periods count from it).
pub const YEAR_MIN: u32 = 1970;
/// The last year [`Period::month`] accepts.
pub const YEAR_MAX: u32 = 9999;

impl Period {
    /// A calendar month (UTC): label `2026-01`, its days (28 to 31, leap years by the
    /// Gregorian rule).
    ///
    /// # Errors
    /// A month outside 1 to 12, or a year outside [`YEAR_MIN`] to [`YEAR_MAX`].
    pub fn month(year: u32, month: u32) -> Result<Self, PricingError> {
        if !(YEAR_MIN..=YEAR_MAX).contains(&year) || !(1..=12).contains(&month) {
            return Err(PricingError::BadMonth { year, month });
        }
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        Ok(Self { label: format!("{year:04}-{month:02}"), days })
    }

    /// The month of a monthly period key: months since January 1970, as govern-usage's
    /// `Reset::Monthly` numbers its `PeriodKey`s (0 is 1970-01).
    ///
    /// # Errors
    /// A key past December [`YEAR_MAX`].
    pub fn of_month_key(key: u64) -> Result<Self, PricingError> {
        let year =
            u32::try_from(key / 12).ok().and_then(|y| y.checked_add(YEAR_MIN)).unwrap_or(u32::MAX);
        // `key % 12` is below 12.
        let month = u32::try_from(key % 12).unwrap_or(0) + 1;
        Self::month(year, month)
    }
}

/// A plan change during the period: `from` was the plan for the days before `day` (days 0 to
/// `day - 1`), the invoiced plan for the days from `day` to the end.
#[derive(Clone, Copy, Debug)]
pub struct PlanChange<'a> {
    /// The plan before the change.
    pub from: &'a Plan,
    /// The first day (from 0) on the new plan: 1 to the period's days - 1.
    pub day: u32,
}

/// What a line charges for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A plan's base price for the whole period.
    Base,
    /// A plan's base price for some of the period's days.
    Proration,
    /// A meter's units beyond its allowance, in one tier.
    Overage,
}

/// The days a prorated line covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proration {
    /// Days charged.
    pub days: u32,
    /// Days of the period.
    pub of_days: u32,
}

/// One line of an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// What it charges for.
    pub kind: LineKind,
    /// The plan it charges under.
    pub plan: String,
    /// The meter, for an overage line.
    pub meter: Option<String>,
    /// For people: "api_calls: 90000 units beyond the 10000 included at 0.001 (tier 1 of 2)".
    pub description: String,
    /// Units (overage), 1 (base), or days charged (proration).
    pub quantity: u64,
    /// The price of one unit (overage), or the plan's base price (base, proration); exact.
    #[serde(with = "serde_money::decimal")]
    pub unit_price: Decimal,
    /// What the line charges, rounded half-even to the currency's minor unit.
    #[serde(with = "serde_money::decimal")]
    pub amount: Decimal,
    /// The days charged, for a prorated line.
    pub proration: Option<Proration>,
}

/// One billing period's invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The plan at the period's end.
    pub plan: String,
    /// The period's label.
    pub period: String,
    /// The period's days.
    pub days: u32,
    /// The currency of every amount.
    #[serde(with = "serde_money::currency")]
    pub currency: Currency,
    /// The lines: base (or the two prorated bases), then overage by meter and tier.
    pub lines: Vec<LineItem>,
    /// The sum of the lines' (rounded) amounts.
    #[serde(with = "serde_money::decimal")]
    pub subtotal: Decimal,
    /// What is owed: the subtotal (no taxes, credits or discounts yet).
    #[serde(with = "serde_money::decimal")]
    pub total: Decimal,
}

/// `amount` rounded half-even (banker's rounding) to `currency`'s minor unit: 2 decimals for
/// USD, 0 for JPY, 3 for KWD.
#[must_use]
pub fn round(amount: Decimal, currency: Currency) -> Decimal {
    let decimals = currency.exponent().map_or(0, u32::from);
    let mut r = amount.round_dp_with_strategy(decimals, RoundingStrategy::MidpointNearestEven);
    r.rescale(decimals);
    r
}

/// One tier's share of a meter's overage: units, unit price, exact amount.
struct TierCharge {
    tier: usize,
    units: u64,
    unit: Decimal,
    amount: Decimal,
}

fn overflow(what: &str) -> PricingError {
    PricingError::Overflow { what: what.to_owned() }
}

fn times(units: u64, unit: Decimal, what: &str) -> Result<Decimal, PricingError> {
    Decimal::from(units).checked_mul(unit).ok_or_else(|| overflow(what))
}

/// The tiers charged for `quantity` of a meter priced by `pricing`, before rounding.
fn tier_charges(
    pricing: &MeterPricing,
    quantity: u64,
    what: &str,
) -> Result<Vec<TierCharge>, PricingError> {
    let billable = quantity.saturating_sub(pricing.included);
    if billable == 0 {
        return Ok(Vec::new());
    }
    match pricing.mode {
        TierMode::Volume => {
            let found = pricing
                .tiers
                .iter()
                .enumerate()
                .find(|(_, t)| t.up_to.is_none_or(|up| billable <= up))
                .or_else(|| pricing.tiers.iter().enumerate().next_back());
            Ok(found
                .map(|(tier, t)| {
                    times(billable, t.unit, what).map(|amount| TierCharge {
                        tier,
                        units: billable,
                        unit: t.unit,
                        amount,
                    })
                })
                .transpose()?
                .into_iter()
                .collect())
        }
        TierMode::Graduated => {
            let mut out = Vec::new();
            let mut below = 0_u64;
            let last = pricing.tiers.len().saturating_sub(1);
            for (tier, t) in pricing.tiers.iter().enumerate() {
                if billable <= below {
                    break;
                }
                // The last tier takes every unit beyond the ones before, whatever its bound,
                // as a volume price does: no unit goes uncharged.
                let top = if tier == last { u64::MAX } else { t.up_to.unwrap_or(u64::MAX) };
                let units = billable
                    .min(top)
                    .checked_sub(below)
                    .filter(|_| tier == 0 || top > below)
                    .ok_or_else(|| PricingError::TierOrder { what: what.to_owned(), tier })?;
                out.push(TierCharge {
                    tier,
                    units,
                    unit: t.unit,
                    amount: times(units, t.unit, what)?,
                });
                below = top;
            }
            Ok(out)
        }
    }
}

/// What `quantity` of a meter costs beyond its allowance, exact (before any rounding): the sum
/// of the tiers' charges (graduated), or every unit beyond the allowance at the unit price of
/// the tier their number falls in (volume).
///
/// # Errors
/// An amount too large for a `Decimal`.
pub fn meter_charge(pricing: &MeterPricing, quantity: u64) -> Result<Decimal, PricingError> {
    tier_charges(pricing, quantity, "the charge")?.iter().try_fold(Decimal::ZERO, |acc, c| {
        acc.checked_add(c.amount).ok_or_else(|| overflow("the charge"))
    })
}

fn base_line(plan: &Plan, proration: Option<Proration>) -> Result<LineItem, PricingError> {
    let currency = plan.price.currency;
    let (kind, quantity, exact, description) = match proration {
        None => (
            LineKind::Base,
            1,
            plan.price.amount,
            format!("{} ({}), base price", plan.name, plan.price),
        ),
        Some(p) => (
            LineKind::Proration,
            u64::from(p.days),
            plan.price
                .amount
                .checked_mul(Decimal::from(p.days))
                .and_then(|x| x.checked_div(Decimal::from(p.of_days)))
                .ok_or_else(|| overflow("the base price"))?,
            format!(
                "{} ({}), base price for {} of {} days",
                plan.name, plan.price, p.days, p.of_days
            ),
        ),
    };
    Ok(LineItem {
        kind,
        plan: plan.id.to_string(),
        meter: None,
        description,
        quantity,
        unit_price: plan.price.amount,
        amount: round(exact, currency),
        proration,
    })
}

/// The invoice of one billing period for a tenant on `plan` at the period's end.
///
/// - The base price: the plan's, once; or, with `change`, the old plan's base price times the
///   days before the change over the period's days, plus the new plan's times the days from
///   the change to the end.
/// - Each meter `plan` prices (`plan.pricing`) with a quantity in `usage` (already aggregated
///   for the period, [`crate::aggregate`]): the units beyond its allowance, one line per tier
///   charged (graduated) or one line (volume). The whole period's usage is priced by the plan
///   at the period's end. Meters the plan does not price are not charged.
/// - Every line rounded half-even to the currency's minor unit ([`round`]); the subtotal is
///   the sum of the rounded lines; the total is the subtotal.
///
/// # Errors
/// A period of 0 or more than [`PERIOD_DAYS_MAX`] days; a change on day 0 or on or after the
/// period's end; plans in different currencies or intervals; more than [`USAGE_METERS_MAX`]
/// meters; an amount too large for a `Decimal`.
pub fn invoice(
    plan: &Plan,
    period: &Period,
    usage: &BTreeMap<String, u64>,
    change: Option<&PlanChange<'_>>,
) -> Result<Invoice, PricingError> {
    let days = period.days;
    if days == 0 || days > PERIOD_DAYS_MAX {
        return Err(PricingError::PeriodDays { days });
    }
    if usage.len() > USAGE_METERS_MAX {
        return Err(PricingError::TooManyMeters(usage.len()));
    }
    let currency = plan.price.currency;
    let mut lines = Vec::new();
    match change {
        None => lines.push(base_line(plan, None)?),
        Some(c) => {
            if c.day == 0 || c.day >= days {
                return Err(PricingError::ChangeDay { day: c.day, days });
            }
            let from = &c.from.price;
            if from.currency != currency {
                return Err(PricingError::CurrencyMismatch {
                    from: from.currency.code(),
                    to: currency.code(),
                });
            }
            if from.interval != plan.price.interval {
                return Err(PricingError::IntervalMismatch {
                    from: from.interval,
                    to: plan.price.interval,
                });
            }
            lines.push(base_line(c.from, Some(Proration { days: c.day, of_days: days }))?);
            lines.push(base_line(plan, Some(Proration { days: days - c.day, of_days: days }))?);
        }
    }
    for (meter, pricing) in &plan.pricing {
        let quantity = usage.get(meter.as_str()).copied().unwrap_or(0);
        let charges = tier_charges(pricing, quantity, meter.as_str())?;
        let tiers = pricing.tiers.len();
        for c in charges {
            lines.push(LineItem {
                kind: LineKind::Overage,
                plan: plan.id.to_string(),
                meter: Some(meter.to_string()),
                description: format!(
                    "{meter}: {} units of {quantity} beyond the {} included, {} at {} {} (tier {} of {tiers})",
                    c.units,
                    pricing.included,
                    pricing.mode,
                    c.unit,
                    currency.code(),
                    c.tier + 1,
                ),
                quantity: c.units,
                unit_price: c.unit,
                amount: round(c.amount, currency),
                proration: None,
            });
        }
    }
    let subtotal = lines
        .iter()
        .try_fold(Decimal::ZERO, |acc, l| acc.checked_add(l.amount))
        .ok_or_else(|| overflow("the subtotal"))?;
    let subtotal = round(subtotal, currency);
    Ok(Invoice {
        plan: plan.id.to_string(),
        period: period.label.clone(),
        days,
        currency,
        lines,
        subtotal,
        total: subtotal,
    })
}

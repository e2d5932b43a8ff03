//! The catalog as validated: every value here passed every rule of `docs/plans.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::ids::{EvidenceId, Feature, Meter, PlanId, RefusalCode};

/// A validated plan catalog: one or several files taken together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// The catalog's revision, as its files write it (`version = "..."`; every file of one
    /// catalog writes the same).
    pub version: String,
    /// The plans, by id.
    pub plans: BTreeMap<PlanId, Plan>,
    /// The features plans may include, by id.
    pub features: BTreeMap<Feature, FeatureDef>,
    /// The refusal table: what a client gets when a limit, feature gate or upgrade refuses.
    pub refusals: BTreeMap<RefusalCode, Refusal>,
    /// The evidence (documents, certifications) plans may require, by id.
    pub evidence: BTreeMap<EvidenceId, Evidence>,
}

impl Catalog {
    /// The plan with this id.
    #[must_use]
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.get(id)
    }

    /// The refusal with this code.
    #[must_use]
    pub fn refusal(&self, code: &RefusalCode) -> Option<&Refusal> {
        self.refusals.get(code)
    }
}

/// One plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Its id.
    pub id: PlanId,
    /// Its name for people ("Professional").
    pub name: String,
    /// What it costs.
    pub price: Price,
    /// The features it includes.
    pub features: BTreeSet<Feature>,
    /// Its limits by meter. A meter with no entry is not limited by this plan.
    pub limits: BTreeMap<Meter, Limit>,
    /// What the platform promises a tenant on it, if anything.
    pub envelope: Option<Envelope>,
    /// The plans a tenant on it may move up to.
    pub upgrades: Vec<Upgrade>,
    /// The evidence that must be in the catalog for this plan to be offered.
    pub evidence: BTreeSet<EvidenceId>,
    /// How usage of each meter is charged on this plan (`[plans.<id>.pricing.<meter>]`). A
    /// meter with no entry is not charged: the base price covers it.
    pub pricing: BTreeMap<Meter, MeterPricing>,
}

impl Plan {
    /// The limit on `meter`, if the plan has one.
    #[must_use]
    pub fn limit(&self, meter: &str) -> Option<&Limit> {
        self.limits.get(meter)
    }

    /// Whether the plan includes `feature`.
    #[must_use]
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.contains(feature)
    }
}

/// A price: an exact decimal amount (zero for a free plan) of an ISO 4217 currency per
/// interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    /// The amount, never negative, with no more decimals than the currency's minor unit.
    pub amount: Decimal,
    /// The currency.
    pub currency: iso_currency::Currency,
    /// Per what.
    pub interval: Interval,
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = self.currency.exponent().map_or(0, u32::from);
        let mut amount = self.amount;
        amount.rescale(decimals);
        write!(f, "{amount} {}/{}", self.currency.code(), self.interval)
    }
}

/// A billing interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Interval {
    /// Monthly.
    Month,
    /// Yearly.
    Year,
}

impl Interval {
    /// Its name in a catalog file.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much of a meter a plan allows. `Unlimited` is greater than every `Finite`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LimitValue {
    /// At most this much.
    Finite(u64),
    /// No limit.
    Unlimited,
}

impl fmt::Display for LimitValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Finite(n) => write!(f, "{n}"),
            Self::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// When a meter's count goes back to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reset {
    /// Never: a gauge (seats, storage) or a rate (requests per second).
    None,
    /// At 00:00 UTC every day.
    Daily,
    /// At 00:00 UTC on the first of every month.
    Monthly,
    /// A sliding window of this length.
    Rolling(Duration),
}

impl fmt::Display for Reset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Daily => f.write_str("daily"),
            Self::Monthly => f.write_str("monthly"),
            // As a catalog writes it: `rolling 30d`, `rolling 12h`.
            Self::Rolling(d) if d.as_secs().is_multiple_of(86_400) && d.subsec_nanos() == 0 => {
                write!(f, "rolling {}d", d.as_secs() / 86_400)
            }
            Self::Rolling(d) => write!(f, "rolling {}", humantime::format_duration(*d)),
        }
    }
}

/// One limit of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    /// How much.
    pub value: LimitValue,
    /// When the count resets.
    pub reset: Reset,
    /// The refusal a request over the limit gets (in the catalog's refusal table).
    pub refusal: RefusalCode,
}

/// What the platform promises a tenant on a plan (seed 002's envelope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// Sustained requests per second the platform serves.
    pub throughput_rps: u64,
    /// The 99th percentile latency it keeps under, in milliseconds (lower is better).
    pub p99_latency_ms: u64,
    /// Concurrent connections.
    pub connections: u64,
    /// Requests it queues before refusing.
    pub queue_depth: u64,
    /// The largest share of requests that may fail (a server error) over a window, as a
    /// fraction: `0.01` is 1 %. Optional in a catalog: [`ERROR_RATE_MAX_DEFAULT`] when absent.
    pub error_rate_max: Decimal,
}

/// The envelope's `error_rate_max` when a catalog gives none: 1 %.
pub const ERROR_RATE_MAX_DEFAULT: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// The most decimals of an `error_rate_max` (`0.0001` is 0.01 %).
pub const ERROR_RATE_DECIMALS_MAX: u32 = 4;

/// The HTTP status of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// 402: a payment or another plan is required.
    PaymentRequired,
    /// 403: not entitled, or suspended.
    Forbidden,
    /// 429: a rate or quota; come back later.
    TooManyRequests,
}

impl Status {
    /// The status code.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Self::PaymentRequired => 402,
            Self::Forbidden => 403,
            Self::TooManyRequests => 429,
        }
    }

    /// The status with this code, if it is one a refusal may have.
    #[must_use]
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            402 => Some(Self::PaymentRequired),
            403 => Some(Self::Forbidden),
            429 => Some(Self::TooManyRequests),
            _ => None,
        }
    }
}

/// One row of the refusal table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// The HTTP status.
    pub status: Status,
    /// What the client is told.
    pub message: String,
}

/// A feature's definition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FeatureDef {
    /// What it is, for people.
    pub description: String,
    /// The refusal a tenant whose plan lacks it gets.
    pub refusal: RefusalCode,
    /// The meter a use of the feature counts against: a check of the feature for a quantity
    /// is refused (429) when the tenant's usage of this meter plus the quantity would pass
    /// its plan's limit. `None`: the feature is not metered.
    pub meter: Option<Meter>,
}

/// A piece of evidence: a document or certification the catalog holds a reference to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Evidence {
    /// What it is ("SPDX software bill of materials").
    pub title: String,
    /// Where it is: a path or URL, never empty.
    pub document: String,
}

/// An upgrade path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Upgrade {
    /// The plan moved to.
    pub to: PlanId,
    /// How long after a plan change this upgrade is refused.
    pub cooldown: Duration,
    /// The refusal an upgrade inside the cooldown gets.
    pub refusal: RefusalCode,
}

/// How a plan charges one meter: an allowance included in the base price, then tiered overage.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MeterPricing {
    /// Units included in the base price: only units beyond them are charged.
    pub included: u64,
    /// How the tiers price the units beyond the allowance.
    pub mode: TierMode,
    /// The tiers, `up_to` strictly increasing, the last unbounded. Their bounds count units
    /// beyond the allowance.
    pub tiers: Vec<Tier>,
    /// How a billing period's usage events become the meter's quantity.
    pub aggregation: Aggregation,
}

/// How tiers price the units beyond the allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TierMode {
    /// Each tier's units at that tier's unit price.
    Graduated,
    /// Every unit at the unit price of the tier the total falls in.
    Volume,
}

impl TierMode {
    /// Its name in a catalog file.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Graduated => "graduated",
            Self::Volume => "volume",
        }
    }
}

impl fmt::Display for TierMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One pricing tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tier {
    /// The last unit (beyond the allowance) this tier covers; `None`: unbounded (`"inf"`).
    pub up_to: Option<u64>,
    /// The price of one unit, in the plan's currency; exact, 0 or more, possibly finer than the
    /// currency's minor unit (lines are rounded, `docs/pricing.md`).
    pub unit: Decimal,
}

/// How a billing period's usage events of a meter become one quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Aggregation {
    /// The sum of the events' quantities (the default).
    #[default]
    Sum,
    /// The number of events.
    Count,
    /// The largest quantity of one event (a peak: seats, storage).
    Max,
    /// The number of distinct event ids (active users).
    UniqueCount,
}

impl Aggregation {
    /// Its name in a catalog file.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Count => "count",
            Self::Max => "max",
            Self::UniqueCount => "unique_count",
        }
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

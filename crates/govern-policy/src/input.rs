//! What a decision is made from: the tenant, its plan, its grants, the rule set, the live
//! limits; and the request.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use govern_governors::Timestamp;

use crate::rules::{RuleSet, Value};

/// The tenant's standing, as far as entitlements care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TenantState {
    /// Paying and in good standing.
    Active,
    /// On a trial: entitled like an active tenant.
    Trial,
    /// Suspended: every request is refused (403), grants included.
    Suspended,
    /// Terminated: every request is refused (403).
    Terminated,
}

impl TenantState {
    /// The stable name rules compare `tenant.state` with.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trial => "trial",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
        }
    }
}

impl fmt::Display for TenantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a grant came from (the entitlement governor's own kind); it is recorded in
/// `decided_by`, it does not steer the decision.
pub use govern_governors::entitlement::GrantKind;

/// Whether a grant opens or closes a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantEffect {
    /// Closes the feature (403 `grant_denied`), even when the plan offers it. Declared first:
    /// between grants of equal priority a deny wins.
    Deny,
    /// Opens the feature, even when the plan does not offer it.
    Allow,
}

/// An explicit grant (from the entitlement governor, so it is receipted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Its id, named in `decided_by`.
    pub id: Arc<str>,
    /// Trial, promotional, manual or beta.
    pub kind: GrantKind,
    /// The feature it is about.
    pub feature: String,
    /// Higher wins; equal priorities: deny before allow, then the smaller id, then the kind.
    pub priority: u32,
    /// The grant applies while `now < expires_at`; `None`: it does not expire.
    pub expires_at: Option<Timestamp>,
    /// The grant covers requests of at most this quantity; a larger one is not covered and the
    /// decision goes on to the next grant, the plan and the rules.
    pub quantity_max: Option<u64>,
    /// Allow or deny.
    pub effect: GrantEffect,
}

impl Grant {
    /// Whether this grant covers `feature` and `quantity` at `now`.
    #[must_use]
    pub fn covers(&self, feature: &str, quantity: u64, now: Timestamp) -> bool {
        self.feature == feature
            && self.expires_at.is_none_or(|at| now < at)
            && self.quantity_max.is_none_or(|max| quantity <= max)
    }
}

/// The tenant facts rules can read (`tenant.id`, `tenant.state`, `tenant.plan`,
/// `tenant.attributes.NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant's id.
    pub id: String,
    /// Its state; suspended and terminated are barred before anything else.
    pub state: TenantState,
    /// The name of its plan.
    pub plan: String,
    /// Free attributes (region, segment, ...), read by rules as `tenant.attributes.NAME`.
    pub attributes: BTreeMap<String, Value>,
}

/// A rate limiter's verdict for this request, computed by the caller (GCRA lives in the
/// runtime); a limited verdict is passed through as a 429 with its retry-after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateVerdict {
    /// Within the rate.
    Within,
    /// Over the rate.
    Limited {
        /// The limit's name, e.g. `requests_per_second`.
        limit: Arc<str>,
        /// Seconds until a retry can succeed, as the limiter computed it.
        retry_after_secs: u64,
    },
}

/// A quota the request's quantity counts against: refused (429) when `used + quantity > max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quota {
    /// The limit's name, e.g. `executions_per_month`.
    pub limit: Arc<str>,
    /// The plan's limit.
    pub max: u64,
    /// Used so far in the period.
    pub used: u64,
    /// When the period resets; the retry-after is the time until then (rounded up to whole
    /// seconds). `None`: it never resets, and the refusal has no retry-after.
    pub resets_at: Option<Timestamp>,
}

/// Everything a decision is made from besides the request and the time.
///
/// Every field but `rate` and `quota` is cached by [`crate::DecisionCache`]: a change to any
/// of them must be followed by [`crate::DecisionCache::invalidate`]. `rate` and `quota` are
/// read live on every check, cached or not.
#[derive(Clone, Debug)]
pub struct Input {
    /// The tenant.
    pub tenant: Tenant,
    /// The features of the tenant's plan (shared with every tenant on the same plan).
    pub plan_features: FeatureSet,
    /// Every feature some plan of the catalog offers: a feature refused here but offered by
    /// some plan is refused with 402 (an upgrade would allow it), any other with 403. Shared
    /// by every tenant: the runtime builds it once per catalog.
    pub catalog_features: FeatureSet,
    /// The tenant's grants, in any order (the order does not change the answer).
    pub grants: Vec<Grant>,
    /// The compiled policy rules, shared by every tenant.
    pub rules: Arc<RuleSet>,
    /// The rate limiter's verdict for this request, if the feature is rate limited.
    pub rate: Option<RateVerdict>,
    /// The quota this request counts against, if any.
    pub quota: Option<Quota>,
}

/// A set of feature names, shared: cloning it clones a pointer, not the names (the runtime
/// gives every tenant on a plan the plan's one set, and every tenant the catalog's). Reads
/// go through `Deref`; a write (`DerefMut`) copies the set first if it is shared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeatureSet(Arc<BTreeSet<String>>);

impl FeatureSet {
    /// Whether `self` and `other` are the same shared set (not merely equal).
    #[must_use]
    pub fn shares(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<BTreeSet<String>> for FeatureSet {
    fn from(set: BTreeSet<String>) -> Self {
        Self(Arc::new(set))
    }
}

impl FromIterator<String> for FeatureSet {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Self(Arc::new(iter.into_iter().collect()))
    }
}

impl std::ops::Deref for FeatureSet {
    type Target = BTreeSet<String>;
    fn deref(&self) -> &BTreeSet<String> {
        &self.0
    }
}

impl std::ops::DerefMut for FeatureSet {
    fn deref_mut(&mut self) -> &mut BTreeSet<String> {
        Arc::make_mut(&mut self.0)
    }
}

/// What is asked: may the tenant do `action` on `feature`, for `quantity`?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request<'a> {
    /// The feature, e.g. `reports`.
    pub feature: &'a str,
    /// The action (`view`, `create`, `export`...): free text rules compare as
    /// `request.action`.
    pub action: &'a str,
    /// How many units (1 for a plain check).
    pub quantity: u64,
}

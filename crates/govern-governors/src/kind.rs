//! The eight governor kinds and their stable names.

use std::fmt;

/// Which governor a command, a receipt or an actor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GovernorKind {
    /// Feature entitlements of a tenant.
    Entitlement,
    /// One payment and its refunds and disputes.
    Billing,
    /// One product (SKU) of the catalog.
    Catalog,
    /// One subscription to a plan.
    Subscription,
    /// One customer account.
    Account,
    /// One resource quota and its SLA thresholds.
    Quota,
    /// One compliance audit.
    Compliance,
    /// The tenant itself: provisioning, suspension, maintenance.
    Tenant,
}

impl GovernorKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 8] = [
        Self::Entitlement,
        Self::Billing,
        Self::Catalog,
        Self::Subscription,
        Self::Account,
        Self::Quota,
        Self::Compliance,
        Self::Tenant,
    ];

    /// The stable snake_case name used in receipts, logs and scripts.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Entitlement => "entitlement",
            Self::Billing => "billing",
            Self::Catalog => "catalog",
            Self::Subscription => "subscription",
            Self::Account => "account",
            Self::Quota => "quota",
            Self::Compliance => "compliance",
            Self::Tenant => "tenant",
        }
    }

    /// The kind with this stable name, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for GovernorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

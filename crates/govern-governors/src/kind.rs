//! The governor kinds and their stable names.

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
    /// The tenant's audit trail of the runtime's own decisions (quarantines, checks).
    Audit,
    /// One saga run: steps across governors and their compensations.
    Saga,
}

impl GovernorKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 10] = [
        Self::Entitlement,
        Self::Billing,
        Self::Catalog,
        Self::Subscription,
        Self::Account,
        Self::Quota,
        Self::Compliance,
        Self::Tenant,
        Self::Audit,
        Self::Saga,
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
            Self::Audit => "audit",
            Self::Saga => "saga",
        }
    }

    /// The kind with this stable name, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::from_name_bytes(name.as_bytes())
    }

    /// The kind whose stable name is these bytes, if any: what a decoder looks up (a stored
    /// name need not be UTF-8; no name matches bytes that are not).
    #[must_use]
    #[inline]
    pub fn from_name_bytes(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name().as_bytes() == name)
    }
}

impl fmt::Display for GovernorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::GovernorKind;

    #[test]
    fn every_kind_is_found_by_its_name_and_nothing_else_is() {
        for kind in GovernorKind::ALL {
            assert_eq!(GovernorKind::from_name(kind.name()), Some(kind));
            assert_eq!(GovernorKind::from_name_bytes(kind.name().as_bytes()), Some(kind));
            let mut longer = kind.name().as_bytes().to_vec();
            longer.push(b's');
            assert_eq!(GovernorKind::from_name_bytes(&longer), None);
            assert_eq!(GovernorKind::from_name_bytes(&longer[..longer.len() - 2]), None);
        }
        assert_eq!(GovernorKind::from_name("Billing"), None);
        assert_eq!(GovernorKind::from_name_bytes(b""), None);
        assert_eq!(GovernorKind::from_name_bytes(b"billing\xff"), None);
    }
}

//! The governor kinds the runtime hosts, in one place: [`Hosted`] for each of the eight
//! governor types, and [`dispatch`], which turns a kind known only at run time (a raw
//! command's, a due timeout's, a receipt's) into typed code. A ninth governor is one line in
//! each of the two lists below.

// The trait is public (hosts name it in bounds) but its method is the runtime's internal
// wiring; only this module implements it.
#![allow(private_interfaces, reason = "sealed wiring: implemented here only, hidden from docs")]

use govern_governors::ResourceId;
use govern_governors::tenant::State as TenantState;

use crate::commercial::{GrantView, View};
use govern_governors::{
    Governor, GovernorKind, account, audit, billing, catalog, compliance, entitlement, quota, saga,
    subscription, tenant,
};

/// A governor the runtime can host: each of the eight governor types. Hosts only name it in
/// bounds.
pub trait Hosted: Governor + 'static {
    /// The tenant lifecycle state a transition into `state` commits, for the tenant
    /// governor: the registry admits commands by it.
    #[doc(hidden)]
    fn tenant_state(_state: &Self::State) -> Option<TenantState> {
        None
    }

    /// The catalog plan a command names, for the subscription governor: the runtime refuses
    /// it (`unknown_plan`) when its catalog does not have it.
    #[doc(hidden)]
    fn plan(_command: &Self::Command) -> Option<&str> {
        None
    }

    /// Whether the runtime alone may send `command` (a quota's `record_usage`, which
    /// `RuntimeHandle::record_usage` counts and batches): a host's is refused `reserved`.
    #[doc(hidden)]
    fn reserved(_command: &Self::Command) -> bool {
        false
    }

    /// What an accepted command changes in what checks decide with (a subscription's live
    /// plan, a grant), decided from the machine before it and the transition; `None` when
    /// nothing changes.
    #[doc(hidden)]
    #[allow(private_interfaces, reason = "sealed wiring")]
    fn view(
        &self,
        _resource: &ResourceId,
        _command: &Self::Command,
        _to: Self::State,
    ) -> Option<View> {
        None
    }

    /// What this machine contributes to checks as it stands (a live subscription's plan, an
    /// entitled grant): how a runtime continuing a ledger rebuilds its checks.
    #[doc(hidden)]
    #[allow(private_interfaces, reason = "sealed wiring")]
    fn held_view(&self, _resource: &ResourceId) -> Option<View> {
        None
    }
}

/// Typed work chosen by a kind at run time: [`dispatch`] calls `visit::<G>` for the kind's
/// governor type.
pub(crate) trait KindVisitor {
    type Out;
    fn visit<G: Hosted>(self) -> Self::Out;
}

/// The grant an entitlement machine holds, whatever its state.
fn held_grant(m: &entitlement::Entitlement) -> Option<GrantView> {
    m.feature().map(|f| GrantView {
        feature: f.to_owned(),
        expires_at: m.expires_at(),
        kind: m.kind(),
        priority: m.priority(),
    })
}

/// The grant an entitlement machine in `state` puts in force (only `entitled` does).
fn entitled_grant(m: &entitlement::Entitlement, state: entitlement::State) -> Option<GrantView> {
    (state == entitlement::State::Entitled).then(|| held_grant(m)).flatten()
}

/// The subscription states in which a plan's features are served.
fn serves(state: subscription::State) -> bool {
    use subscription::State as S;
    matches!(state, S::FreeTrial | S::Active | S::CancellationRequested)
}

impl Hosted for entitlement::Entitlement {
    fn view(
        &self,
        resource: &ResourceId,
        command: &entitlement::Command,
        to: entitlement::State,
    ) -> Option<View> {
        let before = entitled_grant(self, self.state());
        // A (re-)request brings its own terms; any other command keeps the held grant.
        let after = match command {
            entitlement::Command::GrantEntitlement { feature, expires_at, kind, priority }
                if to == entitlement::State::Entitled =>
            {
                Some(GrantView {
                    feature: feature.clone(),
                    expires_at: *expires_at,
                    kind: *kind,
                    priority: *priority,
                })
            }
            _ => entitled_grant(self, to),
        };
        (before != after).then(|| View::Grant { resource: resource.clone(), grant: after })
    }

    fn held_view(&self, resource: &ResourceId) -> Option<View> {
        let grant = entitled_grant(self, self.state())?;
        Some(View::Grant { resource: resource.clone(), grant: Some(grant) })
    }
}
impl Hosted for billing::Billing {}
impl Hosted for catalog::Product {}
impl Hosted for subscription::Subscription {
    fn plan(command: &subscription::Command) -> Option<&str> {
        match command {
            subscription::Command::StartTrial { plan, .. }
            | subscription::Command::Activate { plan: Some(plan) }
            | subscription::Command::ChangePlan { plan, .. }
            | subscription::Command::RollbackPlan { plan } => Some(plan),
            _ => None,
        }
    }

    /// A plan change goes through the catalog's path, cooldown and gates
    /// (`RuntimeHandle::apply_plan_change`), never straight from a host.
    fn reserved(command: &subscription::Command) -> bool {
        matches!(command, subscription::Command::ChangePlan { .. })
    }

    fn view(
        &self,
        resource: &ResourceId,
        command: &subscription::Command,
        to: subscription::State,
    ) -> Option<View> {
        let before = serves(self.state()).then(|| self.plan()).flatten();
        let named = <Self as Hosted>::plan(command);
        let after = serves(to).then(|| named.or(self.plan())).flatten();
        (before != after).then(|| View::Subscription {
            resource: resource.clone(),
            plan: after.map(str::to_owned),
        })
    }

    fn held_view(&self, resource: &ResourceId) -> Option<View> {
        let plan = serves(self.state()).then(|| self.plan()).flatten()?;
        Some(View::Subscription { resource: resource.clone(), plan: Some(plan.to_owned()) })
    }
}

impl Hosted for account::Account {}
impl Hosted for quota::Quota {
    fn reserved(command: &quota::Command) -> bool {
        matches!(command, quota::Command::RecordUsage(_))
    }
}
impl Hosted for compliance::Audit {}
/// The audit trail records the runtime's own decisions: no host writes to it.
impl Hosted for audit::Trail {
    fn reserved(_command: &audit::Command) -> bool {
        true
    }
}
impl Hosted for saga::Saga {}
impl Hosted for tenant::Tenant {
    fn tenant_state(state: &TenantState) -> Option<TenantState> {
        Some(*state)
    }

    fn view(
        &self,
        _resource: &ResourceId,
        command: &tenant::Command,
        _to: TenantState,
    ) -> Option<View> {
        match command {
            tenant::Command::ProvisionTenant { quota } if self.quota() != Some(*quota) => {
                Some(View::TenantQuota(*quota))
            }
            _ => None,
        }
    }

    fn held_view(&self, _resource: &ResourceId) -> Option<View> {
        self.quota().map(View::TenantQuota)
    }
}

/// Runs `visitor` for the governor type of `kind`.
pub(crate) fn dispatch<V: KindVisitor>(kind: GovernorKind, visitor: V) -> V::Out {
    match kind {
        GovernorKind::Entitlement => visitor.visit::<entitlement::Entitlement>(),
        GovernorKind::Billing => visitor.visit::<billing::Billing>(),
        GovernorKind::Catalog => visitor.visit::<catalog::Product>(),
        GovernorKind::Subscription => visitor.visit::<subscription::Subscription>(),
        GovernorKind::Account => visitor.visit::<account::Account>(),
        GovernorKind::Quota => visitor.visit::<quota::Quota>(),
        GovernorKind::Compliance => visitor.visit::<compliance::Audit>(),
        GovernorKind::Tenant => visitor.visit::<tenant::Tenant>(),
        GovernorKind::Audit => visitor.visit::<audit::Trail>(),
        GovernorKind::Saga => visitor.visit::<saga::Saga>(),
    }
}

/// The `'static` name of `kind`'s state called `name`, if it has one.
pub(crate) fn state_name(kind: GovernorKind, name: &str) -> Option<&'static str> {
    struct Named<'a>(&'a str);
    impl KindVisitor for Named<'_> {
        type Out = Option<&'static str>;
        fn visit<G: Hosted>(self) -> Self::Out {
            <G::State as govern_governors::StateSpec>::from_name(self.0)
                .map(govern_governors::StateSpec::name)
        }
    }
    dispatch(kind, Named(name))
}

//! The commercial half of the model: the simulator's plan catalog, and what the pure rules
//! say a check and a usage event should meet, from the model's machines alone (its
//! subscriptions' plans, its entitlements' grants, its tenants' states). The runtime decides
//! the same from its caches, rebuilt after restarts and emptied on every change; the two
//! must agree.

use std::collections::BTreeMap;
use std::sync::Arc;

use govern_governors::{Governor as _, GovernorKind, Machine, TenantId, Timestamp, subscription};
use govern_plans::Catalog;
use govern_policy::{Decision, Grant, GrantEffect, Input, Request, RuleSet, TenantState};

use crate::model::Model;

/// The simulator's catalog: the plans the subscription governor's commands name (`pro`,
/// `enterprise`), a metered feature, a plain one, one only the larger plan has; small
/// limits so that usage crosses its thresholds within a run.
const CATALOG: &str = r#"
version = "sim-1"

[refusals.feature_not_in_plan]
status = 402
message = "The plan does not include this feature."

[refusals.quota_exceeded]
status = 429
message = "The plan's allowance for this period is used."

[refusals.rate_limited]
status = 429
message = "Too many requests; retry after the delay given."

[features.reports]
description = "Reports."
meter = "reports"

[features.forecast]
description = "Forecasts."

[features.sso]
description = "Single sign-on."

[plans.pro]
name = "Pro"
price = { amount = "49.00", currency = "USD", interval = "month" }
features = ["reports", "forecast"]

[plans.pro.limits]
reports = { value = 40, reset = "monthly" }

[plans.enterprise]
name = "Enterprise"
price = { amount = "499.00", currency = "USD", interval = "month" }
features = ["reports", "forecast", "sso"]

[plans.enterprise.limits]
reports = { value = 400, reset = "monthly" }
"#;

/// Meters usage is recorded on: one the provisioned quota limits, one the plans limit, one
/// nothing limits (always refused).
pub(crate) const METERS: [&str; 3] = ["storage_gb", "reports", "tokens"];
/// Meters every provisioned tenant has, whatever its plans.
const PROVISIONED_METERS: [&str; 3] = ["storage_gb", "compute_units", "bandwidth_mbps"];
/// Features checks ask about: the plans', a grant's only (`beta_dashboards`), one nothing
/// offers.
pub(crate) const FEATURES: [&str; 5] =
    ["reports", "forecast", "sso", "beta_dashboards", "teleport"];

/// The simulator's catalog.
pub(crate) fn catalog() -> Result<Catalog, String> {
    govern_plans::validate(CATALOG, "sim.toml").map_err(|problems| {
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("the simulator's catalog: {}", problems.join("; "))
    })
}

/// The subscription states in which a plan is served (its features checked, its meters
/// limited).
fn serves(state: subscription::State) -> bool {
    use subscription::State as S;
    matches!(state, S::FreeTrial | S::Active | S::CancellationRequested)
}

/// The plans `tenant`'s live subscriptions are on, by subscription id, as the model has them.
fn live_plans<'c>(
    model: &Model,
    catalog: &'c Catalog,
    tenant: &TenantId,
) -> Vec<&'c govern_plans::Plan> {
    of_kind(model, tenant, GovernorKind::Subscription)
        .filter_map(|(_, gov)| match &gov.machine {
            Machine::Subscription(m) if serves(m.state()) => m.plan(),
            _ => None,
        })
        .filter_map(|plan| catalog.plan(plan))
        .collect()
}

/// The model's governors of `tenant` of `kind`.
fn of_kind<'m>(
    model: &'m Model,
    tenant: &'m TenantId,
    kind: GovernorKind,
) -> impl Iterator<Item = (&'m crate::model::Key, &'m crate::model::Gov)> {
    model.govs.iter().filter(move |((t, k, _), _)| t == tenant && *k == kind)
}

/// The policy's view of `tenant`'s lifecycle state, from its tenant governor in the model.
fn tenant_state(model: &Model, tenant: &TenantId) -> TenantState {
    match of_kind(model, tenant, GovernorKind::Tenant).next().map(|(_, g)| g.machine.state_name()) {
        Some("suspended") => TenantState::Suspended,
        Some("deprovisioned") => TenantState::Terminated,
        _ => TenantState::Active,
    }
}

/// What the pure rules decide for `feature` (`quantity` units) of `tenant` at `now`, from
/// the model alone: its tenant state, its entitled grants, its live plans' features (the
/// live limits, rate and quota, are the runtime's counters: see [`limit_refusal`]).
pub(crate) fn expected_decision(
    model: &Model,
    catalog: &Catalog,
    tenant: &TenantId,
    feature: &str,
    quantity: u64,
    now: Timestamp,
) -> Decision {
    let plans = live_plans(model, catalog, tenant);
    let grants = of_kind(model, tenant, GovernorKind::Entitlement)
        .filter_map(|((_, _, resource), gov)| match &gov.machine {
            Machine::Entitlement(m)
                if m.state() == govern_governors::entitlement::State::Entitled =>
            {
                m.feature().map(|f| Grant {
                    id: Arc::from(resource.as_str()),
                    kind: m.kind(),
                    feature: f.to_owned(),
                    priority: m.priority(),
                    expires_at: m.expires_at(),
                    quantity_max: None,
                    effect: GrantEffect::Allow,
                })
            }
            _ => None,
        })
        .collect();
    let input = Input {
        tenant: govern_policy::Tenant {
            id: tenant.to_string(),
            state: tenant_state(model, tenant),
            plan: plans.first().map(|p| p.id.as_str().to_owned()).unwrap_or_default(),
            attributes: BTreeMap::new(),
        },
        plan_features: plans
            .iter()
            .flat_map(|p| p.features.iter().map(|f| f.as_str().to_owned()))
            .collect(),
        catalog_features: catalog
            .plans
            .values()
            .flat_map(|p| p.features.iter().map(|f| f.as_str().to_owned()))
            .collect::<govern_policy::FeatureSet>(),
        grants,
        rules: Arc::new(RuleSet::empty()),
        rate: None,
        quota: None,
    };
    govern_policy::entitle(&input, &Request { feature, action: "use", quantity }, now)
}

/// Whether `decision` is a refusal by a live limit (rate or quota), which the runtime's
/// counters decide after the entitlement allowed.
pub(crate) fn limit_refusal(decision: &Decision) -> bool {
    use govern_policy::code;
    decision
        .refusal()
        .is_some_and(|r| r.code == code::QUOTA_EXCEEDED || r.code == code::RATE_LIMITED)
}

/// Whether some limit of `tenant` counts `meter`: its provisioned quota, or a live plan.
pub(crate) fn limited(model: &Model, catalog: &Catalog, tenant: &TenantId, meter: &str) -> bool {
    PROVISIONED_METERS.contains(&meter)
        || live_plans(model, catalog, tenant).iter().any(|p| p.limit(meter).is_some())
}

//! What `RuntimeHandle::check` decides with: per tenant, the plans of its live subscriptions,
//! its entitled grants, its state, and a decision cache, kept by the receipt actor from
//! durable receipts only (a check never sees a plan or a grant whose receipt a crash could
//! take back). The decision itself is `govern_policy`'s, pure.
//!
//! A governor computes its [`View`] change as it decides (the subscription's live plan, the
//! grant's feature and expiry), it travels with the receipt, and the receipt actor applies it
//! here once the receipt is durable, invalidating the tenant's decision cache. The tenant's
//! state is read from the registry at each check (an atomic) and invalidates the cache when it
//! moved.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use govern_governors::tenant::State as LifeState;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_plans::Catalog;
use govern_policy::{
    Decision, DecisionCache, Grant, GrantEffect, Input, Request, RuleSet, Tenant, TenantState,
};

use crate::limits::CHECK_CACHE_ENTRIES_MAX;

/// A change a durable receipt makes to what checks decide with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// A subscription's plan while it is live (trial, active, cancellation requested), or
    /// `None` once it is not.
    Subscription { resource: ResourceId, plan: Option<String> },
    /// An entitlement grant while it is entitled, or `None` once not.
    Grant { resource: ResourceId, grant: Option<GrantView> },
}

/// An entitled grant as checks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GrantView {
    pub(crate) feature: String,
    pub(crate) expires_at: Option<Timestamp>,
    pub(crate) kind: govern_governors::entitlement::GrantKind,
    pub(crate) priority: u32,
}

/// One tenant's decision inputs and cache.
#[derive(Debug)]
struct TenantDecisions {
    /// Live subscriptions and their plans.
    subscriptions: BTreeMap<ResourceId, String>,
    /// Entitled grants.
    grants: BTreeMap<ResourceId, Grant>,
    input: Input,
    cache: DecisionCache,
    /// A view changed since `input` was built: rebuilt at the next check (applying a view is
    /// on the receipt actor's path and stays cheap).
    stale: bool,
}

/// The check layer's state, shared by the receipt actor (writes) and callers (checks).
#[derive(Debug)]
pub(crate) struct Commercial {
    catalog: Option<Arc<Catalog>>,
    rules: Arc<RuleSet>,
    /// Every feature some plan of the catalog offers (a refused one is then `402`).
    catalog_features: BTreeSet<String>,
    tenants: DashMap<TenantId, Arc<Mutex<TenantDecisions>>, foldhash::fast::RandomState>,
}

/// The policy's view of a tenant's lifecycle state.
fn policy_state(state: LifeState) -> TenantState {
    match state {
        LifeState::Suspended => TenantState::Suspended,
        LifeState::Deprovisioned => TenantState::Terminated,
        LifeState::Provisioning
        | LifeState::Active
        | LifeState::Degraded
        | LifeState::Maintenance => TenantState::Active,
    }
}

impl Commercial {
    pub(crate) fn new(catalog: Option<Arc<Catalog>>, rules: Arc<RuleSet>) -> Self {
        let catalog_features = catalog
            .iter()
            .flat_map(|c| c.plans.values().flat_map(|p| p.features.iter()))
            .map(|f| f.as_str().to_owned())
            .collect();
        Self { catalog, rules, catalog_features, tenants: DashMap::default() }
    }

    fn entry(&self, tenant: &TenantId) -> Arc<Mutex<TenantDecisions>> {
        if let Some(e) = self.tenants.get(tenant) {
            return Arc::clone(e.value());
        }
        let fresh = TenantDecisions {
            subscriptions: BTreeMap::new(),
            grants: BTreeMap::new(),
            input: Input {
                tenant: Tenant {
                    id: tenant.as_str().to_owned(),
                    state: TenantState::Active,
                    plan: String::new(),
                    attributes: BTreeMap::new(),
                },
                plan_features: BTreeSet::new(),
                catalog_features: self.catalog_features.clone(),
                grants: Vec::new(),
                rules: Arc::clone(&self.rules),
                rate: None,
                quota: None,
            },
            cache: DecisionCache::new(CHECK_CACHE_ENTRIES_MAX),
            stale: false,
        };
        Arc::clone(
            self.tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Mutex::new(fresh)))
                .value(),
        )
    }

    /// Applies a durable receipt's view change.
    pub(crate) fn apply(&self, tenant: &TenantId, view: View) {
        let entry = self.entry(tenant);
        let mut t = entry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match view {
            View::Subscription { resource, plan: Some(plan) } => {
                t.subscriptions.insert(resource, plan);
            }
            View::Subscription { resource, plan: None } => {
                t.subscriptions.remove(&resource);
            }
            View::Grant { resource, grant: Some(g) } => {
                let grant = Grant {
                    id: Arc::from(resource.as_str()),
                    kind: g.kind,
                    feature: g.feature,
                    priority: g.priority,
                    expires_at: g.expires_at,
                    quantity_max: None,
                    effect: GrantEffect::Allow,
                };
                t.grants.insert(resource, grant);
            }
            View::Grant { resource, grant: None } => {
                t.grants.remove(&resource);
            }
        }
        t.stale = true;
    }

    /// Rebuilds a tenant's decision input from its views.
    fn rebuild(&self, t: &mut TenantDecisions) {
        // Every live subscription's plan counts: the features are their union; the plan the
        // rules see is the first by subscription id.
        let plans: Vec<&String> = t.subscriptions.values().collect();
        t.input.tenant.plan = plans.first().map(|p| (*p).clone()).unwrap_or_default();
        t.input.plan_features = plans
            .iter()
            .filter_map(|p| self.catalog.as_ref().and_then(|c| c.plan(p)))
            .flat_map(|p| p.features.iter().map(|f| f.as_str().to_owned()))
            .collect();
        t.input.grants = t.grants.values().cloned().collect();
        t.cache.invalidate();
        t.stale = false;
    }

    /// Decides one check for a tenant in lifecycle state `state`.
    pub(crate) fn check(
        &self,
        tenant: &TenantId,
        state: LifeState,
        request: &Request<'_>,
        now: Timestamp,
    ) -> Decision {
        let entry = self.entry(tenant);
        let mut t = entry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = &mut *t;
        if t.stale {
            self.rebuild(t);
        }
        let state = policy_state(state);
        if t.input.tenant.state != state {
            t.input.tenant.state = state;
            t.cache.invalidate();
        }
        t.cache.check(&t.input, request, now)
    }
}

//! govern-policy's tests: the decision order, rule parsing, the cache, properties.

mod policy {
    pub(crate) mod cache;
    pub(crate) mod order;
    pub(crate) mod props;
    pub(crate) mod rules;
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use govern_policy::{
    Grant, GrantEffect, GrantKind, Input, Request, RuleSet, Tenant, TenantState, Timestamp, Value,
};

/// 2026-01-01T00:00:00Z.
pub(crate) const NOW: Timestamp = Timestamp(1_767_225_600_000);

/// An active tenant `t1` on plan `pro` (features `reports`, `api`), in region `eu-west`; the
/// catalog also offers `sso` and `audit_log`; no grants, no rules, no limits.
pub(crate) fn input() -> Input {
    Input {
        tenant: Tenant {
            id: "t1".to_owned(),
            state: TenantState::Active,
            plan: "pro".to_owned(),
            attributes: BTreeMap::from([
                ("region".to_owned(), Value::Str("eu-west".to_owned())),
                ("seats".to_owned(), Value::Int(40)),
            ]),
        },
        plan_features: set(&["reports", "api"]).into(),
        catalog_features: set(&["reports", "api", "sso", "audit_log"]).into(),
        grants: Vec::new(),
        rules: Arc::new(RuleSet::empty()),
        rate: None,
        quota: None,
    }
}

pub(crate) fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub(crate) fn rules(source: &str) -> Arc<RuleSet> {
    match RuleSet::parse(source) {
        Ok(rules) => Arc::new(rules),
        Err(error) => panic!("rules do not parse: {error}"),
    }
}

pub(crate) fn grant(id: &str, feature: &str, priority: u32, effect: GrantEffect) -> Grant {
    Grant {
        id: id.into(),
        kind: GrantKind::Promotional,
        feature: feature.to_owned(),
        priority,
        expires_at: None,
        quantity_max: None,
        effect,
    }
}

pub(crate) const fn req<'a>(feature: &'a str, action: &'a str, quantity: u64) -> Request<'a> {
    Request { feature, action, quantity }
}

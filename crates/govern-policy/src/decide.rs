//! The decision: the order of docs/policy.md, as a pure function.

use std::sync::Arc;

use govern_governors::Timestamp;

use crate::decision::{DecidedBy, Decision, code};
use crate::input::{Grant, GrantEffect, Input, RateVerdict, Request, TenantState};
use crate::rules::Effect;

/// May the tenant do `request` at `now`? The entitlement ([`entitle`]), then the live limits:
/// the rate limiter's verdict (429, its retry-after passed through), then the quota (429,
/// retry-after until the period resets).
#[must_use]
pub fn decide(input: &Input, request: &Request<'_>, now: Timestamp) -> Decision {
    let decision = entitle(input, request, now);
    if decision.is_allowed() { limits(input, request, now).unwrap_or(decision) } else { decision }
}

/// The entitlement alone, without the live limits (what [`crate::DecisionCache`] caches):
/// the tenant's state bars first; then the highest-priority grant that covers the request;
/// then the plan's features; then the policy rules; otherwise 402 when some plan offers the
/// feature, 403 when none does.
#[must_use]
pub fn entitle(input: &Input, request: &Request<'_>, now: Timestamp) -> Decision {
    let tenant = &input.tenant;
    match tenant.state {
        TenantState::Active | TenantState::Trial => {}
        TenantState::Suspended => {
            return Decision::refused(
                code::TENANT_SUSPENDED,
                403,
                None,
                format!("tenant {} is suspended", tenant.id),
                DecidedBy::TenantState(tenant.state),
            );
        }
        TenantState::Terminated => {
            return Decision::refused(
                code::TENANT_TERMINATED,
                403,
                None,
                format!("tenant {} is terminated", tenant.id),
                DecidedBy::TenantState(tenant.state),
            );
        }
    }
    if let Some(grant) = winning_grant(&input.grants, request, now) {
        let decided_by = DecidedBy::Grant { id: grant.id.clone(), kind: grant.kind };
        return match grant.effect {
            GrantEffect::Allow => Decision::Allowed { decided_by },
            GrantEffect::Deny => Decision::refused(
                code::GRANT_DENIED,
                403,
                None,
                format!("feature {} is closed by grant {}", request.feature, grant.id),
                decided_by,
            ),
        };
    }
    if input.plan_features.contains(request.feature) {
        return Decision::Allowed {
            decided_by: DecidedBy::PlanFeature(Arc::from(request.feature)),
        };
    }
    if let Some(rule) = input.rules.evaluate(tenant, request) {
        let decided_by = DecidedBy::Rule { id: rule.id.clone(), version: input.rules.version() };
        return match rule.effect {
            Effect::Allow => Decision::Allowed { decided_by },
            Effect::Deny => Decision::refused(
                code::POLICY_DENIED,
                403,
                None,
                format!(
                    "{} on feature {} is denied by policy rule {}",
                    request.action, request.feature, rule.id
                ),
                decided_by,
            ),
        };
    }
    if input.catalog_features.contains(request.feature) {
        Decision::refused(
            code::PLAN_UPGRADE_REQUIRED,
            402,
            None,
            format!(
                "feature {} is not in plan {}; a plan that offers it would allow it",
                request.feature, tenant.plan
            ),
            DecidedBy::Default,
        )
    } else {
        Decision::refused(
            code::NOT_ENTITLED,
            403,
            None,
            format!("tenant {} is not entitled to feature {}", tenant.id, request.feature),
            DecidedBy::Default,
        )
    }
}

/// The grant that decides: among those covering the request, the highest priority; then deny
/// before allow; then the smaller id; then the kind. The grants' order does not matter.
pub(crate) fn winning_grant<'g>(
    grants: &'g [Grant],
    request: &Request<'_>,
    now: Timestamp,
) -> Option<&'g Grant> {
    grants.iter().filter(|grant| grant.covers(request.feature, request.quantity, now)).min_by(
        |a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.effect.cmp(&b.effect))
                .then_with(|| a.id.cmp(&b.id))
                .then(a.kind.cmp(&b.kind))
        },
    )
}

/// The live limits (`input.rate`, `input.quota`) on an allowed request: a refusal (429), or
/// `None` when within them.
#[must_use]
pub fn limits(input: &Input, request: &Request<'_>, now: Timestamp) -> Option<Decision> {
    if let Some(RateVerdict::Limited { limit, retry_after_secs }) = &input.rate {
        return Some(Decision::refused(
            code::RATE_LIMITED,
            429,
            Some(*retry_after_secs),
            format!(
                "rate limit {limit} reached for feature {}; retry after {retry_after_secs} s",
                request.feature
            ),
            DecidedBy::Limit(limit.clone()),
        ));
    }
    let quota = input.quota.as_ref()?;
    if quota.used.checked_add(request.quantity).is_some_and(|total| total <= quota.max) {
        return None;
    }
    let retry_after_secs =
        quota.resets_at.map(|at| at.as_ms().saturating_sub(now.as_ms()).div_ceil(1_000));
    Some(Decision::refused(
        code::QUOTA_EXCEEDED,
        429,
        retry_after_secs,
        format!(
            "quota {} exceeded: {} used of {}, {} more asked",
            quota.limit, quota.used, quota.max, request.quantity
        ),
        DecidedBy::Limit(quota.limit.clone()),
    ))
}

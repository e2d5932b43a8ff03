//! Each step of the decision order, with the exact answer.

use std::sync::Arc;

use govern_policy::{
    Decision, GrantEffect, GrantKind, Quota, RateVerdict, TenantState, Timestamp, code, decide,
};

use crate::{NOW, grant, input, req, rules};

fn allowed_by(decision: &Decision) -> String {
    match decision {
        Decision::Allowed { decided_by } => decided_by.to_string(),
        Decision::Refused(refusal) => panic!("refused: {refusal:?}"),
    }
}

/// (code, status, retry-after, decided_by)
fn refused(decision: &Decision) -> (&'static str, u16, Option<u64>, String) {
    match decision {
        Decision::Refused(r) => (r.code, r.status, r.retry_after_secs, r.decided_by.to_string()),
        Decision::Allowed { decided_by } => panic!("allowed by {decided_by}"),
    }
}

const ALLOW_SSO_EU: &str = r#"
version = 4

[[rule]]
id = "sso-eu"
effect = "allow"
when = { all = [
  { field = "request.feature", op = "eq", value = "sso" },
  { field = "tenant.attributes.region", op = "starts_with", value = "eu-" },
] }

[[rule]]
id = "no-api-delete"
effect = "deny"
when = { all = [
  { field = "request.feature", op = "eq", value = "api" },
  { field = "request.action", op = "eq", value = "delete" },
] }
"#;

#[test]
fn the_plan_allows_its_features() {
    let input = input();
    assert_eq!(
        allowed_by(&decide(&input, &req("reports", "view", 1), NOW)),
        "plan_feature:reports"
    );
}

#[test]
fn a_grant_beats_the_plan() {
    let mut input = input();
    input.grants.push(grant("close-reports", "reports", 5, GrantEffect::Deny));
    assert_eq!(
        refused(&decide(&input, &req("reports", "view", 1), NOW)),
        (code::GRANT_DENIED, 403, None, "grant:close-reports (promotional)".to_owned())
    );
    input.grants.push(grant("open-sso", "sso", 1, GrantEffect::Allow));
    assert_eq!(
        allowed_by(&decide(&input, &req("sso", "view", 1), NOW)),
        "grant:open-sso (promotional)"
    );
}

#[test]
fn the_highest_priority_grant_wins_and_deny_wins_a_tie() {
    let mut input = input();
    input.grants.push(grant("low-deny", "sso", 1, GrantEffect::Deny));
    input.grants.push(grant("high-allow", "sso", 9, GrantEffect::Allow));
    assert_eq!(
        allowed_by(&decide(&input, &req("sso", "view", 1), NOW)),
        "grant:high-allow (promotional)"
    );
    input.grants.push(grant("tie-deny", "sso", 9, GrantEffect::Deny));
    assert_eq!(
        refused(&decide(&input, &req("sso", "view", 1), NOW)).3,
        "grant:tie-deny (promotional)"
    );
}

#[test]
fn an_expired_grant_is_ignored() {
    let mut input = input();
    let mut trial = grant("trial-sso", "sso", 1, GrantEffect::Allow);
    trial.kind = GrantKind::Trial;
    trial.expires_at = Some(NOW);
    input.grants.push(trial);
    // Expires at NOW: already over at NOW, still on a millisecond before.
    assert_eq!(
        refused(&decide(&input, &req("sso", "view", 1), NOW)),
        (code::PLAN_UPGRADE_REQUIRED, 402, None, "default".to_owned())
    );
    assert_eq!(
        allowed_by(&decide(&input, &req("sso", "view", 1), Timestamp(NOW.0 - 1))),
        "grant:trial-sso (trial)"
    );
}

#[test]
fn a_grant_does_not_cover_more_than_its_quantity() {
    let mut input = input();
    let mut capped = grant("ten-sso", "sso", 1, GrantEffect::Allow);
    capped.quantity_max = Some(10);
    input.grants.push(capped);
    assert_eq!(
        allowed_by(&decide(&input, &req("sso", "use", 10), NOW)),
        "grant:ten-sso (promotional)"
    );
    assert_eq!(
        refused(&decide(&input, &req("sso", "use", 11), NOW)).0,
        code::PLAN_UPGRADE_REQUIRED
    );
}

#[test]
fn a_suspended_tenant_is_refused_even_with_a_grant() {
    let mut input = input();
    input.grants.push(grant("open-sso", "sso", 1, GrantEffect::Allow));
    input.tenant.state = TenantState::Suspended;
    for feature in ["sso", "reports", "nothing"] {
        assert_eq!(
            refused(&decide(&input, &req(feature, "view", 1), NOW)),
            (code::TENANT_SUSPENDED, 403, None, "state:suspended".to_owned())
        );
    }
    input.tenant.state = TenantState::Terminated;
    assert_eq!(
        refused(&decide(&input, &req("reports", "view", 1), NOW)).0,
        code::TENANT_TERMINATED
    );
    input.tenant.state = TenantState::Trial;
    assert!(decide(&input, &req("reports", "view", 1), NOW).is_allowed());
}

#[test]
fn the_plan_beats_the_rules() {
    let mut input = input();
    input.rules = rules(
        r#"
version = 1
[[rule]]
id = "deny-all-reports"
effect = "deny"
when = { field = "request.feature", op = "eq", value = "reports" }
"#,
    );
    assert_eq!(
        allowed_by(&decide(&input, &req("reports", "view", 1), NOW)),
        "plan_feature:reports"
    );
}

#[test]
fn rules_decide_what_the_plan_does_not_offer() {
    let mut input = input();
    input.rules = rules(ALLOW_SSO_EU);
    assert_eq!(allowed_by(&decide(&input, &req("sso", "login", 1), NOW)), "rule:sso-eu@v4");
    input
        .tenant
        .attributes
        .insert("region".to_owned(), govern_policy::Value::Str("us-east".to_owned()));
    assert_eq!(
        refused(&decide(&input, &req("sso", "login", 1), NOW)).0,
        code::PLAN_UPGRADE_REQUIRED
    );
    input.tenant.attributes.remove("region");
    assert_eq!(
        refused(&decide(&input, &req("sso", "login", 1), NOW)).0,
        code::PLAN_UPGRADE_REQUIRED
    );
    // A deny rule on a feature the plan lacks.
    input.plan_features.remove("api");
    assert_eq!(
        refused(&decide(&input, &req("api", "delete", 1), NOW)),
        (code::POLICY_DENIED, 403, None, "rule:no-api-delete@v4".to_owned())
    );
}

#[test]
fn a_deny_rule_overrides_an_allow_rule() {
    let mut input = input();
    input.rules = rules(
        r#"
version = 2
[[rule]]
id = "allow-audit"
effect = "allow"
when = { field = "request.feature", op = "eq", value = "audit_log" }
[[rule]]
id = "deny-big"
effect = "deny"
when = { field = "request.quantity", op = "gt", value = 100 }
"#,
    );
    assert_eq!(
        allowed_by(&decide(&input, &req("audit_log", "read", 100), NOW)),
        "rule:allow-audit@v2"
    );
    assert_eq!(refused(&decide(&input, &req("audit_log", "read", 101), NOW)).3, "rule:deny-big@v2");
}

#[test]
fn an_unknown_feature_is_403_and_an_upgradeable_one_402() {
    let input = input();
    assert_eq!(
        refused(&decide(&input, &req("teleport", "use", 1), NOW)),
        (code::NOT_ENTITLED, 403, None, "default".to_owned())
    );
    assert_eq!(
        refused(&decide(&input, &req("audit_log", "read", 1), NOW)),
        (code::PLAN_UPGRADE_REQUIRED, 402, None, "default".to_owned())
    );
}

#[test]
fn a_rate_refusal_is_429_with_the_retry_after_passed_through() {
    let mut input = input();
    input.rate =
        Some(RateVerdict::Limited { limit: Arc::from("requests_per_second"), retry_after_secs: 7 });
    assert_eq!(
        refused(&decide(&input, &req("reports", "view", 1), NOW)),
        (code::RATE_LIMITED, 429, Some(7), "limit:requests_per_second".to_owned())
    );
    // Limits only hold allows back: a refusal stays what it was.
    assert_eq!(
        refused(&decide(&input, &req("sso", "view", 1), NOW)).0,
        code::PLAN_UPGRADE_REQUIRED
    );
    input.rate = Some(RateVerdict::Within);
    assert!(decide(&input, &req("reports", "view", 1), NOW).is_allowed());
}

#[test]
fn a_quota_refusal_is_429_until_the_period_resets() {
    let mut input = input();
    input.quota = Some(Quota {
        limit: Arc::from("exports_per_month"),
        max: 100,
        used: 95,
        resets_at: Some(Timestamp(NOW.0 + 90_500)),
    });
    assert!(decide(&input, &req("reports", "export", 5), NOW).is_allowed());
    assert_eq!(
        refused(&decide(&input, &req("reports", "export", 6), NOW)),
        (code::QUOTA_EXCEEDED, 429, Some(91), "limit:exports_per_month".to_owned())
    );
    if let Some(quota) = &mut input.quota {
        quota.used = u64::MAX;
        quota.max = u64::MAX;
        quota.resets_at = None;
    }
    assert_eq!(refused(&decide(&input, &req("reports", "export", 1), NOW)).2, None);
}

#[test]
fn every_refusal_code_is_listed_once() {
    let mut codes = code::ALL.to_vec();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), code::ALL.len());
    assert!(codes.iter().all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
}

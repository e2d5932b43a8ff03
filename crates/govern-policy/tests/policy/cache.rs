//! The decision cache: hits, and never a stale allow after an invalidation.

use std::sync::Arc;

use govern_policy::{
    DECISION_CACHE_ENTRIES_MAX, DecisionCache, GrantEffect, GrantKind, Quota, RateVerdict,
    TenantState, Timestamp, Value, code, decide,
};

use crate::{NOW, grant, input, req, rules};

#[test]
fn a_second_check_is_a_hit_with_the_same_answer() {
    let input = input();
    let mut cache = DecisionCache::default();
    let first = cache.check(&input, &req("reports", "view", 1), NOW);
    let second = cache.check(&input, &req("reports", "view", 1), NOW);
    assert_eq!(first, second);
    assert_eq!(cache.hits_misses(), (1, 1));
    // Another action is another key.
    cache.check(&input, &req("reports", "export", 1), NOW);
    assert_eq!(cache.hits_misses(), (1, 2));
}

#[test]
fn no_stale_allow_after_an_invalidation() {
    let mut input = input();
    input.grants.push(grant("open-sso", "sso", 1, GrantEffect::Allow));
    input.rules = rules(
        r#"
version = 1
[[rule]]
id = "audit-eu"
effect = "allow"
when = { all = [
  { field = "request.feature", op = "eq", value = "audit_log" },
  { field = "tenant.attributes.region", op = "eq", value = "eu-west" },
] }
"#,
    );
    let mut cache = DecisionCache::default();
    let sso = req("sso", "login", 1);
    let reports = req("reports", "view", 1);
    let audit = req("audit_log", "read", 1);
    for r in [&sso, &reports, &audit] {
        assert!(cache.check(&input, r, NOW).is_allowed());
        assert!(cache.check(&input, r, NOW).is_allowed());
    }
    assert_eq!(cache.hits_misses(), (3, 3));

    // Each kind of change, then an invalidation: the next check is the fresh answer.
    let generation = cache.generation();
    input.grants.clear();
    assert_eq!(cache.invalidate(), generation + 1);
    assert_eq!(
        cache.check(&input, &sso, NOW).refusal().map(|r| r.code),
        Some(code::PLAN_UPGRADE_REQUIRED)
    );

    input.plan_features.remove("reports");
    cache.invalidate();
    assert_eq!(
        cache.check(&input, &reports, NOW).refusal().map(|r| r.code),
        Some(code::PLAN_UPGRADE_REQUIRED)
    );

    input.tenant.attributes.insert("region".to_owned(), Value::Str("us".to_owned()));
    cache.invalidate();
    assert!(!cache.check(&input, &audit, NOW).is_allowed());

    input.tenant.attributes.insert("region".to_owned(), Value::Str("eu-west".to_owned()));
    cache.invalidate();
    assert!(cache.check(&input, &audit, NOW).is_allowed());
    input.rules = rules("version = 2\n");
    cache.invalidate();
    assert!(!cache.check(&input, &audit, NOW).is_allowed());

    input.plan_features.insert("reports".to_owned());
    cache.invalidate();
    assert!(cache.check(&input, &reports, NOW).is_allowed());
    input.tenant.state = TenantState::Suspended;
    cache.invalidate();
    assert_eq!(
        cache.check(&input, &reports, NOW).refusal().map(|r| r.code),
        Some(code::TENANT_SUSPENDED)
    );
}

#[test]
fn a_grant_expiring_is_seen_without_an_invalidation() {
    let mut input = input();
    let mut trial = grant("trial-sso", "sso", 1, GrantEffect::Allow);
    trial.kind = GrantKind::Trial;
    trial.expires_at = Some(Timestamp(NOW.0 + 1_000));
    input.grants.push(trial);
    let mut cache = DecisionCache::default();
    let sso = req("sso", "login", 1);
    assert!(cache.check(&input, &sso, NOW).is_allowed());
    assert!(cache.check(&input, &sso, Timestamp(NOW.0 + 999)).is_allowed());
    assert!(!cache.check(&input, &sso, Timestamp(NOW.0 + 1_000)).is_allowed());
    // And back in time (a caller's clock is a value): the grant covers it again.
    assert!(cache.check(&input, &sso, NOW).is_allowed());
}

#[test]
fn quantities_in_one_bucket_share_an_answer_and_others_do_not() {
    let mut input = input();
    input.rules = rules(
        r#"
version = 1
[[rule]]
id = "small-audit"
effect = "allow"
when = { all = [
  { field = "request.feature", op = "eq", value = "audit_log" },
  { field = "request.quantity", op = "le", value = 10 },
] }
"#,
    );
    let mut cache = DecisionCache::default();
    assert!(cache.check(&input, &req("audit_log", "read", 3), NOW).is_allowed());
    // Buckets split at 10 and 11: [0, 10), [10, 11), [11, ..).
    assert!(cache.check(&input, &req("audit_log", "read", 9), NOW).is_allowed());
    assert_eq!(cache.hits_misses(), (1, 1));
    assert!(cache.check(&input, &req("audit_log", "read", 10), NOW).is_allowed());
    assert!(!cache.check(&input, &req("audit_log", "read", 11), NOW).is_allowed());
    assert!(!cache.check(&input, &req("audit_log", "read", 5_000), NOW).is_allowed());
    assert_eq!(cache.hits_misses(), (2, 3));
}

#[test]
fn live_limits_apply_to_cached_allows() {
    let mut input = input();
    let mut cache = DecisionCache::default();
    assert!(cache.check(&input, &req("reports", "view", 1), NOW).is_allowed());
    input.rate = Some(RateVerdict::Limited { limit: Arc::from("rps"), retry_after_secs: 2 });
    let refusal = cache.check(&input, &req("reports", "view", 1), NOW);
    assert_eq!(refusal, decide(&input, &req("reports", "view", 1), NOW));
    assert_eq!(
        refusal.refusal().map(|r| (r.code, r.retry_after_secs)),
        Some((code::RATE_LIMITED, Some(2)))
    );
    input.rate = None;
    input.quota = Some(Quota { limit: Arc::from("exports"), max: 1, used: 1, resets_at: None });
    assert_eq!(
        cache.check(&input, &req("reports", "view", 1), NOW).refusal().map(|r| r.code),
        Some(code::QUOTA_EXCEEDED)
    );
    assert_eq!(cache.hits_misses(), (2, 1));
}

#[test]
fn the_cache_is_bounded() {
    let input = input();
    let mut cache = DecisionCache::new(usize::MAX);
    let features: Vec<String> = (0..=DECISION_CACHE_ENTRIES_MAX).map(|i| format!("f{i}")).collect();
    for feature in &features {
        cache.check(&input, &req(feature, "view", 1), NOW);
        assert!(cache.len() <= DECISION_CACHE_ENTRIES_MAX);
    }
    assert_eq!(cache.len(), 1);
}

//! Properties: the same input gives the same answer; the grants' order does not matter; the
//! cache always agrees with a fresh decision when every change is followed by an invalidation;
//! no input makes the parser panic.

use std::sync::Arc;

use govern_policy::{
    DecisionCache, Grant, GrantEffect, GrantKind, Input, RuleSet, TenantState, Timestamp, Value,
    decide,
};
use proptest::prelude::*;

use crate::{NOW, input, req, rules};

const FEATURES: [&str; 5] = ["reports", "api", "sso", "audit_log", "teleport"];
const ACTIONS: [&str; 3] = ["view", "export", "delete"];

const RULES: &str = r#"
version = 3
[[rule]]
id = "sso-eu"
effect = "allow"
when = { all = [
  { field = "request.feature", op = "in", value = ["sso", "audit_log"] },
  { field = "tenant.attributes.region", op = "starts_with", value = "eu-" },
] }
[[rule]]
id = "no-big-exports"
effect = "deny"
when = { all = [
  { field = "request.action", op = "eq", value = "export" },
  { field = "request.quantity", op = "gt", value = 50 },
] }
[[rule]]
id = "gold-teleport"
effect = "allow"
when = { any = [
  { field = "tenant.attributes.tier", op = "eq", value = "gold" },
  { not = { field = "request.quantity", op = "lt", value = 3 } },
] }
"#;

fn grant_strategy() -> impl Strategy<Value = Grant> {
    (
        0..4usize,
        prop::sample::select(FEATURES.to_vec()),
        0u32..4,
        prop::option::of(-5_000i64..5_000),
        prop::option::of(0u64..80),
        any::<bool>(),
        0..4u8,
    )
        .prop_map(|(id, feature, priority, expires, quantity_max, allow, kind)| Grant {
            id: Arc::from(format!("g{id}")),
            kind: match kind {
                0 => GrantKind::Trial,
                1 => GrantKind::Promotional,
                2 => GrantKind::Manual,
                _ => GrantKind::Beta,
            },
            feature: feature.to_owned(),
            priority,
            expires_at: expires.map(|delta| Timestamp(NOW.0.saturating_add_signed(delta))),
            quantity_max,
            effect: if allow { GrantEffect::Allow } else { GrantEffect::Deny },
        })
}

/// A change to the input (never `rate` or `quota`).
#[derive(Clone, Debug)]
enum Change {
    AddGrant(Grant),
    RemoveGrant(usize),
    TogglePlanFeature(usize),
    State(u8),
    Region(bool),
    Tier(bool),
    Rules(bool),
}

fn change_strategy() -> impl Strategy<Value = Change> {
    prop_oneof![
        grant_strategy().prop_map(Change::AddGrant),
        (0..8usize).prop_map(Change::RemoveGrant),
        (0..FEATURES.len()).prop_map(Change::TogglePlanFeature),
        (0..4u8).prop_map(Change::State),
        any::<bool>().prop_map(Change::Region),
        any::<bool>().prop_map(Change::Tier),
        any::<bool>().prop_map(Change::Rules),
    ]
}

fn apply(input: &mut Input, change: &Change, with_rules: &Arc<RuleSet>) {
    match change {
        Change::AddGrant(grant) => input.grants.push(grant.clone()),
        Change::RemoveGrant(i) => {
            if !input.grants.is_empty() {
                let at = i % input.grants.len();
                input.grants.remove(at);
            }
        }
        Change::TogglePlanFeature(i) => {
            let feature = FEATURES[*i].to_owned();
            if !input.plan_features.remove(&feature) {
                input.plan_features.insert(feature);
            }
        }
        Change::State(s) => {
            input.tenant.state = match s {
                0 => TenantState::Active,
                1 => TenantState::Trial,
                2 => TenantState::Suspended,
                _ => TenantState::Terminated,
            };
        }
        Change::Region(eu) => {
            let region = if *eu { "eu-west" } else { "us-east" };
            input.tenant.attributes.insert("region".to_owned(), Value::Str(region.to_owned()));
        }
        Change::Tier(gold) => {
            if *gold {
                input.tenant.attributes.insert("tier".to_owned(), Value::Str("gold".to_owned()));
            } else {
                input.tenant.attributes.remove("tier");
            }
        }
        Change::Rules(on) => {
            input.rules = if *on { with_rules.clone() } else { Arc::new(RuleSet::empty()) };
        }
    }
}

/// (feature, action, quantity, time offset in ms)
fn request_strategy() -> impl Strategy<Value = (usize, usize, u64, i64)> {
    (0..FEATURES.len(), 0..ACTIONS.len(), 0u64..100, -6_000i64..6_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn same_input_same_answer_whatever_the_grants_order(
        grants in prop::collection::vec(grant_strategy(), 0..8),
        (f, a, q, dt) in request_strategy(),
    ) {
        let mut input = input();
        input.rules = rules(RULES);
        input.grants = grants;
        let request = req(FEATURES[f], ACTIONS[a], q);
        let now = Timestamp(NOW.0.saturating_add_signed(dt));
        let first = decide(&input, &request, now);
        prop_assert_eq!(&first, &decide(&input.clone(), &request, now));
        input.grants.reverse();
        prop_assert_eq!(&first, &decide(&input, &request, now));
        let half = input.grants.len() / 2;
        input.grants.rotate_left(half);
        prop_assert_eq!(&first, &decide(&input, &request, now));
    }

    #[test]
    fn the_cache_agrees_with_a_fresh_decision(
        steps in prop::collection::vec(
            (prop::option::of(change_strategy()), request_strategy()),
            1..60,
        ),
    ) {
        let with_rules = rules(RULES);
        let mut input = input();
        let mut cache = DecisionCache::new(8);
        for (change, (f, a, q, dt)) in &steps {
            if let Some(change) = change {
                apply(&mut input, change, &with_rules);
                cache.invalidate();
            }
            let request = req(FEATURES[*f], ACTIONS[*a], *q);
            let now = Timestamp(NOW.0.saturating_add_signed(*dt));
            prop_assert_eq!(cache.check(&input, &request, now), decide(&input, &request, now));
        }
    }

    #[test]
    fn the_parser_never_panics_on_bytes(source in ".{0,400}") {
        let _ = RuleSet::parse(&source);
    }

    #[test]
    fn the_parser_never_panics_on_near_rules(
        cut in 0..RULES.len(),
        insert in "[\\[\\]{}=\",a-z0-9 \n.-]{0,12}",
    ) {
        let mut source = RULES.to_owned();
        if source.is_char_boundary(cut) {
            source.insert_str(cut, &insert);
        }
        if let Err(error) = RuleSet::parse(&source) {
            prop_assert!(error.line >= 1 && error.column >= 1);
            prop_assert!(error.line as usize <= source.lines().count() + 1);
        }
    }
}

/// One generated rule: an optional feature test (eq one, or in two), other tests (kind,
/// number), whether it allows.
type GenRule = (Option<(usize, Option<usize>)>, Vec<(u8, u64)>, bool);

fn rule_strategy() -> impl Strategy<Value = GenRule> {
    (
        prop::option::of((0..FEATURES.len(), prop::option::of(0..FEATURES.len()))),
        prop::collection::vec((0..3u8, 0u64..100), 0..3),
        any::<bool>(),
    )
}

/// The rule set twice: with the feature test where the index sees it, and nested one level
/// deeper (`all = [{ all = [..] }]`) where it does not, so every rule is a candidate.
fn print_rules(generated: &[GenRule]) -> (String, String) {
    let mut indexed = String::from("version = 1\n");
    let mut scanned = String::from("version = 1\n");
    for (i, (feature, tests, allow)) in generated.iter().enumerate() {
        let feature = feature.map(|(a, b)| match b {
            None => format!(
                "{{ field = \"request.feature\", op = \"eq\", value = \"{}\" }}",
                FEATURES[a]
            ),
            Some(b) => format!(
                "{{ field = \"request.feature\", op = \"in\", value = [\"{}\", \"{}\"] }}",
                FEATURES[a], FEATURES[b]
            ),
        });
        let others: Vec<String> = tests
            .iter()
            .map(|(kind, n)| match kind {
                0 => format!(
                    "{{ field = \"request.action\", op = \"eq\", value = \"{}\" }}",
                    ACTIONS[*n as usize % 3]
                ),
                1 => format!("{{ field = \"request.quantity\", op = \"le\", value = {n} }}"),
                _ => format!("{{ field = \"tenant.attributes.seats\", op = \"gt\", value = {n} }}"),
            })
            .collect();
        let effect = if *allow { "allow" } else { "deny" };
        let head = format!("\n[[rule]]\nid = \"r{i}\"\neffect = \"{effect}\"\n");
        indexed.push_str(&head);
        scanned.push_str(&head);
        let mut a = Vec::new();
        let mut b = Vec::new();
        if let Some(feature) = &feature {
            a.push(feature.clone());
            b.push(format!("{{ all = [{feature}] }}"));
        }
        a.extend(others.iter().cloned());
        b.extend(others.iter().cloned());
        if !a.is_empty() {
            indexed.push_str(&format!("when = {{ all = [{}] }}\n", a.join(", ")));
            scanned.push_str(&format!("when = {{ all = [{}] }}\n", b.join(", ")));
        }
    }
    (indexed, scanned)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The feature index only skips rules that cannot match: the same rules, indexed or not,
    /// decide alike.
    #[test]
    fn the_feature_index_changes_no_answer(
        generated in prop::collection::vec(rule_strategy(), 0..12),
        requests in prop::collection::vec((0..FEATURES.len(), 0..ACTIONS.len(), 0u64..100), 1..20),
    ) {
        let (indexed, scanned) = print_rules(&generated);
        let mut a = input();
        a.plan_features.clear();
        a.rules = rules(&indexed);
        let mut b = a.clone();
        b.rules = rules(&scanned);
        for (f, act, q) in requests {
            let request = req(FEATURES[f], ACTIONS[act], q);
            prop_assert_eq!(decide(&a, &request, NOW), decide(&b, &request, NOW));
        }
    }
}

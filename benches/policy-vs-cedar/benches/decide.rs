//! Entitlement decisions (issue 11): our evaluator against `cedar-policy` on the same 200
//! rules, the uncached decision, and the cached check.
//!
//! The 200 rules are generated (a fixed seed) as one abstract list and printed twice: as our
//! TOML and as Cedar policies (`allow` → `permit`, `deny` → `forbid`; both say: a matching
//! deny overrides, else a matching allow). Before measuring, both engines decide a sample of
//! requests and must agree.
//!
//! `cargo bench --manifest-path benches/policy-vs-cedar/Cargo.toml`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Entities, EntityUid, Policy, PolicyId, PolicySet, RestrictedExpression,
};
use criterion::{Criterion, criterion_group, criterion_main};
use govern_policy::{
    Decision, DecisionCache, GrantEffect, GrantKind, Input, Request, RuleSet, Tenant, TenantState,
    Timestamp, Value, decide,
};

const NOW: Timestamp = Timestamp(1_767_225_600_000);
const RULES: usize = 200;
const FEATURES: usize = 50;
const REGIONS: [&str; 8] =
    ["eu-west", "eu-central", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south"];
const ACTIONS: [&str; 4] = ["view", "create", "export", "delete"];
const PLANS: [&str; 3] = ["starter", "pro", "enterprise"];

/// One test of a generated rule.
#[derive(Clone, Debug)]
enum Test {
    Feature(usize),
    RegionIn(Vec<&'static str>),
    RegionPrefix(&'static str),
    TierEq(&'static str),
    SeatsGe(i64),
    QuantityLe(i64),
    QuantityGt(i64),
    ActionIn(Vec<&'static str>),
    PlanNe(&'static str),
    NotAction(&'static str),
}

#[derive(Clone, Debug)]
struct GenRule {
    id: String,
    allow: bool,
    tests: Vec<Test>,
}

/// A small deterministic generator (xorshift), so both engines see the same rules every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// `scoped`: whether rules name a feature (our index narrows the candidates) or none does
/// (every rule is evaluated on every request: the worst case).
fn generate(scoped: bool) -> Vec<GenRule> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..RULES)
        .map(|i| {
            let mut tests = Vec::new();
            // Three rules in five name a feature.
            if scoped && rng.below(5) < 3 {
                tests.push(Test::Feature(rng.below(FEATURES)));
            }
            // One rule in ten denies, narrowly (deletes of large quantities), so most requests
            // go through every candidate rule: the costly path.
            let allow = rng.below(10) != 0;
            if !allow {
                tests.push(Test::ActionIn(vec!["delete"]));
                tests.push(Test::QuantityGt(500 + rng.below(500) as i64));
            }
            for _ in 0..1 + rng.below(3) {
                tests.push(match rng.below(8) {
                    0 => Test::RegionIn((0..3).map(|_| rng.pick(&REGIONS)).collect()),
                    1 => Test::RegionPrefix(rng.pick(&["eu-", "us-", "ap-"])),
                    2 => Test::TierEq(rng.pick(&["gold", "silver"])),
                    3 => Test::SeatsGe(rng.below(100) as i64),
                    4 => Test::QuantityLe(rng.below(1_000) as i64),
                    5 => Test::ActionIn((0..2).map(|_| rng.pick(&ACTIONS)).collect()),
                    6 => Test::PlanNe(rng.pick(&PLANS)),
                    _ => Test::NotAction(rng.pick(&ACTIONS)),
                });
            }
            GenRule { id: format!("r{i:03}"), allow, tests }
        })
        .collect()
}

fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn to_toml(rules: &[GenRule]) -> String {
    let mut out = String::from("version = 1\n");
    for rule in rules {
        let tests: Vec<String> = rule
            .tests
            .iter()
            .map(|test| {
                let t = |field: &str, op: &str, value: String| {
                    format!("{{ field = \"{field}\", op = \"{op}\", value = {value} }}")
                };
                match test {
                    Test::Feature(f) => t("request.feature", "eq", format!("\"feature_{f}\"")),
                    Test::RegionIn(list) => t("tenant.attributes.region", "in", quoted_list(list)),
                    Test::RegionPrefix(p) => {
                        t("tenant.attributes.region", "starts_with", format!("\"{p}\""))
                    }
                    Test::TierEq(tier) => t("tenant.attributes.tier", "eq", format!("\"{tier}\"")),
                    Test::SeatsGe(n) => t("tenant.attributes.seats", "ge", n.to_string()),
                    Test::QuantityLe(n) => t("request.quantity", "le", n.to_string()),
                    Test::QuantityGt(n) => t("request.quantity", "gt", n.to_string()),
                    Test::ActionIn(list) => t("request.action", "in", quoted_list(list)),
                    Test::PlanNe(plan) => t("tenant.plan", "ne", format!("\"{plan}\"")),
                    Test::NotAction(a) => {
                        format!("{{ not = {} }}", t("request.action", "eq", format!("\"{a}\"")))
                    }
                }
            })
            .collect();
        let effect = if rule.allow { "allow" } else { "deny" };
        let _ = writeln!(
            out,
            "\n[[rule]]\nid = \"{}\"\neffect = \"{effect}\"\nwhen = {{ all = [\n  {},\n] }}",
            rule.id,
            tests.join(",\n  ")
        );
    }
    out
}

/// Every attribute test is guarded with `has`: an absent attribute makes our test false, and
/// an unguarded Cedar access an error (the policy is skipped, which is the same for a
/// permit, not for a forbid inside a negation).
fn to_cedar(rules: &[GenRule]) -> PolicySet {
    let mut set = PolicySet::new();
    for rule in rules {
        let tests: Vec<String> = rule
            .tests
            .iter()
            .map(|test| match test {
                Test::Feature(f) => format!("context.feature == \"feature_{f}\""),
                Test::RegionIn(list) => format!(
                    "(context has region && {}.contains(context.region))",
                    quoted_list(list)
                ),
                Test::RegionPrefix(p) => {
                    format!("(context has region && context.region like \"{p}*\")")
                }
                Test::TierEq(tier) => format!("(context has tier && context.tier == \"{tier}\")"),
                Test::SeatsGe(n) => format!("(context has seats && context.seats >= {n})"),
                Test::QuantityLe(n) => format!("context.quantity <= {n}"),
                Test::QuantityGt(n) => format!("context.quantity > {n}"),
                Test::ActionIn(list) => format!("{}.contains(context.action)", quoted_list(list)),
                Test::PlanNe(plan) => format!("context.plan != \"{plan}\""),
                Test::NotAction(a) => format!("!(context.action == \"{a}\")"),
            })
            .collect();
        let effect = if rule.allow { "permit" } else { "forbid" };
        let text =
            format!("{effect}(principal, action, resource) when {{ {} }};", tests.join(" && "));
        let policy = Policy::parse(Some(PolicyId::new(&rule.id)), text).expect("cedar rule parses");
        set.add(policy).expect("cedar rule ids are unique");
    }
    set
}

fn tenant_input(
    rules: Arc<RuleSet>,
    region: &str,
    tier: Option<&str>,
    seats: i64,
    plan: &str,
) -> Input {
    let mut attributes = BTreeMap::from([
        ("region".to_owned(), Value::Str(region.to_owned())),
        ("seats".to_owned(), Value::Int(seats)),
    ]);
    if let Some(tier) = tier {
        attributes.insert("tier".to_owned(), Value::Str(tier.to_owned()));
    }
    Input {
        tenant: Tenant {
            id: "t1".to_owned(),
            state: TenantState::Active,
            plan: plan.to_owned(),
            attributes,
        },
        // The plan offers none of the rules' features, so every decision goes to the rules.
        plan_features: ["reports", "api"].iter().map(|s| (*s).to_owned()).collect(),
        catalog_features: (0..FEATURES).map(|f| format!("feature_{f}")).collect(),
        // Grants for other features: looked at, never winning.
        grants: (0..5)
            .map(|i| govern_policy::Grant {
                id: Arc::from(format!("g{i}")),
                kind: GrantKind::Promotional,
                feature: format!("other_{i}"),
                priority: i,
                expires_at: Some(Timestamp(NOW.0 + 86_400_000)),
                quantity_max: None,
                effect: GrantEffect::Allow,
            })
            .collect(),
        rules,
        rate: None,
        quota: None,
    }
}

fn cedar_request(
    input: &Input,
    feature: &str,
    action: &str,
    quantity: u64,
) -> cedar_policy::Request {
    let mut pairs = vec![
        ("feature".to_owned(), RestrictedExpression::new_string(feature.to_owned())),
        ("action".to_owned(), RestrictedExpression::new_string(action.to_owned())),
        ("quantity".to_owned(), RestrictedExpression::new_long(quantity as i64)),
        ("plan".to_owned(), RestrictedExpression::new_string(input.tenant.plan.clone())),
    ];
    for (name, value) in &input.tenant.attributes {
        pairs.push((
            name.clone(),
            match value {
                Value::Str(s) => RestrictedExpression::new_string(s.clone()),
                Value::Int(i) => RestrictedExpression::new_long(*i),
                Value::Bool(b) => RestrictedExpression::new_bool(*b),
            },
        ));
    }
    let context = Context::from_pairs(pairs).expect("context");
    let uid = |s: &str| EntityUid::from_str(s).expect("uid");
    cedar_policy::Request::new(
        uid(r#"Tenant::"t1""#),
        uid(r#"Action::"check""#),
        uid(r#"Feature::"f""#),
        context,
        None,
    )
    .expect("request")
}

struct Setup {
    ours: Input,
    cedar: PolicySet,
    requests: Vec<(String, &'static str, u64)>,
}

fn setup(scoped: bool) -> Setup {
    let generated = generate(scoped);
    let rules = Arc::new(RuleSet::parse(&to_toml(&generated)).expect("our rules parse"));
    assert_eq!(rules.len(), RULES);
    let cedar = to_cedar(&generated);
    let mut rng = Rng(42);
    let requests = (0..64)
        .map(|_| {
            (
                format!("feature_{}", rng.below(FEATURES)),
                rng.pick(&ACTIONS),
                rng.below(1_200) as u64,
            )
        })
        .collect();
    let ours = tenant_input(rules, "eu-west", Some("gold"), 40, "pro");
    Setup { ours, cedar, requests }
}

/// Both engines agree on every sampled request, for several tenants.
fn agree(setup: &Setup) -> (usize, usize) {
    let authorizer = Authorizer::new();
    let entities = Entities::empty();
    let mut allowed = 0;
    let mut total = 0;
    for (region, tier, seats, plan) in [
        ("eu-west", Some("gold"), 40, "pro"),
        ("us-east", None, 5, "starter"),
        ("ap-south", Some("silver"), 99, "enterprise"),
    ] {
        let input = tenant_input(setup.ours.rules.clone(), region, tier, seats, plan);
        for (feature, action, quantity) in &setup.requests {
            let ours = decide(&input, &Request { feature, action, quantity: *quantity }, NOW);
            let request = cedar_request(&input, feature, action, *quantity);
            let theirs = authorizer.is_authorized(&request, &setup.cedar, &entities);
            assert!(theirs.diagnostics().errors().next().is_none(), "cedar errors");
            let cedar_allows = theirs.decision() == cedar_policy::Decision::Allow;
            assert_eq!(
                ours.is_allowed(),
                cedar_allows,
                "{feature} {action} {quantity} {region}: {ours:?}"
            );
            if let (Decision::Allowed { decided_by }, true) = (&ours, cedar_allows) {
                let id = decided_by.to_string();
                assert!(theirs.diagnostics().reason().any(|p| id.contains(&format!("rule:{p}@"))));
            }
            allowed += usize::from(cedar_allows);
            total += 1;
        }
    }
    (allowed, total)
}

fn bench(c: &mut Criterion) {
    for (label, scoped) in [("scoped", true), ("unscoped", false)] {
        let setup = setup(scoped);
        let (allowed, total) = agree(&setup);
        eprintln!("{label}: ours and cedar agree on {total} requests ({allowed} allowed)");
        let mut group = c.benchmark_group(format!("decision_200_rules_{label}"));
        let mut i = 0usize;
        group.bench_function("ours_uncached", |b| {
            b.iter(|| {
                i = (i + 1) % setup.requests.len();
                let (feature, action, quantity) = &setup.requests[i];
                black_box(decide(
                    black_box(&setup.ours),
                    &Request { feature, action, quantity: *quantity },
                    NOW,
                ))
            });
        });
        let authorizer = Authorizer::new();
        let entities = Entities::empty();
        let cedar_requests: Vec<_> = setup
            .requests
            .iter()
            .map(|(feature, action, quantity)| {
                cedar_request(&setup.ours, feature, action, *quantity)
            })
            .collect();
        group.bench_function("cedar_is_authorized", |b| {
            b.iter(|| {
                i = (i + 1) % cedar_requests.len();
                black_box(authorizer.is_authorized(
                    black_box(&cedar_requests[i]),
                    &setup.cedar,
                    &entities,
                ))
            });
        });
        group.bench_function("cedar_with_request_built", |b| {
            b.iter(|| {
                i = (i + 1) % setup.requests.len();
                let (feature, action, quantity) = &setup.requests[i];
                let request = cedar_request(&setup.ours, feature, action, *quantity);
                black_box(authorizer.is_authorized(&request, &setup.cedar, &entities))
            });
        });
        let mut cache = DecisionCache::default();
        for (feature, action, quantity) in &setup.requests {
            cache.check(&setup.ours, &Request { feature, action, quantity: *quantity }, NOW);
        }
        group.bench_function("ours_cached", |b| {
            b.iter(|| {
                i = (i + 1) % setup.requests.len();
                let (feature, action, quantity) = &setup.requests[i];
                black_box(cache.check(
                    black_box(&setup.ours),
                    &Request { feature, action, quantity: *quantity },
                    NOW,
                ))
            });
        });
        group.finish();
    }
}

/// How each engine's cost grows with the number of rules (the first N unscoped rules): a
/// fixed cost per request, or a cost per rule?
fn scaling(c: &mut Criterion) {
    let generated = generate(false);
    let mut group = c.benchmark_group("decision_rules_scaling");
    for n in [1usize, 20] {
        let rules = &generated[..n];
        let ours = tenant_input(
            Arc::new(RuleSet::parse(&to_toml(rules)).expect("parse")),
            "eu-west",
            Some("gold"),
            40,
            "pro",
        );
        let cedar = to_cedar(rules);
        let request = cedar_request(&ours, "feature_1", "view", 10);
        let authorizer = Authorizer::new();
        let entities = Entities::empty();
        group.bench_function(format!("ours_{n}"), |b| {
            b.iter(|| {
                black_box(decide(
                    black_box(&ours),
                    &Request { feature: "feature_1", action: "view", quantity: 10 },
                    NOW,
                ))
            });
        });
        group.bench_function(format!("cedar_{n}"), |b| {
            b.iter(|| black_box(authorizer.is_authorized(black_box(&request), &cedar, &entities)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench, scaling);
criterion_main!(benches);

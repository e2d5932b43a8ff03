//! `govern bench checks` (issue 11's figures): `RuntimeHandle::check` measured on a running
//! in-memory runtime with a plan catalog and a rule set.
//!
//! N tenants, each with a live subscription (a trial) on a plan of the catalog (round-robin
//! over its plans) and one entitled grant of a feature no plan has. Then, wall-clock:
//!
//! - **cached**: every tenant's warm set (each feature of its plan and the granted feature,
//!   times [`WARM_ACTIONS`]), warmed first, checked on 1 thread (one tenant; all tenants in
//!   turn), on T threads with one tenant each, with the tenants spread over them (thread t
//!   takes every T-th from t), and all on one shared tenant (its lock contended);
//! - **uncached**: a feature no plan or grant has, which only the rules allow: R − 1
//!   synthetic rules that do not match and a last one that does, so every check evaluates all
//!   R; each tenant cycles through [`uncached_actions`] distinct actions, more than its cache
//!   holds ([`CHECK_CACHE_ENTRIES_MAX`]), so every call misses (proved on a cache of the same
//!   size replaying one tenant's sequence: zero hits); on 1 thread (all tenants in turn) and
//!   T threads (tenants spread);
//! - **decide**: `govern_policy::decide` directly on one tenant's input, same requests.
//!
//! Every decision is counted by what decided it and the counts must equal what the setup
//! implies (plan feature, grant or the last rule; no refusal): otherwise the command exits
//! non-zero, so the figures can never be those of refusals.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use clap::Args;
use govern_governors::entitlement::{Command as GrantCommand, Entitlement, GrantKind};
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_plans::Catalog;
use govern_policy::{
    DecidedBy, Decision, DecisionCache, Grant, GrantEffect, Input, Request, RuleSet, Tenant,
    TenantState,
};
use govern_runtime::limits::CHECK_CACHE_ENTRIES_MAX;
use govern_runtime::{Runtime, RuntimeHandle};
use serde_json::{Value, json};

use super::{id, load_catalog};

/// Most tenants the benchmark provisions.
pub(crate) const TENANTS_MAX: usize = 1_000_000;
/// Most checking threads.
pub(crate) const THREADS_MAX: usize = 1_024;
/// The actions of each warm (feature, action) pair.
pub(crate) const WARM_ACTIONS: [&str; 4] = ["view", "create", "export", "delete"];
/// The feature every tenant's grant entitles (no plan of the catalog may offer it).
pub(crate) const GRANTED_FEATURE: &str = "bench_granted";
/// The feature only the last rule allows (no plan of the catalog may offer it).
pub(crate) const RULED_FEATURE: &str = "bench_ruled";
/// The runtime's clock at start.
const EPOCH: Timestamp = Timestamp(1_767_225_600_000);

/// The default catalog: the three example catalogs the repository ships, compiled in so that
/// the command runs from any directory.
pub(crate) const EXAMPLE_CATALOG: [(&str, &str); 3] = [
    ("examples/plans/licensing.toml", include_str!("../../../../examples/plans/licensing.toml")),
    ("examples/plans/pricing.toml", include_str!("../../../../examples/plans/pricing.toml")),
    ("examples/plans/platform.toml", include_str!("../../../../examples/plans/platform.toml")),
];

/// Options of `govern bench checks`.
#[derive(Debug, Args)]
pub(crate) struct ChecksArgs {
    /// Tenants provisioned, each with a live subscription and an entitled grant.
    #[arg(long, default_value_t = 1_000)]
    tenants: usize,
    /// Checking threads of the multi-threaded cases (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Checks per thread in each case.
    #[arg(long, default_value_t = 1_000_000)]
    checks: u64,
    /// Catalog files, taken together (default: the three example catalogs,
    /// examples/plans/{licensing,pricing,platform}.toml).
    #[arg(long, num_args = 1..)]
    catalog: Vec<PathBuf>,
    /// Policy rules (R − 1 that do not match and one that allows), at least 1.
    #[arg(long, default_value_t = 200)]
    rules: usize,
    /// Hold every check to a rate limit (GCRA) too: every plan's `requests_per_second` is set
    /// to 1 000 000 000 (so none is refused). Without it the plans' rates are removed, and
    /// the figures are those of the decision alone.
    #[arg(long)]
    rate: bool,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
}

/// The rate every plan gets with `--rate`: high enough that no check is refused.
const BENCH_RATE: u64 = 1_000_000_000;

/// Removes (or, with `rate`, raises to [`BENCH_RATE`]) every plan's `requests_per_second`.
fn set_rates(catalog: &mut Catalog, rate: bool) {
    for plan in catalog.plans.values_mut() {
        let key = plan.limits.keys().find(|m| m.as_str() == "requests_per_second").cloned();
        if let Some(key) = key {
            if rate {
                if let Some(limit) = plan.limits.get_mut(&key) {
                    limit.value = govern_plans::LimitValue::Finite(BENCH_RATE);
                }
            } else {
                plan.limits.remove(&key);
            }
        }
    }
}

/// The distinct actions each tenant cycles through in the uncached cases: twice what its
/// decision cache holds, so no answer is still cached when its request comes round again.
pub(crate) const fn uncached_actions() -> usize {
    2 * CHECK_CACHE_ENTRIES_MAX
}

/// The rule file: `rules − 1` rules that each test the tenant's plan and the quantity (both
/// true) and then the action (never one the benchmark asks for), one in ten a deny (a deny is
/// always evaluated); then one allow that matches every request. No rule names a feature, so
/// all are candidates for every feature.
fn rule_source(rules: usize) -> String {
    let mut out = String::from("version = 1\n");
    for i in 0..rules.saturating_sub(1) {
        let effect = if i % 10 == 9 { "deny" } else { "allow" };
        let _ = write!(
            out,
            "\n[[rule]]\nid = \"r{i:05}\"\neffect = \"{effect}\"\nwhen = {{ all = [\n  \
             {{ field = \"tenant.plan\", op = \"ne\", value = \"no-plan-{i}\" }},\n  \
             {{ field = \"request.quantity\", op = \"le\", value = 1000000 }},\n  \
             {{ field = \"request.action\", op = \"in\", value = [\"never-{i}-a\", \"never-{i}-b\"] }},\n] }}\n"
        );
    }
    let _ = write!(
        out,
        "\n[[rule]]\nid = \"{}\"\neffect = \"allow\"\nwhen = {{ field = \"request.quantity\", op = \"ge\", value = 1 }}\n",
        last_rule_id(rules)
    );
    out
}

fn last_rule_id(rules: usize) -> String {
    format!("r{:05}", rules.saturating_sub(1))
}

/// What decided a check, as the benchmark counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    PlanFeature,
    Grant,
    Rule,
    /// Allowed by something the setup does not imply, or refused.
    Other,
}

impl Kind {
    const ALL: [Self; 4] = [Self::PlanFeature, Self::Grant, Self::Rule, Self::Other];

    fn name(self) -> &'static str {
        match self {
            Self::PlanFeature => "allowed_plan_feature",
            Self::Grant => "allowed_grant",
            Self::Rule => "allowed_rule",
            Self::Other => "other",
        }
    }

    fn of(decision: &Decision, last_rule: &str) -> Self {
        match decision {
            Decision::Allowed { decided_by: DecidedBy::PlanFeature(_) } => Self::PlanFeature,
            Decision::Allowed { decided_by: DecidedBy::Grant { .. } } => Self::Grant,
            Decision::Allowed { decided_by: DecidedBy::Rule { id, .. } } if **id == *last_rule => {
                Self::Rule
            }
            _ => Self::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts by [`Kind`].
type Counts = [u64; 4];

/// One check a thread makes: tenant, feature, action and the kind it must be decided by.
#[derive(Clone, Copy, Debug)]
struct Item<'a> {
    tenant: &'a TenantId,
    feature: &'a str,
    action: &'a str,
    expect: Kind,
}

/// A thread's sequence of checks, cycled.
#[derive(Debug)]
enum Work<'a> {
    /// These checks, in order.
    Items(Vec<Item<'a>>),
    /// `feature`, allowed by the last rule, round-robin over the tenants, each tenant taking
    /// the next of the actions in turn (generated: a whole cycle would not fit in memory).
    Cycle { tenants: Vec<&'a TenantId>, feature: &'a str, actions: &'a [Arc<str>] },
}

impl<'a> Work<'a> {
    fn len(&self) -> usize {
        match self {
            Self::Items(items) => items.len(),
            Self::Cycle { tenants, actions, .. } => tenants.len() * actions.len(),
        }
    }

    /// The `k`th check, `k < self.len()`.
    fn get(&self, k: usize) -> Option<Item<'a>> {
        match self {
            Self::Items(items) => items.get(k).copied(),
            Self::Cycle { tenants, feature, actions } => {
                let n = tenants.len().max(1);
                Some(Item {
                    tenant: tenants.get(k % n)?,
                    feature,
                    action: actions.get(k / n)?,
                    expect: Kind::Rule,
                })
            }
        }
    }

    fn tenants(&self) -> usize {
        match self {
            Self::Items(items) => {
                let mut t: Vec<&TenantId> = items.iter().map(|i| i.tenant).collect();
                t.sort_unstable();
                t.dedup();
                t.len()
            }
            Self::Cycle { tenants, .. } => tenants.len(),
        }
    }

    /// How many checks of each kind `n` calls make.
    fn expected(&self, n: u64) -> Counts {
        let mut counts = [0; 4];
        match self {
            Self::Items(items) => {
                let len = items.len().max(1) as u64;
                for (k, item) in items.iter().enumerate() {
                    counts[item.expect.index()] += n / len + u64::from((k as u64) < n % len);
                }
            }
            Self::Cycle { .. } => counts[Kind::Rule.index()] = n,
        }
        counts
    }
}

/// The outcome of one case.
#[derive(Debug)]
struct Case {
    name: &'static str,
    threads: usize,
    tenants_per_thread: usize,
    checks: u64,
    wall_s: f64,
    counts: Counts,
    expected: Counts,
    /// The first unexpected decision, if any.
    first_other: Option<String>,
}

impl Case {
    fn ns_per_check(&self) -> f64 {
        self.wall_s * 1e9 * self.threads as f64 / self.checks.max(1) as f64
    }

    fn per_s(&self) -> f64 {
        self.checks as f64 / self.wall_s.max(f64::MIN_POSITIVE)
    }

    fn counts_json(counts: &Counts) -> Value {
        let map: serde_json::Map<String, Value> =
            Kind::ALL.iter().map(|k| (k.name().to_owned(), json!(counts[k.index()]))).collect();
        Value::Object(map)
    }

    fn json(&self) -> Value {
        json!({
            "threads": self.threads,
            "tenants_per_thread": self.tenants_per_thread,
            "checks": self.checks,
            "wall_s": self.wall_s,
            "ns_per_check": (self.ns_per_check() * 10.0).round() / 10.0,
            "checks_per_s": self.per_s().round(),
            "outcomes": Self::counts_json(&self.counts),
            "expected": Self::counts_json(&self.expected),
        })
    }

    fn failure(&self) -> Option<String> {
        (self.counts != self.expected).then(|| {
            format!(
                "{}: outcomes {} differ from the expected {}{}",
                self.name,
                Self::counts_json(&self.counts),
                Self::counts_json(&self.expected),
                self.first_other
                    .as_ref()
                    .map(|d| format!(" (first unexpected: {d})"))
                    .unwrap_or_default()
            )
        })
    }
}

fn describe(decision: &Decision) -> String {
    match decision.refusal() {
        None => format!("allowed by {}", decision.decided_by()),
        Some(r) => format!("{} {} by {}", r.code, r.status, r.decided_by),
    }
}

/// Runs one thread per `work`, thread `t` calling `check` on `work[t]` cycled `n` times,
/// all from a common start; the wall-clock from the first start to the last end.
fn measure<F>(name: &'static str, work: &[Work<'_>], n: u64, last_rule: &str, check: F) -> Case
where
    F: Fn(Item<'_>) -> Decision + Sync,
{
    let threads = work.len();
    let barrier = Barrier::new(threads);
    let results: Vec<(Instant, Instant, Counts, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = work
            .iter()
            .map(|work| {
                let (barrier, check) = (&barrier, &check);
                s.spawn(move || {
                    let mut counts = [0u64; 4];
                    let mut first_other = None;
                    let len = work.len();
                    barrier.wait();
                    let started = Instant::now();
                    let mut k = 0;
                    for _ in 0..n {
                        let Some(item) = work.get(k) else { break };
                        let decision = check(item);
                        // A decision of another kind than its item's counts as `Other`.
                        let kind = match Kind::of(&decision, last_rule) {
                            kind if kind == item.expect => kind,
                            _ => Kind::Other,
                        };
                        counts[kind.index()] += 1;
                        if kind == Kind::Other && first_other.is_none() {
                            first_other = Some(describe(&decision));
                        }
                        k += 1;
                        if k == len {
                            k = 0;
                        }
                    }
                    (started, Instant::now(), counts, first_other)
                })
            })
            .collect();
        // A thread that panicked is missing from the results: its checks count as missing.
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let start = results.iter().map(|r| r.0).min();
    let end = results.iter().map(|r| r.1).max();
    let wall_s = match (start, end) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let mut counts = [0; 4];
    let mut first_other = None;
    for r in &results {
        for (c, x) in counts.iter_mut().zip(r.2) {
            *c += x;
        }
        first_other = first_other.or_else(|| r.3.clone());
    }
    let mut expected = [0; 4];
    for w in work {
        for (e, x) in expected.iter_mut().zip(w.expected(n)) {
            *e += x;
        }
    }
    Case {
        name,
        threads,
        tenants_per_thread: work.first().map_or(0, Work::tenants),
        checks: n * threads as u64,
        wall_s,
        counts,
        expected,
        first_other,
    }
}

/// A tenant of the benchmark and what it was given.
#[derive(Debug)]
struct Provisioned {
    tenant: TenantId,
    plan: String,
    features: Vec<Arc<str>>,
}

/// The tenants' warm sets: each feature of the plan, then the granted feature, times
/// [`WARM_ACTIONS`].
fn warm<'a>(tenants: &[&'a Provisioned]) -> Work<'a> {
    let mut items = Vec::new();
    for t in tenants {
        let features = t.features.iter().map(|f| (&**f, Kind::PlanFeature));
        for (feature, expect) in features.chain([(GRANTED_FEATURE, Kind::Grant)]) {
            for action in WARM_ACTIONS {
                items.push(Item { tenant: &t.tenant, feature, action, expect });
            }
        }
    }
    Work::Items(items)
}

/// The uncached sequence over `tenants`: [`RULED_FEATURE`] with each of `actions` in turn.
fn uncached<'a>(tenants: &[&'a Provisioned], actions: &'a [Arc<str>]) -> Work<'a> {
    Work::Cycle {
        tenants: tenants.iter().map(|t| &t.tenant).collect(),
        feature: RULED_FEATURE,
        actions,
    }
}

/// Thread `t`'s tenants: every `threads`th from `t` (all tenants' lists are as long, give or
/// take one); with fewer tenants than threads, tenant `t % n` alone.
fn tenants_of(all: &[Provisioned], t: usize, threads: usize) -> Vec<&Provisioned> {
    if all.len() < threads {
        return all.get(t % all.len().max(1)).into_iter().collect();
    }
    all.iter().skip(t).step_by(threads).collect()
}

/// The policy input the runtime builds for a tenant (its plan's features, its grant).
fn input_of(t: &Provisioned, catalog: &Catalog, rules: &Arc<RuleSet>) -> Input {
    Input {
        tenant: Tenant {
            id: t.tenant.as_str().to_owned(),
            state: TenantState::Active,
            plan: t.plan.clone(),
            attributes: BTreeMap::new(),
        },
        plan_features: t.features.iter().map(|f| f.to_string()).collect(),
        catalog_features: catalog
            .plans
            .values()
            .flat_map(|p| p.features.iter().map(|f| f.as_str().to_owned()))
            .collect(),
        grants: vec![Grant {
            id: Arc::from(format!("grant-{}", t.tenant.as_str()).as_str()),
            kind: GrantKind::Promotional,
            feature: GRANTED_FEATURE.to_owned(),
            priority: 1,
            expires_at: None,
            quantity_max: None,
            effect: GrantEffect::Allow,
        }],
        rules: Arc::clone(rules),
        rate: None,
        quota: None,
    }
}

/// Replays a warm set then two cycles of an uncached sequence on a cache of the runtime's
/// size: the uncached requests' hits (which must be 0) and their number.
///
/// Why it holds in the runtime too: a tenant's sequence asks for [`uncached_actions`]
/// distinct keys in turn, none of which its cache held before the case (each case has actions
/// of its own). Between two requests of one key come `uncached_actions() - 1 >=
/// CHECK_CACHE_ENTRIES_MAX` requests of other keys, each a miss that inserts (by induction);
/// a cache that never held more than its capacity must have emptied itself in between, so
/// the second request misses too. This replay checks the argument on the cache itself.
fn miss_proof(input: &Input, warm: &Work<'_>, uncached: &Work<'_>) -> (u64, u64) {
    let mut cache = DecisionCache::new(CHECK_CACHE_ENTRIES_MAX);
    let run = |cache: &mut DecisionCache, work: &Work<'_>, times: usize| {
        for k in 0..work.len() * times {
            if let Some(i) = work.get(k % work.len()) {
                let request = Request { feature: i.feature, action: i.action, quantity: 1 };
                let _ = cache.check(input, &request, EPOCH);
            }
        }
    };
    run(&mut cache, warm, 1);
    let (warm_hits, warm_misses) = cache.hits_misses();
    // The second cycle comes round to the answers the first one cached.
    run(&mut cache, uncached, 2);
    let (hits, misses) = cache.hits_misses();
    (hits - warm_hits, (hits + misses) - (warm_hits + warm_misses))
}

/// Starts the runtime and provisions the tenants: a trial subscription on plan
/// `plans[i % len]` and an approved grant of [`GRANTED_FEATURE`] each.
async fn provision(
    catalog: Catalog,
    rules: RuleSet,
    tenants: usize,
) -> Result<(Runtime, Vec<Provisioned>), String> {
    let plans: Vec<(String, Vec<Arc<str>>)> = catalog
        .plans
        .values()
        .map(|p| {
            (p.id.as_str().to_owned(), p.features.iter().map(|f| Arc::from(f.as_str())).collect())
        })
        .collect();
    if plans.is_empty() {
        return Err("the catalog has no plan".into());
    }
    let runtime = Runtime::builder()
        .epoch(EPOCH)
        .catalog(catalog)
        .policy(rules)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let h = runtime.handle();
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    let mut provisioned = Vec::with_capacity(tenants);
    for i in 0..tenants {
        let tenant: TenantId = id(&format!("tenant-{i:07}"))?;
        let (plan, features) = &plans[i % plans.len()];
        h.provision_tenant(&tenant, quota, "benchmark").await.map_err(|e| e.to_string())?;
        let sub: ResourceId = id(&format!("sub-{i:07}"))?;
        h.subscription(&tenant, &sub)
            .start_trial(plan, 14, "benchmark")
            .await
            .map_err(|e| e.to_string())?;
        let grant = h.governor::<Entitlement>(&tenant, &id(&format!("grant-{}", tenant.as_str()))?);
        let request = GrantCommand::GrantEntitlement {
            feature: GRANTED_FEATURE.into(),
            expires_at: None,
            kind: GrantKind::Promotional,
            priority: 1,
        };
        grant.send(request, "benchmark").await.map_err(|e| e.to_string())?;
        grant.send(GrantCommand::ApproveGrant, "benchmark").await.map_err(|e| e.to_string())?;
        provisioned.push(Provisioned { tenant, plan: plan.clone(), features: features.clone() });
    }
    Ok((runtime, provisioned))
}

/// `handle.check` of an item, an error as an unexpected decision.
fn check_item(h: &RuntimeHandle, item: Item<'_>) -> Decision {
    h.check(item.tenant, item.feature, item.action, 1).unwrap_or_else(|e| Decision::Allowed {
        decided_by: DecidedBy::Limit(Arc::from(format!("error: {e}").as_str())),
    })
}

pub(crate) fn checks(args: &ChecksArgs) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = args.threads.unwrap_or(cores);
    if !(1..=TENANTS_MAX).contains(&args.tenants) {
        return Err(format!("--tenants must be 1 to {TENANTS_MAX}"));
    }
    if !(1..=THREADS_MAX).contains(&threads) {
        return Err(format!("--threads must be 1 to {THREADS_MAX}"));
    }
    if args.checks == 0 {
        return Err("--checks must be at least 1".into());
    }
    if !(1..=govern_policy::rules::RULES_MAX).contains(&args.rules) {
        return Err(format!("--rules must be 1 to {}", govern_policy::rules::RULES_MAX));
    }
    let (catalog, catalog_names) = if args.catalog.is_empty() {
        let catalog = govern_plans::validate_files(&EXAMPLE_CATALOG)
            .map_err(|problems| super::problems_text(&problems))?;
        (catalog, EXAMPLE_CATALOG.iter().map(|(name, _)| (*name).to_owned()).collect())
    } else {
        let names = args.catalog.iter().map(|p| p.display().to_string()).collect();
        (load_catalog(&args.catalog)?, names)
    };
    let catalog_names: Vec<String> = catalog_names;
    let mut catalog = catalog;
    set_rates(&mut catalog, args.rate);
    for feature in [GRANTED_FEATURE, RULED_FEATURE] {
        if catalog.plans.values().any(|p| p.features.iter().any(|f| f.as_str() == feature)) {
            return Err(format!(
                "the benchmark's feature {feature} must be in no plan of the catalog"
            ));
        }
    }
    let rules = RuleSet::parse(&rule_source(args.rules)).map_err(|e| e.to_string())?;
    let last_rule = last_rule_id(args.rules);

    let (rt, _, _) = super::tokio_runtime(Some(cores))?;
    let provisioning = Instant::now();
    let (runtime, tenants) =
        rt.block_on(provision(catalog.clone(), rules.clone(), args.tenants))?;
    let provision_s = provisioning.elapsed().as_secs_f64();
    let h = runtime.handle();
    let rules = Arc::new(rules);
    let n = args.checks;

    let all: Vec<&Provisioned> = tenants.iter().collect();
    let first: Vec<&Provisioned> = tenants.iter().take(1).collect();
    let spread: Vec<Vec<&Provisioned>> =
        (0..threads).map(|t| tenants_of(&tenants, t, threads)).collect();
    let each: Vec<&Provisioned> =
        (0..threads).filter_map(|t| tenants.get(t % tenants.len())).collect();
    // Each uncached case has actions of its own: none of its requests can be answered by an
    // entry an earlier case left in a tenant's cache.
    let actions = |case: &str| -> Vec<Arc<str>> {
        (0..uncached_actions()).map(|a| Arc::from(format!("{case}-{a:05}").as_str())).collect()
    };
    let (actions_1, actions_t, actions_d) = (actions("one"), actions("own"), actions("decide"));
    let checked = |i: Item<'_>| check_item(&h, i);
    // Warm every tenant's set, checking each answer once.
    let warm_all = [warm(&all)];
    let mut cases =
        vec![measure("warm_up", &warm_all, warm_all[0].len() as u64, &last_rule, checked)];
    let measured: [(&'static str, Vec<Work<'_>>); 7] = [
        ("cached_1_thread_1_tenant", vec![warm(&first)]),
        ("cached_1_thread_all_tenants", vec![warm(&all)]),
        ("cached_threads_1_tenant_each", each.iter().map(|t| warm(&[*t])).collect()),
        ("cached_threads_spread_tenants", spread.iter().map(|mine| warm(mine)).collect()),
        ("cached_threads_shared_tenant", (0..threads).map(|_| warm(&first)).collect()),
        ("uncached_1_thread_all_tenants", vec![uncached(&all, &actions_1)]),
        (
            "uncached_threads_spread_tenants",
            spread.iter().map(|mine| uncached(mine, &actions_t)).collect(),
        ),
    ];
    for (name, work) in &measured {
        cases.push(measure(name, work, n, &last_rule, checked));
    }
    let input = input_of(&tenants[0], &catalog, &rules);
    let decided = |i: Item<'_>| {
        let request = Request { feature: i.feature, action: i.action, quantity: 1 };
        govern_policy::decide(&input, &request, EPOCH)
    };
    cases.push(measure("decide_1_thread", &[uncached(&first, &actions_d)], n, &last_rule, decided));
    let proof = miss_proof(&input, &warm(&first), &uncached(&first, &actions_1));
    rt.block_on(runtime.shutdown()).map_err(|e| e.to_string())?;

    let mut failures: Vec<String> = cases.iter().filter_map(Case::failure).collect();
    if proof.0 != 0 {
        failures.push(format!(
            "the uncached sequence hit a cache of {CHECK_CACHE_ENTRIES_MAX} entries {} times",
            proof.0
        ));
    }
    report(
        args,
        &Report {
            cores,
            threads,
            provision_s,
            catalog: &catalog_names,
            plans: catalog.plans.len(),
            cases: &cases,
            proof,
        },
    )?;
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n")) }
}

/// What the benchmark prints.
#[derive(Debug)]
struct Report<'a> {
    cores: usize,
    threads: usize,
    provision_s: f64,
    catalog: &'a [String],
    plans: usize,
    cases: &'a [Case],
    proof: (u64, u64),
}

fn report(args: &ChecksArgs, r: &Report<'_>) -> Result<(), String> {
    if args.json {
        let cases: serde_json::Map<String, Value> =
            r.cases.iter().map(|c| (c.name.to_owned(), c.json())).collect();
        say!(
            "{}",
            json!({
                "bench": "checks",
                "tenants": args.tenants,
                "threads": r.threads,
                "cores": r.cores,
                "checks_per_thread": args.checks,
                "rules": args.rules,
                "rate_limited": args.rate,
                "catalog": r.catalog,
                "plans": r.plans,
                "cache_entries_max": CHECK_CACHE_ENTRIES_MAX,
                "uncached_actions": uncached_actions(),
                "provision_s": r.provision_s,
                "uncached_miss_proof": { "requests": r.proof.1, "hits": r.proof.0 },
                "cases": cases,
            })
        );
        return Ok(());
    }
    say!(
        "checks: {} tenants on {} plans{}, {} rules, {} threads on {} cores, {} checks per thread (provisioned in {:.2} s)",
        args.tenants,
        r.plans,
        if args.rate { " (every check rate limited)" } else { "" },
        args.rules,
        r.threads,
        r.cores,
        args.checks,
        r.provision_s
    );
    for c in r.cases {
        let ok =
            if c.counts == c.expected { "outcomes as expected" } else { "UNEXPECTED OUTCOMES" };
        say!(
            "  {:<30} {:>3} threads {:>9.1} ns/check {:>14.0} checks/s  ({ok})",
            c.name,
            c.threads,
            c.ns_per_check(),
            c.per_s()
        );
    }
    say!(
        "  uncached sequence on a {CHECK_CACHE_ENTRIES_MAX}-entry cache: {} hits in {} requests",
        r.proof.0,
        r.proof.1
    );
    Ok(())
}

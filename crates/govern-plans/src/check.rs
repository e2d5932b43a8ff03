//! The checks across plans and files, after every file's schema: duplicates and references
//! (schema), envelope and limit consistency, refusal codes, evidence. Rules: `docs/plans.md`.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{EvidenceId, Feature, PlanId, RefusalCode};
use crate::model::{Catalog, Evidence, Limit, LimitValue, Plan, Refusal, Upgrade};
use crate::parse::{At, FeatureSrc, FileSrc, Located, PlanSrc};
use crate::problem::{Check, Problem};

/// Adds problems with file names.
struct Out<'a> {
    files: &'a [String],
    problems: &'a mut Vec<Problem>,
}

impl Out<'_> {
    fn name(&self, at: At) -> &str {
        self.files.get(at.file).map_or("", String::as_str)
    }

    fn push(&mut self, check: Check, at: At, field: String, message: String, hint: String) {
        let file = self.name(at).to_owned();
        self.problems.push(Problem {
            file,
            line: at.line,
            column: at.column,
            field,
            message,
            hint,
            check,
        });
    }

    fn place(&self, at: At) -> String {
        format!("{}:{}:{}", self.name(at), at.line, at.column)
    }
}

/// Definitions of one kind (features, refusals, evidence) merged across files: the same id
/// defined twice is allowed only with the same definition; otherwise a problem at both places.
fn merge<K: Ord + Clone + std::fmt::Display, V: PartialEq + Clone>(
    out: &mut Out<'_>,
    section: &str,
    entries: Vec<(Located<K>, V)>,
) -> BTreeMap<K, (At, V)> {
    let mut merged: BTreeMap<K, (At, V)> = BTreeMap::new();
    let mut reported: BTreeSet<(usize, usize, usize)> = BTreeSet::new();
    for (id, value) in entries {
        match merged.get(&id.value) {
            None => {
                merged.insert(id.value, (id.at, value));
            }
            Some((first, existing)) if *existing != value => {
                let first = *first;
                for (here, there) in [(first, id.at), (id.at, first)] {
                    if reported.insert((here.file, here.line, here.column)) {
                        let place = out.place(there);
                        out.push(
                            Check::Schema,
                            here,
                            format!("{section}.{}", id.value),
                            format!("is defined differently at {place}"),
                            "define it once, or the same way in every file".into(),
                        );
                    }
                }
            }
            Some(_) => {}
        }
    }
    merged
}

/// The catalog from parsed files, or every problem.
pub(crate) fn check(
    files: &[String],
    parsed: Vec<FileSrc>,
    problems: &mut Vec<Problem>,
) -> Option<Catalog> {
    let mut out = Out { files, problems };
    // Version: every file the same.
    let versions: Vec<Located<String>> = parsed.iter().filter_map(|f| f.version.clone()).collect();
    if let Some(first) = versions.first() {
        for v in &versions[1..] {
            if v.value != first.value {
                let place = out.place(first.at);
                out.push(
                    Check::Schema,
                    v.at,
                    "version".into(),
                    format!("is `{}`, but {place} says `{}`", v.value, first.value),
                    "files of one catalog carry one version".into(),
                );
            }
        }
    }
    let mut features_in = Vec::new();
    let mut refusals_in = Vec::new();
    let mut evidence_in = Vec::new();
    let mut plans_in: Vec<PlanSrc> = Vec::new();
    for f in parsed {
        features_in.extend(f.features);
        refusals_in.extend(f.refusals);
        evidence_in.extend(f.evidence);
        plans_in.extend(f.plans);
    }
    let features: BTreeMap<Feature, (At, FeatureSrc)> = merge(
        &mut out,
        "features",
        features_in.into_iter().map(|(k, v)| (k, FeatureEq(v))).collect(),
    )
    .into_iter()
    .map(|(k, (at, v))| (k, (at, v.0)))
    .collect();
    let refusals: BTreeMap<RefusalCode, (At, Refusal)> = merge(&mut out, "refusals", refusals_in);
    let evidence: BTreeMap<EvidenceId, (At, Evidence)> = merge(&mut out, "evidence", evidence_in);

    // Plans: an id defined twice is a problem at each place.
    let mut by_id: BTreeMap<PlanId, Vec<usize>> = BTreeMap::new();
    for (i, p) in plans_in.iter().enumerate() {
        by_id.entry(p.id.value.clone()).or_default().push(i);
    }
    for (id, places) in &by_id {
        if places.len() > 1 {
            for &i in places {
                let others: Vec<String> = places
                    .iter()
                    .filter(|&&j| j != i)
                    .map(|&j| out.place(plans_in[j].id.at))
                    .collect();
                out.push(
                    Check::Schema,
                    plans_in[i].id.at,
                    format!("plans.{id}"),
                    format!("is defined again at {}", others.join(", ")),
                    "give each plan its own id across all the catalog's files".into(),
                );
            }
        }
    }
    let plan = |id: &PlanId| by_id.get(id).and_then(|v| v.first()).map(|&i| &plans_in[i]);

    // Refusal codes of features.
    for (id, (at, f)) in &features {
        if !refusals.contains_key(&f.def.refusal) {
            let default = if f.refusal_at == *at { DEFAULTED } else { "" };
            out.push(
                Check::Refusals,
                f.refusal_at,
                format!("features.{id}.refusal"),
                format!("the refusal `{}`{default} is not in the refusal table", f.def.refusal),
                refusal_hint(&f.def.refusal, 402),
            );
        }
    }

    // A metered feature's meter must be limited by some plan.
    for (id, (_, f)) in &features {
        if let (Some(meter), Some(at)) = (&f.def.meter, f.meter_at)
            && !plans_in.iter().any(|p| p.limits.iter().any(|l| &l.meter.value == meter))
        {
            out.push(
                Check::Schema,
                at,
                format!("features.{id}.meter"),
                format!("no plan has a limit on meter `{meter}`"),
                format!("add `{meter} = ...` to a plan's limits, or drop the feature's meter"),
            );
        }
    }

    for p in &plans_in {
        let pid = &p.id.value;
        for f in &p.features {
            if !features.contains_key(&f.value) {
                out.push(
                    Check::Schema,
                    f.at,
                    format!("plans.{pid}.features"),
                    format!("names the feature `{}`, which is not defined", f.value),
                    format!("define it: [features.{}] description = \"...\"", f.value),
                );
            }
        }
        for l in &p.limits {
            if !refusals.contains_key(&l.refusal.value) {
                let default = if l.refusal.at == l.meter.at { DEFAULTED } else { "" };
                out.push(
                    Check::Refusals,
                    l.refusal.at,
                    format!("plans.{pid}.limits.{}.refusal", l.meter.value),
                    format!(
                        "the refusal `{}`{default} is not in the refusal table",
                        l.refusal.value
                    ),
                    refusal_hint(&l.refusal.value, 429),
                );
            }
        }
        for u in &p.upgrades {
            let field = format!("plans.{pid}.upgrades[{}]", u.index);
            if let Some(r) = u.refusal.as_ref().filter(|r| !refusals.contains_key(&r.value)) {
                let default = if r.at == u.at { DEFAULTED } else { "" };
                out.push(
                    Check::Refusals,
                    r.at,
                    format!("{field}.refusal"),
                    format!("the refusal `{}`{default} is not in the refusal table", r.value),
                    refusal_hint(&r.value, 429),
                );
            }
            if u.to.value == *pid {
                out.push(
                    Check::Schema,
                    u.to.at,
                    format!("{field}.to"),
                    "is the plan itself".into(),
                    "an upgrade path leads to another plan".into(),
                );
            } else if let Some(target) = plan(&u.to.value) {
                consistency_along(&mut out, p, target, u.to.at, &format!("{field}.to"));
            } else {
                out.push(
                    Check::Schema,
                    u.to.at,
                    format!("{field}.to"),
                    format!("names the plan `{}`, which is not in the catalog", u.to.value),
                    "name a plan defined in one of the catalog's files".into(),
                );
            }
        }
        for e in &p.evidence {
            match evidence.get(&e.value) {
                None => out.push(
                    Check::Evidence,
                    e.at,
                    format!("plans.{pid}.evidence"),
                    format!("requires the evidence `{}`, which the catalog does not hold", e.value),
                    format!(
                        "add [evidence.{}] with a title and the document's path or URL",
                        e.value
                    ),
                ),
                Some((_, ev)) if ev.document.trim().is_empty() => out.push(
                    Check::Evidence,
                    e.at,
                    format!("plans.{pid}.evidence"),
                    format!("requires the evidence `{}`, which has no document", e.value),
                    format!(
                        "set `document` in [evidence.{}] to the document's path or URL",
                        e.value
                    ),
                ),
                Some(_) => {}
            }
        }
        // Within the plan: the rate limit fits in the envelope.
        if let (Some(env), Some(rps)) = (
            &p.envelope,
            p.limits.iter().find(|l| l.meter.value.as_str() == crate::Meter::REQUESTS_PER_SECOND),
        ) {
            if let LimitValue::Finite(n) = rps.value {
                if n > env.value.throughput_rps {
                    out.push(Check::Consistency, rps.meter.at, format!("plans.{pid}.limits.requests_per_second"), format!("allows {n} requests per second, more than the envelope's throughput_rps ({})", env.value.throughput_rps), "lower the limit, or raise the envelope's throughput_rps".into());
                }
            } else {
                out.push(
                    Check::Consistency,
                    rps.meter.at,
                    format!("plans.{pid}.limits.requests_per_second"),
                    format!(
                        "is unlimited, but the envelope promises {} requests per second",
                        env.value.throughput_rps
                    ),
                    "limit it to the envelope's throughput_rps or less".into(),
                );
            }
        }
    }

    if plans_in.is_empty() && out.problems.is_empty() {
        out.push(
            Check::Schema,
            At { file: 0, line: 1, column: 1 },
            "plans".into(),
            "the catalog has no plans".into(),
            "add a [plans.<id>] table".into(),
        );
    }
    if !out.problems.is_empty() {
        return None;
    }
    let mut plans = BTreeMap::new();
    for p in plans_in {
        plans.insert(p.id.value.clone(), into_plan(p)?);
    }
    Some(Catalog {
        version: versions.first().map(|v| v.value.clone()).unwrap_or_default(),
        plans,
        features: features.into_iter().map(|(k, (_, v))| (k, v.def)).collect(),
        refusals: refusals.into_iter().map(|(k, (_, v))| (k, v)).collect(),
        evidence: evidence.into_iter().map(|(k, (_, v))| (k, v)).collect(),
    })
}

/// Features compared by their definition only (not where their refusal was written).
#[derive(Clone)]
struct FeatureEq(FeatureSrc);

impl PartialEq for FeatureEq {
    fn eq(&self, other: &Self) -> bool {
        self.0.def == other.0.def
    }
}

/// Said of a refusal code the file does not name, when the default is missing.
const DEFAULTED: &str = " (the default here, as none is named)";

fn refusal_hint(code: &RefusalCode, status: u16) -> String {
    format!(
        "add [refusals.{code}] with `status = {status}` and a `message`, or name a code the table has"
    )
}

/// The consistency of an upgrade path `from` → `to`: the target is no lesser plan.
fn consistency_along(out: &mut Out<'_>, from: &PlanSrc, to: &PlanSrc, at: At, field: &str) {
    let (a, b) = (&from.id.value, &to.id.value);
    let mut say = |message: String, hint: String| {
        out.push(Check::Consistency, at, field.to_owned(), message, hint)
    };
    if let (Some(pa), Some(pb)) = (&from.price, &to.price)
        && pa.currency == pb.currency
        && pa.interval == pb.interval
        && pb.amount < pa.amount
    {
        say(
            format!("upgrades to `{b}`, which costs less ({pb} < {pa})"),
            format!("an upgrade costs at least as much; make `{b}` a downgrade, or fix a price"),
        );
    }
    for f in &from.features {
        if !to.features.iter().any(|g| g.value == f.value) {
            say(
                format!("upgrades to `{b}`, which lacks the feature `{}` that `{a}` has", f.value),
                format!("add `{}` to `{b}`'s features: an upgrade takes no feature away", f.value),
            );
        }
    }
    for la in &from.limits {
        let vb = to
            .limits
            .iter()
            .find(|l| l.meter.value == la.meter.value)
            .map_or(LimitValue::Unlimited, |l| l.value);
        if vb < la.value {
            say(
                format!(
                    "upgrades to `{b}`, whose {} limit ({vb}) is lower than `{a}`'s ({})",
                    la.meter.value, la.value
                ),
                format!("raise `{b}`'s {} to {} or more", la.meter.value, la.value),
            );
        }
    }
    match (&from.envelope, &to.envelope) {
        (Some(_), None) => {
            say(
                format!("upgrades to `{b}`, which has no envelope while `{a}` has one"),
                format!("give `{b}` an envelope at least as large as `{a}`'s"),
            );
        }
        (Some(ea), Some(eb)) => {
            let (ea, eb) = (&ea.value, &eb.value);
            for (name, va, vb) in [
                ("throughput_rps", ea.throughput_rps, eb.throughput_rps),
                ("connections", ea.connections, eb.connections),
                ("queue_depth", ea.queue_depth, eb.queue_depth),
            ] {
                if vb < va {
                    say(
                        format!(
                            "upgrades to `{b}`, whose envelope {name} ({vb}) is lower than `{a}`'s ({va})"
                        ),
                        format!(
                            "raise `{b}`'s envelope {name} to {va} or more, or drop this upgrade path"
                        ),
                    );
                }
            }
            if eb.p99_latency_ms > ea.p99_latency_ms {
                say(
                    format!(
                        "upgrades to `{b}`, whose envelope p99_latency_ms ({}) is slower than `{a}`'s ({})",
                        eb.p99_latency_ms, ea.p99_latency_ms
                    ),
                    format!(
                        "lower `{b}`'s p99_latency_ms to {} or less, or drop this upgrade path",
                        ea.p99_latency_ms
                    ),
                );
            }
            if eb.error_rate_max > ea.error_rate_max {
                say(
                    format!(
                        "upgrades to `{b}`, whose envelope error_rate_max ({}) is higher than `{a}`'s ({})",
                        eb.error_rate_max, ea.error_rate_max
                    ),
                    format!(
                        "lower `{b}`'s error_rate_max to {} or less, or drop this upgrade path",
                        ea.error_rate_max
                    ),
                );
            }
        }
        (None, _) => {}
    }
}

fn into_plan(p: PlanSrc) -> Option<Plan> {
    if !p.complete {
        return None;
    }
    Some(Plan {
        id: p.id.value,
        name: p.name?,
        price: p.price?,
        features: p.features.into_iter().map(|f| f.value).collect(),
        limits: p
            .limits
            .into_iter()
            .map(|l| {
                (l.meter.value, Limit { value: l.value, reset: l.reset, refusal: l.refusal.value })
            })
            .collect(),
        envelope: p.envelope.map(|e| e.value),
        upgrades: p
            .upgrades
            .into_iter()
            .map(|u| {
                Some(Upgrade { to: u.to.value, cooldown: u.cooldown?, refusal: u.refusal?.value })
            })
            .collect::<Option<Vec<_>>>()?,
        evidence: p.evidence.into_iter().map(|e| e.value).collect(),
        pricing: p.pricing.into_iter().map(|(m, pricing)| (m.value, pricing)).collect(),
    })
}

//! Plan changes: whether a catalog lets a tenant move from one plan to another
//! ([`can_upgrade`]), and a dry run of the move ([`simulate`]) through seed 002's five safety
//! gates, the path's cooldown and the downgrade preflight.
//!
//! Pure: the caller gathers every datum ([`PlanChangeInput`]: the plan in force, the target,
//! when the plan last changed and now, usage per meter, compliance, the host's headroom,
//! receipt state, SLA status); each gate reads only its own part of it, so a gate's verdict
//! depends on its data alone. Time is an argument, in milliseconds since the Unix epoch.
//! The rules and what each gate reads: `docs/plans.md`, "Plan changes".

mod gates;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::ids::{Meter, RefusalCode};
use crate::model::{Catalog, Envelope, LimitValue};

pub use gates::{
    certification_valid, clean_receipt_state, infrastructure_headroom, resource_availability,
    sla_compliance,
};

/// The most meters a [`PlanChangeInput`]'s usage names (the catalog's bound on one table).
pub const USAGE_METERS_MAX: usize = crate::ENTRIES_MAX;

/// Which way a plan change goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// Along an upgrade path of the plan in force (`[[plans.FROM.upgrades]] to = TO`).
    Upgrade,
    /// Back down a chain of upgrade paths: the target upgrades, in one or more steps, to the
    /// plan in force.
    Downgrade,
}

impl ChangeKind {
    /// Its name in receipts, the CLI and JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Upgrade => "upgrade",
            Self::Downgrade => "downgrade",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the catalog has no way from one plan to another.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// The plan in force is not in the catalog.
    #[error("the current plan `{0}` is not in the catalog")]
    UnknownFrom(String),
    /// The target is not in the catalog.
    #[error("the target plan `{0}` is not in the catalog")]
    UnknownTo(String),
    /// The target is the plan in force.
    #[error("the tenant is already on `{0}`")]
    SamePlan(String),
    /// Neither an upgrade path from the plan in force leads to the target, nor a chain of
    /// upgrade paths from the target to the plan in force.
    #[error(
        "no upgrade path leads from `{from}` to `{to}`, nor a chain of upgrades back from `{to}` to `{from}`"
    )]
    NoPath {
        /// The plan in force.
        from: String,
        /// The target.
        to: String,
    },
}

/// A way from one plan to another that the catalog allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangePath {
    /// Upgrade or downgrade.
    pub kind: ChangeKind,
    /// How long after the last plan change the move is refused: the upgrade path's cooldown;
    /// zero for a downgrade (the catalog states cooldowns on upgrade paths only).
    pub cooldown_ms: u64,
    /// The refusal an upgrade inside its cooldown gets; `None` for a downgrade.
    pub refusal: Option<RefusalCode>,
}

/// Whether `catalog` lets a tenant on `from` move to `to`, and how; or which rule refuses.
///
/// # Errors
/// [`PathRefusal`]: a plan not in the catalog, the same plan, or no path either way.
pub fn can_upgrade(catalog: &Catalog, from: &str, to: &str) -> Result<ChangePath, PathRefusal> {
    let Some(plan) = catalog.plan(from) else {
        return Err(PathRefusal::UnknownFrom(from.to_owned()));
    };
    if catalog.plan(to).is_none() {
        return Err(PathRefusal::UnknownTo(to.to_owned()));
    }
    if from == to {
        return Err(PathRefusal::SamePlan(from.to_owned()));
    }
    if let Some(u) = plan.upgrades.iter().find(|u| u.to.as_str() == to) {
        let cooldown_ms = u64::try_from(u.cooldown.as_millis()).unwrap_or(u64::MAX);
        return Ok(ChangePath {
            kind: ChangeKind::Upgrade,
            cooldown_ms,
            refusal: Some(u.refusal.clone()),
        });
    }
    if upgrades_reach(catalog, to, from) {
        return Ok(ChangePath { kind: ChangeKind::Downgrade, cooldown_ms: 0, refusal: None });
    }
    Err(PathRefusal::NoPath { from: from.to_owned(), to: to.to_owned() })
}

/// Whether a chain of upgrade paths leads from `start` to `goal`. Each plan is visited once,
/// so the walk is bounded by the catalog's plans and upgrade paths.
fn upgrades_reach(catalog: &Catalog, start: &str, goal: &str) -> bool {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<&str> = VecDeque::from([start]);
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        let Some(plan) = catalog.plan(id) else { continue };
        for u in &plan.upgrades {
            if u.to.as_str() == goal {
                return true;
            }
            queue.push_back(u.to.as_str());
        }
    }
    false
}

/// The tenant's compliance, as its compliance governor says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Certification {
    /// Certified, and the certification is in force.
    Valid,
    /// Not certified, expired or revoked; the text says which (the governor's state).
    Invalid(String),
    /// No compliance record for the tenant.
    Unknown,
}

/// Open receipts that a plan change must not cut across.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiptState {
    /// Payments that failed and were not settled since (billing in `failed` or `past_due`).
    pub failed_payments: u64,
    /// Payments under way (billing `pending` or `processing`).
    pub pending_payments: u64,
    /// Sagas of the tenant neither completed nor compensated.
    pub open_sagas: u64,
}

/// The tenant's service-level compliance against its plan's envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlaStatus {
    /// Measured and within the envelope.
    Compliant,
    /// Measured and outside the envelope; the text says how.
    Violating(String),
    /// Nothing measured (no SLA monitoring in this runtime, or no traffic yet).
    NoData,
}

/// What a plan change is simulated against: data the caller gathers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanChangeInput {
    /// The plan in force.
    pub from: String,
    /// The plan asked for.
    pub to: String,
    /// When the plan last changed, in ms since the epoch; `None`: never.
    pub plan_changed_at_ms: Option<u64>,
    /// Now, in ms since the epoch.
    pub now_ms: u64,
    /// Current usage per meter; a meter not named has used nothing. At most
    /// [`USAGE_METERS_MAX`] meters are read.
    pub usage: BTreeMap<Meter, u64>,
    /// Compliance (gate `certification_valid`).
    pub certification: Certification,
    /// The capacity the host states it can give this tenant; `None`: the host states none
    /// (gate `infrastructure_headroom`).
    pub headroom: Option<Envelope>,
    /// Open receipts; `None`: not known (gate `clean_receipt_state`).
    pub receipts: Option<ReceiptState>,
    /// SLA status (gate `sla_compliance`).
    pub sla: SlaStatus,
}

/// Seed 002's five gates, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gate {
    /// The tenant's certification is in force when the target requires evidence.
    CertificationValid,
    /// The host has room for the target's envelope.
    InfrastructureHeadroom,
    /// No failed or pending payment, no open saga.
    CleanReceiptState,
    /// The tenant is not violating its SLA.
    SlaCompliance,
    /// Current usage fits the target's limits (the downgrade preflight).
    ResourceAvailability,
}

impl Gate {
    /// Every gate, in the order they are reported.
    pub const ALL: [Self; 5] = [
        Self::CertificationValid,
        Self::InfrastructureHeadroom,
        Self::CleanReceiptState,
        Self::SlaCompliance,
        Self::ResourceAvailability,
    ];

    /// Its name, as seed 002 writes it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::CertificationValid => "certification_valid",
            Self::InfrastructureHeadroom => "infrastructure_headroom",
            Self::CleanReceiptState => "clean_receipt_state",
            Self::SlaCompliance => "sla_compliance",
            Self::ResourceAvailability => "resource_availability",
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A gate's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The gate lets the change through.
    Pass,
    /// The gate refuses the change.
    Fail,
    /// The gate has nothing to judge (no data, or nothing the target asks); it does not refuse.
    Skip,
}

impl Verdict {
    /// `pass`, `fail` or `skip`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One gate's verdict, why, and the data it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateReport {
    /// Which gate.
    pub gate: Gate,
    /// Its outcome.
    pub verdict: Verdict,
    /// Why, for people.
    pub reason: String,
    /// The data it read, by name, as text.
    pub data: BTreeMap<&'static str, String>,
}

/// One limit current usage is over (the downgrade preflight).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overage {
    /// The meter.
    pub meter: Meter,
    /// Its current usage.
    pub usage: u64,
    /// The target plan's limit on it.
    pub limit: u64,
}

/// The cooldown check: whether the path's cooldown since the last plan change has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cooldown {
    /// The path's cooldown.
    pub cooldown_ms: u64,
    /// When the plan last changed.
    pub plan_changed_at_ms: Option<u64>,
    /// When the move is allowed again, if it is refused now.
    pub until_ms: Option<u64>,
    /// The refusal code a move inside the cooldown gets (the path's).
    pub refusal: Option<RefusalCode>,
}

/// The reason that decides how a refused plan change is answered
/// ([`Simulation::deciding_refusal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecidingRefusal<'a> {
    /// The catalog has no way from the plan in force to the target (nothing else was judged).
    Path(&'a PathRefusal),
    /// The first failing gate; the dry run names every other.
    Gate(&'a GateReport),
    /// Only the cooldown refuses: the change is allowed from `until_ms`.
    Cooldown {
        /// When the cooldown ends, in ms since the epoch.
        until_ms: u64,
        /// The path's refusal code (`None`: the catalog's default, `upgrade_cooldown`).
        refusal: Option<&'a RefusalCode>,
    },
}

/// A dry run of a plan change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simulation {
    /// The plan in force.
    pub from: String,
    /// The target.
    pub to: String,
    /// The way the catalog allows, or why there is none.
    pub path: Result<ChangePath, PathRefusal>,
    /// The cooldown check (`None` when there is no path).
    pub cooldown: Option<Cooldown>,
    /// The five gates, in [`Gate::ALL`]'s order (empty when there is no path: nothing to gate).
    pub gates: Vec<GateReport>,
    /// The limits current usage is over, for the downgrade preflight (and an upgrade too: a
    /// target never lowers a limit along a valid path, but usage can pass the plan in force).
    pub overages: Vec<Overage>,
}

impl Simulation {
    /// Whether the change would be applied: a path, no cooldown in force, no gate failing.
    #[must_use]
    pub fn allowed(&self) -> bool {
        self.path.is_ok()
            && self.cooldown.as_ref().is_none_or(|c| c.until_ms.is_none())
            && self.gates.iter().all(|g| g.verdict != Verdict::Fail)
    }

    /// The kind of change, when there is a path.
    #[must_use]
    pub fn kind(&self) -> Option<ChangeKind> {
        self.path.as_ref().ok().map(|p| p.kind)
    }

    /// The one reason an answer to a refused change leads with (its status and code at the
    /// HTTP edge, `docs/http.md`, "Plan changes"), when several refuse: the path, then the
    /// first failing gate (in [`Gate::ALL`]'s order), then the cooldown. A cooldown decides
    /// only when nothing else refuses, because it is the one refusal that time alone lifts:
    /// telling a client when to retry while a gate fails would send it back to be refused
    /// again. `None` when the change is allowed.
    #[must_use]
    pub fn deciding_refusal(&self) -> Option<DecidingRefusal<'_>> {
        if let Err(e) = &self.path {
            return Some(DecidingRefusal::Path(e));
        }
        if let Some(g) = self.gates.iter().find(|g| g.verdict == Verdict::Fail) {
            return Some(DecidingRefusal::Gate(g));
        }
        match &self.cooldown {
            Some(c @ Cooldown { until_ms: Some(until_ms), .. }) => {
                Some(DecidingRefusal::Cooldown { until_ms: *until_ms, refusal: c.refusal.as_ref() })
            }
            _ => None,
        }
    }

    /// Every reason the change is refused, in order: the path, the cooldown, each failing gate.
    #[must_use]
    pub fn refusals(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = &self.path {
            out.push(e.to_string());
        }
        if let Some(Cooldown { until_ms: Some(until), cooldown_ms, refusal, .. }) = &self.cooldown {
            let code = refusal.as_ref().map_or("upgrade_cooldown", RefusalCode::as_str);
            out.push(format!(
                "{code}: the plan changed less than {cooldown_ms} ms ago; allowed from {until} ms"
            ));
        }
        for g in self.gates.iter().filter(|g| g.verdict == Verdict::Fail) {
            out.push(format!("{}: {}", g.gate, g.reason));
        }
        out
    }
}

/// Simulates the change `input` describes against `catalog`: the path, the cooldown, and the
/// five gates, each on its own data. Deterministic: the same input gives the same simulation.
#[must_use]
pub fn simulate(catalog: &Catalog, input: &PlanChangeInput) -> Simulation {
    let path = can_upgrade(catalog, &input.from, &input.to);
    let (Ok(p), Some(target)) = (&path, catalog.plan(&input.to)) else {
        return Simulation {
            from: input.from.clone(),
            to: input.to.clone(),
            path,
            cooldown: None,
            gates: Vec::new(),
            overages: Vec::new(),
        };
    };
    let until_ms = input
        .plan_changed_at_ms
        .map(|at| at.saturating_add(p.cooldown_ms))
        .filter(|until| input.now_ms < *until);
    let cooldown = Cooldown {
        cooldown_ms: p.cooldown_ms,
        plan_changed_at_ms: input.plan_changed_at_ms,
        until_ms,
        refusal: p.refusal.clone(),
    };
    let overages = gates::overages(target, &input.usage);
    let gates = vec![
        certification_valid(target, &input.certification),
        infrastructure_headroom(target, input.headroom.as_ref()),
        clean_receipt_state(input.receipts.as_ref()),
        sla_compliance(&input.sla),
        resource_availability(target, &input.usage),
    ];
    Simulation {
        from: input.from.clone(),
        to: input.to.clone(),
        path,
        cooldown: Some(cooldown),
        gates,
        overages,
    }
}

/// A finite limit's value; `None` for unlimited.
fn finite(v: LimitValue) -> Option<u64> {
    match v {
        LimitValue::Finite(n) => Some(n),
        LimitValue::Unlimited => None,
    }
}

#[cfg(test)]
mod tests;

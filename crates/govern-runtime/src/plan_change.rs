//! Plan changes through the runtime: gather what `govern_plans::simulate` judges (the catalog
//! in force, the subscription's plan and last plan change, usage, compliance, payments, sagas,
//! the host's stated capacity), run the dry run, and on apply send the receipted
//! `change_plan` when nothing refuses. The decision is `govern_plans`'; this module only reads
//! and sequences. `docs/plans.md`, "Plan changes".

mod refusal;

use std::collections::BTreeMap;

use govern_governors::subscription::{self, Command as SubCommand, PlanChangeKind};
use govern_governors::{Governor, GovernorKind, Reason, Request, ResourceId, StateSpec, TenantId};
use govern_ledger::LedgerError;
use govern_plans::{
    Certification, ChangeKind, Meter, PlanChangeInput, ReceiptState, Simulation, SlaStatus,
};

use crate::RuntimeHandle;
use crate::commercial::RATE_METER;
use crate::error::{Accepted, CommandError, Refusal};

pub use refusal::{PLAN_CHANGE_REFUSAL_CODES, PlanChangeRefusal};

/// Why a plan change could not be simulated or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanChangeError {
    /// The runtime was started without a plan catalog (`RuntimeBuilder::catalog`).
    #[error("the runtime has no plan catalog")]
    NoCatalog,
    /// The tenant has no subscription, or several and none was named.
    #[error("tenant {tenant} has {count} subscriptions; name one")]
    WhichSubscription {
        /// The tenant.
        tenant: TenantId,
        /// How many subscriptions its receipts name.
        count: usize,
    },
    /// The subscription is not active: only an active subscription changes plan.
    #[error("subscription {resource} is {state}, not active")]
    NotActive {
        /// The subscription.
        resource: ResourceId,
        /// Its state.
        state: &'static str,
    },
    /// The subscription has no plan yet.
    #[error("subscription {0} has no plan")]
    NoPlan(ResourceId),
    /// The path, the cooldown or a gate refuses; every reason, and the whole dry run.
    #[error("plan change refused: {}", reasons.join("; "))]
    Refused {
        /// Each reason (`Simulation::refusals`).
        reasons: Vec<String>,
        /// The reason that decides the answer (its code, status and, for a cooldown, when to
        /// retry), judged when the change was refused.
        refusal: PlanChangeRefusal,
        /// The dry run that refused.
        simulation: Box<Simulation>,
    },
    /// The runtime refused a read (shutting down, unknown tenant...).
    #[error(transparent)]
    Runtime(#[from] Refusal),
    /// A receipt could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The `change_plan` command itself was refused or rejected (the plan changed meanwhile).
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// A plan change applied: the dry run that allowed it and the receipt of `change_plan`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlanChangeApplied {
    /// The dry run.
    pub simulation: Simulation,
    /// The receipt.
    pub accepted: Accepted,
}

/// A compliance audit's last state that certifies, and those that count against it.
const COMPLIANT: &str = "compliant";
const NOT_COMPLIANT: [&str; 2] = ["non_compliant", "remediation_required"];
/// Billing states of a payment that failed or is contested, and of one under way.
const PAYMENT_FAILED: [&str; 2] = ["payment_failed", "payment_disputed"];
const PAYMENT_PENDING: [&str; 5] = [
    "payment_pending",
    "payment_authorized",
    "payment_processing",
    "refund_pending",
    "refund_processing",
];
/// Saga states of a run neither completed nor compensated.
const SAGA_OPEN: [&str; 4] = ["pending", "running", "compensating", "stuck"];

impl RuntimeHandle {
    /// The tenant's only subscription (the resource its subscription receipts name).
    ///
    /// # Errors
    /// [`PlanChangeError::WhichSubscription`] with none or several; a receipt unread.
    pub fn sole_subscription(&self, tenant: &TenantId) -> Result<ResourceId, PlanChangeError> {
        let last = self.last_states(tenant, GovernorKind::Subscription)?;
        let mut ids = last.into_keys();
        match (ids.next(), ids.next()) {
            (Some(only), None) => Ok(only),
            (first, _) => Err(PlanChangeError::WhichSubscription {
                tenant: tenant.clone(),
                count: usize::from(first.is_some()) * (2 + ids.count()),
            }),
        }
    }

    /// What a change of `subscription` to `to` is judged on, read now: the plan in force and
    /// when it last changed (the governor's state), usage per meter (`meter_usage`), the
    /// compliance audits', payments' and sagas' last states (the tenant's receipts of those
    /// kinds), the host's capacity (`RuntimeBuilder::host_capacity`), the SLA monitor's
    /// compliance (`sla_status`; no data without an envelope or traffic).
    ///
    /// # Errors
    /// [`PlanChangeError`]: not active, no plan, a refused read.
    pub async fn plan_change_input(
        &self,
        tenant: &TenantId,
        subscription: &ResourceId,
        to: &str,
    ) -> Result<PlanChangeInput, PlanChangeError> {
        self.plan_change_input_excluding(tenant, subscription, to, &[]).await
    }

    /// [`Self::plan_change_input`] with the resources in `exclude` left out of the clean
    /// receipt state: a saga run judging its own plan change does not count itself as an
    /// open saga, nor the payment its own steps requested as one under way.
    pub(crate) async fn plan_change_input_excluding(
        &self,
        tenant: &TenantId,
        subscription: &ResourceId,
        to: &str,
        exclude: &[(GovernorKind, ResourceId)],
    ) -> Result<PlanChangeInput, PlanChangeError> {
        let snap = self.subscription(tenant, subscription).snapshot().await?;
        let sub = snap.machine;
        if sub.state() != subscription::State::Active {
            return Err(PlanChangeError::NotActive {
                resource: subscription.clone(),
                state: sub.state().name(),
            });
        }
        let Some(from) = sub.plan() else {
            return Err(PlanChangeError::NoPlan(subscription.clone()));
        };
        let usage: BTreeMap<Meter, u64> = self
            .meter_usage(tenant)
            .meters
            .into_iter()
            .filter(|m| m.meter != RATE_METER)
            .filter_map(|m| Meter::new(&m.meter).ok().map(|id| (id, m.value)))
            .collect();
        Ok(PlanChangeInput {
            from: from.to_owned(),
            to: to.to_owned(),
            plan_changed_at_ms: sub.plan_changed_at().map(|t| t.as_ms()),
            now_ms: self.shared.clock.now().as_ms(),
            usage,
            certification: self.certification(tenant)?,
            headroom: self.shared.host_capacity,
            receipts: Some(self.receipt_state(tenant, exclude)?),
            sla: self.sla_input(tenant).await,
        })
    }

    /// The tenant's SLA compliance for the `sla_compliance` gate, from the runtime's SLA
    /// monitor (`sla_status`): no data when it has none (no envelope, no traffic yet, no
    /// catalog).
    async fn sla_input(&self, tenant: &TenantId) -> SlaStatus {
        use govern_plans::sla::Compliance;
        match self.sla_status(tenant).await {
            Ok(status) => match status.compliance {
                Compliance::Compliant => SlaStatus::Compliant,
                Compliance::NoData => SlaStatus::NoData,
                Compliance::Violating => {
                    let open: Vec<String> = status
                        .violations
                        .iter()
                        .map(|v| match v.measured {
                            Some(m) => format!("{} {m} against {}", v.dimension.name(), v.promised),
                            None => format!("{} against {}", v.dimension.name(), v.promised),
                        })
                        .collect();
                    SlaStatus::Violating(open.join(", "))
                }
            },
            Err(_) => SlaStatus::NoData,
        }
    }

    /// A dry run of changing `subscription` of `tenant` to the plan `to`: the catalog's path,
    /// the cooldown counted from the subscription's last plan change, and the five gates.
    /// Changes nothing.
    ///
    /// # Errors
    /// [`PlanChangeError`]: no catalog, not active, no plan, a refused read.
    pub async fn simulate_plan_change(
        &self,
        tenant: &TenantId,
        subscription: &ResourceId,
        to: &str,
    ) -> Result<Simulation, PlanChangeError> {
        self.simulate_plan_change_excluding(tenant, subscription, to, &[]).await
    }

    /// [`Self::simulate_plan_change`], leaving `exclude` out of the clean receipt state
    /// ([`Self::plan_change_input_excluding`]).
    pub(crate) async fn simulate_plan_change_excluding(
        &self,
        tenant: &TenantId,
        subscription: &ResourceId,
        to: &str,
        exclude: &[(GovernorKind, ResourceId)],
    ) -> Result<Simulation, PlanChangeError> {
        let Some(catalog) = self.catalog_in_force() else {
            return Err(PlanChangeError::NoCatalog);
        };
        let input = self.plan_change_input_excluding(tenant, subscription, to, exclude).await?;
        Ok(govern_plans::simulate(&catalog, &input))
    }

    /// Simulates the change and, when nothing refuses, sends the receipted `change_plan`
    /// (naming the plan in force as `previous`, so that a change that raced this one makes it
    /// rejected rather than applied twice).
    ///
    /// # Errors
    /// [`PlanChangeError::Refused`] with every reason (path, cooldown, failing gates) and the
    /// one that decides the answer ([`PlanChangeRefusal`]); the errors of
    /// [`Self::simulate_plan_change`]; the command's own refusal or rejection.
    pub async fn apply_plan_change(
        &self,
        tenant: &TenantId,
        subscription: &ResourceId,
        to: &str,
        reason: &str,
    ) -> Result<PlanChangeApplied, PlanChangeError> {
        self.apply_plan_change_as(tenant, subscription, to, reason, None, &[]).await
    }

    /// [`Self::apply_plan_change`] for a saga step: `exclude` left out of the clean receipt
    /// state, and the receipt carrying the step's idempotency `key`, by which a resumed run
    /// finds it applied.
    pub(crate) async fn apply_plan_change_as(
        &self,
        tenant: &TenantId,
        subscription: &ResourceId,
        to: &str,
        reason: &str,
        key: Option<&str>,
        exclude: &[(GovernorKind, ResourceId)],
    ) -> Result<PlanChangeApplied, PlanChangeError> {
        // As `simulate_plan_change`, keeping the input's now for a cooldown's retry time.
        let Some(catalog) = self.catalog_in_force() else {
            return Err(PlanChangeError::NoCatalog);
        };
        let input = self.plan_change_input_excluding(tenant, subscription, to, exclude).await?;
        let simulation = govern_plans::simulate(&catalog, &input);
        let kind = match PlanChangeRefusal::judge(&simulation, &catalog, input.now_ms) {
            Ok(kind) => kind,
            Err(refusal) => {
                return Err(PlanChangeError::Refused {
                    reasons: simulation.refusals(),
                    refusal,
                    simulation: Box::new(simulation),
                });
            }
        };
        let command = SubCommand::ChangePlan {
            plan: simulation.to.clone(),
            previous: simulation.from.clone(),
            kind: match kind {
                ChangeKind::Upgrade => PlanChangeKind::Upgrade,
                ChangeKind::Downgrade => PlanChangeKind::Downgrade,
            },
        };
        let reason =
            Reason::new(reason).map_err(|e| crate::handle::reason_rejection("change_plan", &e))?;
        let mut request = Request::new(command, reason);
        if let Some(key) = key {
            request.metadata.insert(crate::IDEMPOTENCY_KEY, key).map_err(|e| {
                PlanChangeError::Runtime(Refusal::BadSaga {
                    problem: format!("idempotency key: {}", e.expected()),
                })
            })?;
        }
        // `change_plan` is reserved to the runtime: hosts reach it only through here.
        let accepted = self.subscription(tenant, subscription).send_runtime(request).await?;
        Ok(PlanChangeApplied { simulation, accepted })
    }

    /// The last state of each resource of `kind` of `tenant`, from its receipts.
    fn last_states(
        &self,
        tenant: &TenantId,
        kind: GovernorKind,
    ) -> Result<BTreeMap<ResourceId, String>, LedgerError> {
        let mut last = BTreeMap::new();
        for r in self.receipts(tenant, Some(kind), None)? {
            last.insert(r.body.resource, r.body.state_to.into_owned());
        }
        Ok(last)
    }

    /// The tenant's certification: invalid when an audit's last state is non-compliant or
    /// requires remediation, valid when some audit concluded compliant, unknown with none.
    fn certification(&self, tenant: &TenantId) -> Result<Certification, LedgerError> {
        let last = self.last_states(tenant, GovernorKind::Compliance)?;
        if last.is_empty() {
            return Ok(Certification::Unknown);
        }
        let bad: Vec<String> = last
            .iter()
            .filter(|(_, s)| NOT_COMPLIANT.contains(&s.as_str()))
            .map(|(r, s)| format!("{r}: {s}"))
            .collect();
        if !bad.is_empty() {
            return Ok(Certification::Invalid(bad.join(", ")));
        }
        if last.values().any(|s| s == COMPLIANT) {
            return Ok(Certification::Valid);
        }
        let open: Vec<String> = last.iter().map(|(r, s)| format!("{r}: {s}")).collect();
        Ok(Certification::Invalid(format!("no audit concluded compliant ({})", open.join(", "))))
    }

    /// Payments failed or under way, and sagas still open, from their last states; the
    /// resources in `exclude` are left out.
    fn receipt_state(
        &self,
        tenant: &TenantId,
        exclude: &[(GovernorKind, ResourceId)],
    ) -> Result<ReceiptState, LedgerError> {
        let count = |states: &BTreeMap<ResourceId, String>, of: &[&str]| {
            states.values().filter(|s| of.contains(&s.as_str())).count() as u64
        };
        let without = |kind: GovernorKind, mut states: BTreeMap<ResourceId, String>| {
            for (k, r) in exclude {
                if *k == kind {
                    states.remove(r);
                }
            }
            states
        };
        let billing =
            without(GovernorKind::Billing, self.last_states(tenant, GovernorKind::Billing)?);
        let sagas = without(GovernorKind::Saga, self.last_states(tenant, GovernorKind::Saga)?);
        Ok(ReceiptState {
            failed_payments: count(&billing, &PAYMENT_FAILED),
            pending_payments: count(&billing, &PAYMENT_PENDING),
            open_sagas: count(&sagas, &SAGA_OPEN),
        })
    }
}

/// A dry run as JSON, the shape `govern upgrade --json` and `govern serve`'s plan-change
/// routes print: `from`, `to`, `kind` (or null), `allowed`, `refusals`, `path_refusal`,
/// `cooldown` (`cooldown_ms`, `plan_changed_at_ms`, `until_ms`, `refusal`), `gates` (each
/// `gate`, `verdict`, `reason`, `data`), `overages` (each `meter`, `usage`, `limit`).
#[must_use]
pub fn simulation_json(s: &Simulation) -> serde_json::Value {
    use serde_json::json;
    let gates: Vec<serde_json::Value> = s
        .gates
        .iter()
        .map(|g| {
            json!({
                "gate": g.gate.name(),
                "verdict": g.verdict.name(),
                "reason": g.reason,
                "data": g.data,
            })
        })
        .collect();
    let overages: Vec<serde_json::Value> = s
        .overages
        .iter()
        .map(|o| json!({ "meter": o.meter.as_str(), "usage": o.usage, "limit": o.limit }))
        .collect();
    json!({
        "from": s.from,
        "to": s.to,
        "kind": s.kind().map(ChangeKind::name),
        "allowed": s.allowed(),
        "refusals": s.refusals(),
        "path_refusal": s.path.as_ref().err().map(ToString::to_string),
        "cooldown": s.cooldown.as_ref().map(|c| json!({
            "cooldown_ms": c.cooldown_ms,
            "plan_changed_at_ms": c.plan_changed_at_ms,
            "until_ms": c.until_ms,
            "refusal": c.refusal.as_ref().map(|r| r.as_str()),
        })),
        "gates": gates,
        "overages": overages,
    })
}

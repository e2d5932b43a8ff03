//! Running a scenario through the real runtime: supervised governor actors, the tenant
//! registry and the durable ledger in a data directory, on tokio's paused clock.
//!
//! The caller provides the tokio runtime: a current-thread one with paused time
//! ([`run_blocking`] builds it), so that `advance` moves the clock exactly and every decision
//! time is the scenario's; two runs of the same file give byte-identical receipts.

use std::collections::BTreeMap;
use std::path::Path;

use govern_governors::{
    Governor, GovernorKind, ResourceId, StateSpec, TenantId, Timestamp, account, audit, billing,
    catalog, compliance, entitlement, quota, saga, subscription, tenant,
};
use govern_receipt::{Digest, Head, Receipt};
use govern_runtime::{CrashPoint, Hosted, Outcome, RawCommand, Refusal, Runtime, RuntimeHandle};

use crate::spec::{Action, Expect, Scenario, Step, Target, TenantSpec};

/// How a step came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// A command was accepted: its receipt.
    Accepted {
        /// The state before.
        from: &'static str,
        /// The state after.
        to: &'static str,
        /// The receipt's sequence number.
        seq: u64,
        /// The receipt's hash.
        hash: Digest,
    },
    /// A command was refused.
    Refused {
        /// The stable code.
        code: &'static str,
        /// The HTTP status.
        status: u16,
        /// When to retry, in seconds (a 429 that says).
        retry_after: Option<u64>,
        /// The message.
        message: String,
    },
    /// The clock moved; these timeouts were decided and receipted meanwhile.
    Advanced {
        /// What the clock reads now.
        now: Timestamp,
        /// The receipts the state timeouts left.
        fired: Vec<Receipt>,
    },
    /// A crash was injected now, and the governor answered again afterwards: its supervisor
    /// restarted it and it replayed its receipts.
    Crashed {
        /// The state it replayed to.
        state: &'static str,
    },
    /// A crash was injected now, and it was one too many: the governor is quarantined (its
    /// commands refused `governor_unavailable` for this long) instead of restarted at once.
    Quarantined {
        /// How long the quarantine lasts, in milliseconds.
        retry_after_ms: u64,
    },
    /// A `usage` step counted its event.
    Counted {
        /// The meter's value after it.
        value: u64,
        /// The meter's quota governor's state after it.
        quota: &'static str,
    },
    /// A `usage` step's event was a duplicate: nothing changed.
    Duplicate,
    /// A plan-change step ran its dry run (and, when applied, wrote `change_plan`).
    PlanChanged {
        /// `upgrade`, `downgrade`, or `None` without a path.
        kind: Option<&'static str>,
        /// Whether the dry run allows the change.
        allowed: bool,
        /// The `change_plan` receipt, when applied.
        applied: Option<u64>,
        /// Each gate and its verdict, in order.
        gates: Vec<(&'static str, &'static str)>,
        /// Every reason it is refused.
        refusals: Vec<String>,
        /// Whether the step asked to apply.
        apply: bool,
        /// An apply's refusal as `govern serve` answers it (its code and status).
        refusal: Option<govern_runtime::PlanChangeRefusal>,
    },
    /// A `close_period` step closed a month (or found it closed).
    Invoiced {
        /// The invoice's total.
        total: String,
        /// Its currency.
        currency: String,
        /// Its lines.
        lines: usize,
        /// The `record_invoice` receipt.
        seq: u64,
        /// Whether this step closed it.
        closed_now: bool,
    },
    /// Saga runs ended (a `saga` step: its run; `resume_sagas`: each resumed run): run,
    /// end (`completed`, `compensated`, `stuck`, or `crashed`) and why.
    SagaEnded {
        /// (run, end, note).
        ends: Vec<(String, &'static str, String)>,
    },
    /// An `entitled` check allowed.
    Allowed {
        /// What decided it (`plan_feature:forecast`, `grant:g-1 (manual)`, ...).
        decided_by: String,
    },
    /// A crash was armed: the governor panics right after its next receipt is written.
    CrashArmed,
    /// The runtime was restarted on its data directory; the ledger's head.
    Restarted {
        /// The head it continued from.
        head: Head,
    },
    /// The chain verified.
    Verified {
        /// Its head.
        head: Head,
    },
    /// A governor's state was read.
    State {
        /// The state's name.
        state: &'static str,
    },
    /// The step could not be carried out (the runtime failed).
    Failed {
        /// Why.
        message: String,
    },
}

/// One step's outcome and how its expectations fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// 1-based.
    pub index: usize,
    /// The step.
    pub step: Step,
    /// What happened.
    pub outcome: StepOutcome,
    /// Expectations met.
    pub met: usize,
    /// Expectations not met: what was expected and what happened.
    pub failed: Vec<String>,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The scenario's name.
    pub name: String,
    /// Every step.
    pub steps: Vec<StepReport>,
    /// Expectations on the whole run that were not met.
    pub run_failed: Vec<String>,
    /// Expectations on the whole run that were met.
    pub run_met: usize,
    /// Receipts per tenant at the end.
    pub receipts: Vec<(TenantId, u64)>,
    /// The ledger's head after shutdown.
    pub head: Head,
    /// The offline verification of the data directory (`govern verify`'s check), or why it
    /// failed.
    pub verified: Result<u64, String>,
}

impl RunReport {
    /// Expectations met, over the steps and the run.
    #[must_use]
    pub fn met(&self) -> usize {
        self.steps.iter().map(|s| s.met).sum::<usize>() + self.run_met
    }

    /// Expectations failed, over the steps and the run.
    #[must_use]
    pub fn failed(&self) -> usize {
        self.steps.iter().map(|s| s.failed.len()).sum::<usize>() + self.run_failed.len()
    }

    /// Whether every expectation held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failed() == 0
    }
}

/// Why a run could not start or finish (as opposed to an expectation that failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The runtime could not start or stop.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The data directory already holds a ledger.
    #[error("{0} already holds a ledger; a scenario starts from an empty data directory")]
    NotEmpty(String),
    /// The tokio runtime could not be built.
    #[error("tokio: {0}")]
    Tokio(String),
}

/// What a run reports as it goes, in order.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// The runtime started on an empty data directory and every declared tenant is
    /// provisioned and active (sent once, before the first step, even with no tenants).
    Provisioned(&'a [TenantSpec]),
    /// A step ran.
    Step(&'a StepReport),
}

/// Runs `scenario` on a current-thread tokio runtime with paused time, with its ledger in
/// `data_dir` (which must not hold a ledger), reporting every [`Progress`] to `observe` as
/// it goes.
///
/// # Errors
/// [`RunError`] when the run cannot start or the runtime fails to stop.
pub fn run_blocking(
    scenario: &Scenario,
    data_dir: &Path,
    observe: &mut dyn FnMut(Progress<'_>),
) -> Result<RunReport, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| RunError::Tokio(e.to_string()))?;
    rt.block_on(run(scenario, data_dir, observe))
}

async fn start(
    data_dir: &Path,
    epoch: Timestamp,
    catalog: Option<&govern_plans::Catalog>,
) -> Result<Runtime, RunError> {
    // Unfinished sagas are resumed by a `resume_sagas` step, at a moment the file decides.
    let mut builder =
        Runtime::builder().epoch(epoch).data_dir(data_dir).resume_sagas_at_start(false);
    if let Some(catalog) = catalog {
        builder = builder.catalog(catalog.clone());
    }
    builder.start().await.map_err(|e| RunError::Runtime(e.to_string()))
}

/// Runs `scenario` (see [`run_blocking`]); the caller's tokio runtime must have paused time.
///
/// # Errors
/// As [`run_blocking`].
pub async fn run(
    scenario: &Scenario,
    data_dir: &Path,
    observe: &mut dyn FnMut(Progress<'_>),
) -> Result<RunReport, RunError> {
    let mut runtime = start(data_dir, scenario.start, scenario.catalog.as_ref()).await?;
    if runtime.handle().head().next_seq != 0 {
        let _ = runtime.shutdown().await;
        return Err(RunError::NotEmpty(data_dir.display().to_string()));
    }
    for t in &scenario.tenants {
        runtime
            .handle()
            .provision_tenant(&t.id, t.quota, "scenario: tenant provisioned")
            .await
            .map_err(|e| RunError::Runtime(format!("provisioning tenant {}: {e}", t.id)))?;
    }
    observe(Progress::Provisioned(&scenario.tenants));
    let mut steps = Vec::with_capacity(scenario.steps.len());
    for (i, step) in scenario.steps.iter().enumerate() {
        let outcome = match &step.action {
            Action::Restart => {
                let now = runtime.handle().now();
                match runtime.shutdown().await {
                    Ok(_) => {}
                    Err(e) => return Err(RunError::Runtime(format!("restart: {e}"))),
                }
                runtime = start(data_dir, now, scenario.catalog.as_ref()).await?;
                StepOutcome::Restarted { head: runtime.handle().head() }
            }
            action => perform(&runtime.handle(), action).await,
        };
        let (met, failed) = judge(&step.expect, &outcome);
        let report = StepReport { index: i + 1, step: step.clone(), outcome, met, failed };
        observe(Progress::Step(&report));
        steps.push(report);
    }
    let h = runtime.handle();
    let receipts = h.receipt_counts();
    let mut run_failed = Vec::new();
    let mut run_met = 0;
    match h.verify() {
        Ok(_) => run_met += 1,
        Err(e) => run_failed.push(format!("the chain does not verify: {e}")),
    }
    let counts: BTreeMap<&TenantId, u64> = receipts.iter().map(|(t, n)| (t, *n)).collect();
    for (tenant, want) in &scenario.expect.receipts {
        let got = counts.get(tenant).copied().unwrap_or(0);
        if got == *want {
            run_met += 1;
        } else {
            run_failed.push(format!("tenant {tenant}: expected {want} receipts, got {got}"));
        }
    }
    let head = runtime.shutdown().await.map_err(|e| RunError::Runtime(e.to_string()))?;
    let verified = match govern_ledger::verify::verify_dir(data_dir) {
        Ok(report) if report.head == head => Ok(report.receipts),
        Ok(report) => Err(format!(
            "the directory holds {} receipts, the runtime acknowledged {}",
            report.receipts, head.next_seq
        )),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = &verified {
        run_failed.push(format!("the data directory does not verify: {e}"));
    }
    Ok(RunReport {
        name: scenario.name.clone(),
        steps,
        run_failed,
        run_met,
        receipts,
        head,
        verified,
    })
}

async fn perform(h: &RuntimeHandle, action: &Action) -> StepOutcome {
    match action {
        Action::Command { target, name, args, reason, metadata } => {
            let raw = RawCommand {
                tenant: target.tenant.clone(),
                kind: target.kind,
                resource: target.resource.clone(),
                name: name.clone(),
                args: args.clone(),
                reason: reason.clone(),
                metadata: metadata.clone(),
            };
            outcome(h.command(raw).await)
        }
        Action::Advance { by, .. } => {
            let before = h.head().next_seq;
            tokio::time::advance(*by).await;
            h.fire_due_timeouts().await;
            let mut fired: Vec<Receipt> = Vec::new();
            // Every tenant with receipts, declared or provisioned by the steps themselves.
            for (t, _) in h.receipt_counts() {
                if let Ok(receipts) = h.receipts(&t, None, None) {
                    fired.extend(receipts.into_iter().filter(|r| r.seq >= before));
                }
            }
            fired.sort_by_key(|r| r.seq);
            StepOutcome::Advanced { now: h.now(), fired }
        }
        Action::Crash { target, point } => {
            if let Err(e) =
                h.inject_crash(&target.tenant, target.kind, &target.resource, *point).await
            {
                return StepOutcome::Failed { message: format!("no crash injected: {e}") };
            }
            match point {
                // The read is queued behind the crash: it is answered only once the governor
                // has been restarted and has replayed, or refused when nothing restarts it
                // (the supervision tree gave up and the runtime is down).
                CrashPoint::Now => match state_of(h, target).await {
                    Ok(state) => StepOutcome::Crashed { state },
                    Err(Refusal::GovernorUnavailable { retry_after_ms: Some(ms), .. }) => {
                        StepOutcome::Quarantined { retry_after_ms: ms }
                    }
                    Err(e) => StepOutcome::Failed {
                        message: format!("crashed and was not restarted: {e}"),
                    },
                },
                _ => StepOutcome::CrashArmed,
            }
        }
        Action::Verify => match h.verify() {
            Ok(head) => StepOutcome::Verified { head },
            Err(e) => StepOutcome::Failed { message: format!("the chain does not verify: {e}") },
        },
        Action::Entitled { tenant, feature, action, quantity } => {
            let decision = h.check(tenant, feature, action, *quantity);
            // A refusal's audit record is queued at the tenant's audit governor: wait for it
            // to be taken, so that a run's receipts do not depend on scheduling.
            let _ = h.audit(tenant).snapshot().await;
            match decision {
                Ok(d) => match d.refusal() {
                    None => StepOutcome::Allowed { decided_by: d.decided_by().to_string() },
                    Some(r) => StepOutcome::Refused {
                        code: r.code,
                        status: r.status,
                        retry_after: r.retry_after_secs,
                        message: format!("{} (decided by {})", r.message, r.decided_by),
                    },
                },
                Err(e) => StepOutcome::Refused {
                    code: e.code(),
                    status: e.http_status(),
                    retry_after: None,
                    message: e.to_string(),
                },
            }
        }
        Action::ClosePeriod { tenant, period } => {
            let method = govern_governors::billing::PaymentMethod::Card;
            match h.close_period(tenant, period, method).await {
                Ok(c) => StepOutcome::Invoiced {
                    total: c.total.to_string(),
                    currency: c.currency,
                    lines: c.lines.len(),
                    seq: c.record_seq,
                    closed_now: c.closed_now,
                },
                Err(e) => StepOutcome::Refused {
                    code: e.code(),
                    status: e.http_status(),
                    retry_after: None,
                    message: e.to_string(),
                },
            }
        }
        Action::Usage { tenant, meter, quantity, event } => {
            match h.record_usage(tenant, meter, *quantity, event, h.now()).await {
                Ok(govern_runtime::UsageRecorded::Duplicate) => StepOutcome::Duplicate,
                Ok(govern_runtime::UsageRecorded::Counted { value, quota, .. }) => {
                    StepOutcome::Counted { value, quota }
                }
                Ok(_) => StepOutcome::Failed { message: "an unknown usage outcome".into() },
                Err(e) => StepOutcome::Refused {
                    code: e.code(),
                    status: e.http_status(),
                    retry_after: None,
                    message: e.to_string(),
                },
            }
        }
        Action::PlanChange { tenant, to, subscription, apply } => {
            plan_change(h, tenant, to, subscription.as_ref(), *apply).await
        }
        Action::Saga { tenant, run, saga, params, fail_step, crash_after } => {
            let params = params.iter().cloned().collect();
            let faults = govern_runtime::SagaFaults {
                fail_step: *fail_step,
                crash_after_records: *crash_after,
            };
            match h.run_saga_with_faults(tenant, run, saga, &params, faults).await {
                Ok(end) => {
                    StepOutcome::SagaEnded { ends: vec![saga_end(run.as_str(), end.as_ref())] }
                }
                Err(e) => StepOutcome::Refused {
                    code: e.code(),
                    status: e.http_status(),
                    retry_after: None,
                    message: e.to_string(),
                },
            }
        }
        Action::ResumeSagas => {
            let mut ends = Vec::new();
            for (_, run, end) in h.resume_sagas().await {
                match end {
                    Ok(end) => ends.push(saga_end(run.as_str(), Some(&end))),
                    Err(e) => return StepOutcome::Failed { message: format!("{run}: {e}") },
                }
            }
            StepOutcome::SagaEnded { ends }
        }
        Action::Check { target } => match state_of(h, target).await {
            Ok(state) => StepOutcome::State { state },
            Err(e) => StepOutcome::Failed { message: e.to_string() },
        },
        Action::Restart => StepOutcome::Failed { message: "restart is run by the caller".into() },
    }
}

/// A plan-change step: the dry run (and, for apply, the receipt), a refused apply as its dry
/// run with no receipt, or the runtime's refusal.
async fn plan_change(
    h: &RuntimeHandle,
    tenant: &TenantId,
    to: &str,
    subscription: Option<&ResourceId>,
    apply: bool,
) -> StepOutcome {
    use govern_runtime::PlanChangeError as E;
    let refused = |code: &'static str, status: u16, e: &E| StepOutcome::Refused {
        code,
        status,
        retry_after: None,
        message: e.to_string(),
    };
    let sub = match subscription {
        Some(s) => s.clone(),
        None => match h.sole_subscription(tenant) {
            Ok(s) => s,
            Err(e) => return refused("which_subscription", 400, &e),
        },
    };
    let result = if apply {
        h.apply_plan_change(tenant, &sub, to, "scenario step")
            .await
            .map(|a| (a.simulation, Some(a.accepted.seq)))
    } else {
        h.simulate_plan_change(tenant, &sub, to).await.map(|s| (s, None))
    };
    let (simulation, seq, refusal) = match result {
        Ok((simulation, seq)) => (simulation, seq, None),
        Err(E::Refused { simulation, refusal, .. }) => (*simulation, None, Some(refusal)),
        Err(E::Command(c)) => {
            return StepOutcome::Refused {
                code: c.code(),
                status: c.http_status(),
                retry_after: None,
                message: c.to_string(),
            };
        }
        Err(E::Runtime(r)) => {
            let c = govern_runtime::CommandError::Refused(r);
            return StepOutcome::Refused {
                code: c.code(),
                status: c.http_status(),
                retry_after: None,
                message: c.to_string(),
            };
        }
        Err(e @ (E::NotActive { .. } | E::NoPlan(_))) => return refused("not_active", 409, &e),
        Err(e) => return StepOutcome::Failed { message: e.to_string() },
    };
    StepOutcome::PlanChanged {
        kind: simulation.kind().map(govern_plans::ChangeKind::name),
        allowed: simulation.allowed(),
        applied: seq,
        gates: simulation.gates.iter().map(|g| (g.gate.name(), g.verdict.name())).collect(),
        refusals: simulation.refusals(),
        apply,
        refusal,
    }
}

/// A saga run's end as a step reports it; `None`: the coordinator crashed (injected).
fn saga_end(run: &str, end: Option<&govern_runtime::SagaEnd>) -> (String, &'static str, String) {
    use govern_runtime::SagaEnd;
    let (state, note) = match end {
        None => ("crashed", String::new()),
        Some(SagaEnd::Completed) => ("completed", String::new()),
        Some(SagaEnd::Compensated { step, failure }) => {
            ("compensated", format!("step {step} failed: {failure}"))
        }
        Some(SagaEnd::Stuck { failure }) => ("stuck", failure.clone()),
        Some(_) => ("unknown", String::new()),
    };
    (run.to_owned(), state, note)
}

fn outcome(result: Outcome) -> StepOutcome {
    match result {
        Ok(a) => StepOutcome::Accepted { from: a.from, to: a.to, seq: a.seq, hash: a.hash },
        Err(e) => StepOutcome::Refused {
            code: e.code(),
            status: e.http_status(),
            retry_after: None,
            message: e.to_string(),
        },
    }
}

async fn state_name<G: Hosted>(
    h: &RuntimeHandle,
    tenant: &TenantId,
    resource: &ResourceId,
) -> Result<&'static str, Refusal> {
    h.governor::<G>(tenant, resource).state().await.map(|s: <G as Governor>::State| s.name())
}

async fn state_of(h: &RuntimeHandle, t: &Target) -> Result<&'static str, Refusal> {
    let (tenant, r) = (&t.tenant, &t.resource);
    match t.kind {
        GovernorKind::Entitlement => state_name::<entitlement::Entitlement>(h, tenant, r).await,
        GovernorKind::Billing => state_name::<billing::Billing>(h, tenant, r).await,
        GovernorKind::Catalog => state_name::<catalog::Product>(h, tenant, r).await,
        GovernorKind::Subscription => state_name::<subscription::Subscription>(h, tenant, r).await,
        GovernorKind::Account => state_name::<account::Account>(h, tenant, r).await,
        GovernorKind::Quota => state_name::<quota::Quota>(h, tenant, r).await,
        GovernorKind::Compliance => state_name::<compliance::Audit>(h, tenant, r).await,
        GovernorKind::Tenant => state_name::<tenant::Tenant>(h, tenant, r).await,
        GovernorKind::Audit => state_name::<audit::Trail>(h, tenant, r).await,
        GovernorKind::Saga => state_name::<saga::Saga>(h, tenant, r).await,
    }
}

/// Checks a step's outcome against its expectations: (met, failures).
fn judge(expect: &Expect, outcome: &StepOutcome) -> (usize, Vec<String>) {
    let mut met = 0;
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: String| {
        if ok {
            met += 1;
        } else {
            failed.push(what);
        }
    };
    match outcome {
        StepOutcome::Failed { message } => {
            check(false, format!("the step failed: {message}"));
            return (met, failed);
        }
        StepOutcome::Accepted { to, .. } => {
            if let Some(code) = &expect.refused {
                check(false, format!("expected refused {code}, got accepted ({to})"));
            }
            if let Some(state) = &expect.state {
                check(to == state, format!("expected state {state}, got {to}"));
            }
            if let Some(status) = expect.status {
                check(status == 200, format!("expected status {status}, got 200 (accepted)"));
            }
            if expect.is_empty() {
                met += 1; // accepted, as a command without expectations must be
            }
        }
        StepOutcome::Allowed { decided_by } => {
            if let Some(code) = &expect.refused {
                check(false, format!("expected refused {code}, got allowed by {decided_by}"));
            }
            if let Some(allowed) = expect.allowed {
                check(allowed, format!("expected a refusal, got allowed by {decided_by}"));
            }
            if let Some(status) = expect.status {
                check(status == 200, format!("expected status {status}, got 200 (allowed)"));
            }
            if expect.is_empty() {
                met += 1;
            }
        }
        StepOutcome::Refused { code, status, retry_after, message } => {
            if let Some(want) = expect.retry_after {
                check(
                    Some(want) == *retry_after,
                    format!("expected retry-after {want} s, got {retry_after:?}"),
                );
            }
            if expect.value.is_some() || expect.quota.is_some() || expect.duplicate.is_some() {
                check(false, format!("expected usage counted, got refused {code}: {message}"));
            }
            if let Some(want) = &expect.saga {
                check(false, format!("expected the saga {want}, got refused {code}: {message}"));
            }
            if expect.allowed == Some(true) {
                check(false, format!("expected allowed, got refused {code}: {message}"));
            }
            if expect.allowed == Some(false) && expect.refused.is_none() {
                check(true, String::new());
            }
            if let Some(want) = &expect.refused {
                check(want == code, format!("expected refused {want}, got refused {code}"));
            }
            if let Some(want) = expect.status {
                check(want == *status, format!("expected status {want}, got {status} ({code})"));
            }
            if let Some(state) = &expect.state {
                check(false, format!("expected state {state}, got refused {code}: {message}"));
            }
            if expect.is_empty() {
                check(
                    false,
                    format!("expected accepted, got refused {code} ({status}): {message}"),
                );
            }
        }
        StepOutcome::Advanced { fired, .. } => {
            let accepted = fired.len();
            match expect.timeouts {
                Some(want) => check(
                    want == accepted,
                    format!("expected {want} state timeouts, got {accepted}"),
                ),
                None => met += 1,
            }
        }
        StepOutcome::Counted { value, quota } => {
            if let Some(code) = &expect.refused {
                check(false, format!("expected refused {code}, got counted ({value})"));
            }
            if let Some(want) = expect.value {
                check(want == *value, format!("expected value {want}, got {value}"));
            }
            if let Some(want) = &expect.quota {
                check(want == quota, format!("expected quota {want}, got {quota}"));
            }
            if let Some(want) = expect.duplicate {
                check(!want, "expected a duplicate, got counted".into());
            }
            if expect.is_empty() {
                met += 1;
            }
        }
        StepOutcome::SagaEnded { ends } => {
            if let Some(code) = &expect.refused {
                check(false, format!("expected refused {code}, got a saga run"));
            }
            match &expect.saga {
                Some(want) => check(
                    !ends.is_empty() && ends.iter().all(|(_, end, _)| end == want),
                    format!("expected every run {want}, got {ends:?}"),
                ),
                None => check(
                    ends.iter().all(|(_, end, _)| *end == "completed"),
                    format!("expected completed, got {ends:?}"),
                ),
            }
        }
        StepOutcome::Invoiced { total, .. } => {
            if let Some(code) = &expect.refused {
                check(false, format!("expected refused {code}, got an invoice of {total}"));
            }
            match &expect.total {
                Some(want) => check(want == total, format!("expected total {want}, got {total}")),
                None => met += 1,
            }
        }
        StepOutcome::PlanChanged { allowed, applied, gates, refusals, apply, refusal, .. } => {
            if let Some(want) = expect.allowed {
                check(want == *allowed, format!("expected allowed {want}, got {refusals:?}"));
            }
            for (gate, want) in &expect.gates {
                let got = gates.iter().find(|(g, _)| g == gate).map_or("none", |(_, v)| *v);
                check(got == want, format!("expected gate {gate} {want}, got {got}"));
            }
            match expect.refused.as_deref() {
                // Any refusal of an apply, or the one code that decides it.
                Some("plan_change_refused") => check(
                    *apply && applied.is_none(),
                    "expected refused plan_change_refused, got applied".into(),
                ),
                Some(code) => check(
                    refusal.as_ref().is_some_and(|r| r.code == code),
                    format!(
                        "expected refused {code}, got {}: {refusals:?}",
                        refusal.as_ref().map_or("no refusal", |r| r.code.as_str())
                    ),
                ),
                None if *apply && expect.allowed != Some(false) => check(
                    applied.is_some(),
                    format!("expected applied, got refused: {}", refusals.join("; ")),
                ),
                None => check(true, String::new()),
            }
            if let Some(want) = expect.status {
                // As `govern serve` answers: a dry run and an applied change are 200.
                let got = refusal.as_ref().map_or(200, |r| r.status);
                check(want == got, format!("expected status {want}, got {got}"));
            }
        }
        StepOutcome::Duplicate => match expect.duplicate {
            Some(want) => check(want, "expected counted, got a duplicate".into()),
            None => check(expect.is_empty(), "expected counted, got a duplicate".into()),
        },
        StepOutcome::State { state } => match &expect.state {
            Some(want) => check(state == want, format!("expected state {want}, got {state}")),
            None => met += 1,
        },
        StepOutcome::Crashed { .. }
        | StepOutcome::Quarantined { .. }
        | StepOutcome::CrashArmed
        | StepOutcome::Restarted { .. }
        | StepOutcome::Verified { .. } => {
            met += 1;
        }
    }
    (met, failed)
}

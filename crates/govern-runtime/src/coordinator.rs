//! The saga coordinator: runs a saga definition's steps through the governors, recording
//! each in the run's saga governor, and compensates the completed steps, last first, when one
//! fails. Every step command carries an idempotency key derived from the run and the step
//! (`saga:{id}:{step}:do`, `saga:{id}:{step}:undo:{attempt}`), so a run resumed after a crash
//! (the coordinator's task, or the whole runtime) never runs a completed step twice: a
//! step accepted before the crash but not yet recorded answers its first outcome again.
//!
//! A run is a task of its own; the runtime resumes the unfinished ones at start from their
//! saga governors' receipts (`RuntimeHandle::resume_sagas`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use govern_governors::saga::{self, Command as Record, Saga, State};
use govern_governors::{Governor, GovernorKind, ResourceId, TenantId};

use crate::error::{CommandError, Outcome, Refusal};
use crate::handle::RawCommand;
use crate::limits::{SAGA_ATTEMPTS_MAX, SAGA_RETRY_BASE, SAGA_RETRY_MAX};
use crate::runtime::RuntimeHandle;
use crate::saga::{
    RUN_PARAM, SagaDef, SagaEnd, StepAction, StepCommand, decode_params, encode_params, render,
};
use crate::saga_actor::{RunRequest, SagaMsg};
use crate::saga_ops::{OpContext, StepError};

/// Whether a refusal may pass if retried (the runtime was momentarily unable).
/// Whether the runtime is going away: the run stops, to be resumed at the next start.
fn stopping(r: &Refusal) -> bool {
    matches!(r, Refusal::ShuttingDown | Refusal::LedgerUnavailable(_))
}

/// The wait before retry `attempt` (from 1): doubling from the base, capped.
fn backoff(attempt: u32) -> Duration {
    SAGA_RETRY_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(SAGA_RETRY_MAX)
}

/// Removes a run from the running set when it ends, however it ends.
struct Running<'a> {
    handle: &'a RuntimeHandle,
    key: (TenantId, ResourceId),
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.handle
            .shared
            .sagas_running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl RuntimeHandle {
    /// Runs saga `saga` (a registered definition: `RuntimeBuilder::saga`, or a shipped one)
    /// for `tenant` as run `id`, with `params`: begins it, runs its steps in order, and when
    /// one fails compensates the completed ones last first; a compensation that fails is
    /// retried with backoff and, past `limits::SAGA_ATTEMPTS_MAX` attempts, the run ends
    /// `stuck`. Each step and record is receipted. Called again for a run that exists, it
    /// continues it from its receipts (a finished run answers how it ended).
    ///
    /// # Errors
    /// [`Refusal::BadSaga`] (unknown saga, a parameter missing); `idempotency_in_flight`
    /// when the run is already being run; `shutting_down` or `ledger_unavailable` when the
    /// runtime stops meanwhile (the run is resumed at the next start).
    pub async fn run_saga(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
        saga: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<SagaEnd, Refusal> {
        let request = RunRequest::begin(tenant, id, saga, params);
        self.saga_call(request).await?.ok_or_else(|| Refusal::GovernorUnavailable {
            kind: GovernorKind::Saga,
            reason: CRASHED.into(),
            retry_after_ms: None,
        })
    }

    /// Hands a run to the saga coordinator actor and waits for its end.
    async fn saga_call(&self, request: RunRequest) -> Result<Option<SagaEnd>, Refusal> {
        let unavailable = |reason: &str| Refusal::GovernorUnavailable {
            kind: GovernorKind::Saga,
            reason: reason.into(),
            retry_after_ms: None,
        };
        if self.shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        let coordinator = self
            .shared
            .saga_coordinator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| unavailable("the saga coordinator is not running"))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        coordinator
            .cast(SagaMsg::Run { request, reply: tx })
            .map_err(|_| unavailable("the saga coordinator is not running"))?;
        rx.await.map_err(|_| unavailable("the saga coordinator stopped during the run"))?
    }

    #[cfg(feature = "testing")]
    /// [`Self::run_saga`] that stops, as a crashed coordinator would, at its `records`-th saga
    /// record of this call: right after writing it, or (`before`) right before, when the step
    /// command it records has been sent; `None` when it stopped so.
    ///
    /// # Errors
    /// As [`Self::run_saga`].
    pub async fn run_saga_crashing_at(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
        saga: &str,
        params: &BTreeMap<String, String>,
        records: usize,
        before: bool,
    ) -> Result<Option<SagaEnd>, Refusal> {
        let request = RunRequest::begin(tenant, id, saga, params);
        self.saga_call(RunRequest { crash: Some((records, before)), ..request }).await
    }

    #[cfg(feature = "testing")]
    /// [`Self::run_saga`] with `faults` injected; `None` when the coordinator stopped at its
    /// simulated crash (the run is then resumed by [`Self::resume_sagas`] after a restart).
    ///
    /// # Errors
    /// As [`Self::run_saga`].
    pub async fn run_saga_with_faults(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
        saga: &str,
        params: &BTreeMap<String, String>,
        faults: SagaFaults,
    ) -> Result<Option<SagaEnd>, Refusal> {
        let request = RunRequest::begin(tenant, id, saga, params);
        let crash = faults.crash_after_records.map(|n| (n, false));
        self.saga_call(RunRequest { fail_step: faults.fail_step, crash, ..request }).await
    }

    #[cfg(feature = "testing")]
    /// Makes the saga coordinator actor fail (fault injection): its supervisor restarts it,
    /// and the restarted coordinator resumes the unfinished runs. False when it is not running.
    #[must_use]
    pub fn inject_saga_coordinator_crash(&self) -> bool {
        let coordinator = self
            .shared
            .saga_coordinator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        coordinator.is_some_and(|c| c.cast(SagaMsg::Crash).is_ok())
    }

    /// Resumes every unfinished saga run the ledger holds, through the coordinator (runtime
    /// start does this in the background unless `RuntimeBuilder::resume_sagas_at_start(false)`),
    /// and waits until each ends; returns how each ended, by tenant and run. A run already
    /// being run is left to its run.
    pub async fn resume_sagas(&self) -> Vec<(TenantId, ResourceId, Result<SagaEnd, Refusal>)> {
        let coordinator = self
            .shared
            .saga_coordinator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(coordinator) = coordinator else { return Vec::new() };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if coordinator.cast(SagaMsg::ResumeAll { reply: Some(tx) }).is_err() {
            return Vec::new();
        }
        let ends = rx.await.unwrap_or_default();
        ends.into_iter()
            .map(|(tenant, id, end)| {
                let end = end.and_then(|e| {
                    e.ok_or_else(|| Refusal::GovernorUnavailable {
                        kind: GovernorKind::Saga,
                        reason: CRASHED.into(),
                        retry_after_ms: None,
                    })
                });
                if let Err(e) = &end {
                    tracing::warn!(tenant_id = %tenant, saga = %id, code = e.code(), error = %e, "saga not resumed");
                }
                (tenant, id, end)
            })
            .collect()
    }

    /// One run to its end, as the coordinator actor's task runs it; `None` when a test's
    /// simulated crash stopped it.
    pub(crate) async fn run_saga_task(
        &self,
        request: RunRequest,
    ) -> Result<Option<SagaEnd>, Refusal> {
        let start = request.start.as_ref().map(|(saga, params)| (saga.as_str(), params));
        let crash = request.crash.map(|(records, before)| CrashAt { records, before });
        match self
            .run_saga_until(&request.tenant, &request.id, start, crash, request.fail_step)
            .await
        {
            Ok(end) => Ok(Some(end)),
            Err(Refusal::GovernorUnavailable { reason, .. }) if reason == CRASHED => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn run_saga_until(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
        start: Option<(&str, &BTreeMap<String, String>)>,
        mut records: Option<CrashAt>,
        fail_step: Option<u32>,
    ) -> Result<SagaEnd, Refusal> {
        let key = (tenant.clone(), id.clone());
        {
            let mut running =
                self.shared.sagas_running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !running.insert(key.clone()) {
                return Err(Refusal::IdempotencyInFlight { key: format!("saga:{id}") });
            }
        }
        let _running = Running { handle: self, key };
        let record = self.governor::<Saga>(tenant, id);
        let mut run = record.snapshot().await?.machine;
        if run.state() == State::Pending {
            let Some((name, given)) = start else {
                return Err(Refusal::BadSaga { problem: format!("saga run {id} was never begun") });
            };
            let def = self.saga_def(name)?;
            let params = def
                .params(tenant.as_str(), given)
                .map_err(|problem| Refusal::BadSaga { problem })?;
            let begin = Record::Begin {
                saga: def.name.clone(),
                steps: u32::try_from(def.steps.len()).unwrap_or(u32::MAX),
                params: encode_params(&params),
            };
            run = self.record(&record, &mut run, begin, &mut records).await?;
        }
        let name = run.saga().unwrap_or_default().to_owned();
        let def = self.saga_def(&name)?;
        let mut params = decode_params(run.params());
        params.insert(RUN_PARAM.into(), id.to_string());
        let exclude = own_resources(&def, id, &params);
        let cx = RunContext { tenant, id, def: &def, params: &params, exclude: &exclude };
        loop {
            let next = match run.state() {
                State::Completed => return Ok(SagaEnd::Completed),
                State::Compensated => {
                    let (step, failure) = run.failed().unwrap_or((0, "resolved by an operator"));
                    return Ok(SagaEnd::Compensated { step, failure: failure.to_owned() });
                }
                State::Stuck => {
                    return Ok(SagaEnd::Stuck {
                        failure: run.stuck().unwrap_or_default().to_owned(),
                    });
                }
                State::Pending => {
                    return Err(Refusal::BadSaga {
                        problem: format!("saga run {id} was never begun"),
                    });
                }
                State::Running if fail_step == Some(run.done()) => {
                    Record::StepFailed { step: run.done(), reason: "injected failure".into() }
                }
                State::Running => self.step(&cx, &run).await?,
                State::Compensating => self.compensate(&cx, &run).await?,
            };
            run = self.record(&record, &mut run, next, &mut records).await?;
        }
    }

    /// The registered definition called `name`.
    fn saga_def(&self, name: &str) -> Result<Arc<SagaDef>, Refusal> {
        self.shared
            .sagas
            .get(name)
            .cloned()
            .ok_or_else(|| Refusal::BadSaga { problem: format!("no saga `{name}` is registered") })
    }

    /// Writes one record of the run, and returns the run as it now is.
    async fn record(
        &self,
        record: &crate::GovernorHandle<Saga>,
        run: &mut Saga,
        command: Record,
        crash: &mut Option<CrashAt>,
    ) -> Result<Saga, Refusal> {
        let crashed = || Refusal::GovernorUnavailable {
            kind: GovernorKind::Saga,
            reason: CRASHED.into(),
            retry_after_ms: None,
        };
        if let Some(c) = crash
            && c.before
            && c.records == 1
        {
            return Err(crashed());
        }
        let reason = format!("saga {}", command.name_of());
        let mirror = command.clone();
        match record.send(command, &reason).await {
            Ok(_) => {}
            Err(CommandError::Refused(r)) => return Err(r),
            Err(CommandError::Rejected(r)) => {
                return Err(Refusal::BadSaga {
                    problem: format!("the saga record was refused: {r}"),
                });
            }
        }
        if let Some(c) = crash {
            c.records = c.records.saturating_sub(1);
            if c.records == 0 {
                return Err(crashed());
            }
        }
        // The run as it now is: the record applied to the machine it was decided from (the
        // coordinator is the run's one writer); read back if that does not hold.
        let ctx = govern_governors::Ctx { now: self.now() };
        if run.apply(&mirror, &ctx).is_ok() {
            return Ok(run.clone());
        }
        Ok(record.snapshot().await?.machine)
    }

    /// Runs one step's action (or compensation) with its idempotency key: a governor
    /// command rendered from the run's parameters, or a runtime operation.
    async fn saga_action(
        &self,
        cx: &RunContext<'_>,
        action: &StepAction,
        key: String,
        reason: String,
        timing: (Option<Duration>, govern_governors::Timestamp),
    ) -> Result<(), StepError> {
        match action {
            StepAction::Command(c) => {
                self.saga_command(cx.tenant, c, cx.params, key, reason).await?;
                Ok(())
            }
            StepAction::Operation(op) => {
                let (limit, first_attempt) = timing;
                let ocx = OpContext {
                    tenant: cx.tenant,
                    key,
                    reason,
                    exclude: cx.exclude,
                    limit,
                    first_attempt,
                };
                self.saga_operation(&ocx, op, cx.params).await
            }
        }
    }

    /// Sends one step command (rendered from `params`) with its idempotency key.
    async fn saga_command(
        &self,
        tenant: &TenantId,
        c: &StepCommand,
        params: &BTreeMap<String, String>,
        key: String,
        reason: String,
    ) -> Outcome {
        let bad = |problem: String| CommandError::Refused(Refusal::BadSaga { problem });
        let resource = render(&c.resource, params).map_err(bad)?;
        let resource =
            ResourceId::new(&resource).map_err(|e| bad(format!("resource `{resource}`: {e}")))?;
        let mut args = govern_governors::Args::new();
        for (k, v) in &c.args {
            args.insert(k.clone(), render(v, params).map_err(bad)?);
        }
        self.command(RawCommand {
            tenant: tenant.clone(),
            kind: c.governor,
            resource,
            name: c.command.clone(),
            args,
            reason,
            metadata: vec![(crate::IDEMPOTENCY_KEY.to_owned(), key)],
        })
        .await
    }

    /// Runs the next step (retrying a momentary refusal); the record it leads to.
    async fn step(&self, cx: &RunContext<'_>, run: &Saga) -> Result<Record, Refusal> {
        let (id, def) = (cx.id, cx.def);
        let i = run.done();
        let Some(step) = def.steps.get(i as usize) else {
            return Ok(Record::StepFailed {
                step: i,
                reason: "the definition has no such step".into(),
            });
        };
        let mut attempt = 0;
        let first_attempt = self.now();
        let mut last_refusal = String::new();
        loop {
            if let Some(limit) = step.timeout
                && attempt > 0
                && first_attempt.plus_ms(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX))
                    <= self.now()
            {
                let reason = format!(
                    "step {} timed out after {} ({} attempts; last: {last_refusal})",
                    step.name,
                    humantime::format_duration(limit),
                    attempt
                );
                return Ok(Record::StepFailed { step: i, reason: saga::cut(&reason) });
            }
            if let (Some(limit), Some(began)) = (def.timeout, run.began_at()) {
                let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
                if began.plus_ms(limit_ms) <= self.now() {
                    return Ok(Record::StepFailed { step: i, reason: "the saga timed out".into() });
                }
            }
            let key = format!("saga:{id}:{i}:do");
            let reason = format!("saga {} {id}: {}", def.name, step.name);
            let timing = (step.timeout, first_attempt);
            match self.saga_action(cx, &step.action, key, reason, timing).await {
                Ok(()) => return Ok(Record::StepDone { step: i }),
                Err(StepError::Refused(r)) if stopping(&r) => return Err(r),
                Err(StepError::Refused(r))
                    if r.is_transient() && attempt + 1 < SAGA_ATTEMPTS_MAX =>
                {
                    attempt += 1;
                    last_refusal = r.to_string();
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(StepError::Refused(r)) => {
                    return Ok(Record::StepFailed { step: i, reason: saga::cut(&r.to_string()) });
                }
                Err(StepError::Failed(reason)) => {
                    return Ok(Record::StepFailed { step: i, reason: saga::cut(&reason) });
                }
            }
        }
    }

    /// Undoes the last completed step not yet undone: the record it leads to.
    async fn compensate(&self, cx: &RunContext<'_>, run: &Saga) -> Result<Record, Refusal> {
        let (id, def) = (cx.id, cx.def);
        let j = run.to_undo().saturating_sub(1);
        let Some(undo) = def.steps.get(j as usize).and_then(|s| s.compensation.as_ref()) else {
            return Ok(Record::Compensated { step: j });
        };
        let attempt = run.attempts() + 1;
        if attempt > 1 {
            tokio::time::sleep(backoff(attempt - 1)).await;
        }
        let key = format!("saga:{id}:{j}:undo:{attempt}");
        let reason = format!("saga {} {id}: undo {}", def.name, def.steps[j as usize].name);
        let timing = (def.steps[j as usize].timeout, self.now());
        let outcome = match self.saga_action(cx, undo, key, reason, timing).await {
            Ok(()) => Ok(()),
            Err(StepError::Refused(r)) if stopping(&r) => return Err(r),
            Err(StepError::Refused(r)) => Err(r.to_string()),
            Err(StepError::Failed(reason)) => Err(reason),
        };
        match outcome {
            Ok(()) => Ok(Record::Compensated { step: j }),
            Err(e) if attempt >= SAGA_ATTEMPTS_MAX => Ok(Record::GiveUp {
                reason: saga::cut(&format!(
                    "undoing step {j} ({}) failed {attempt} times; last: {e}",
                    def.steps[j as usize].name
                )),
            }),
            Err(e) => Ok(Record::CompensationFailed {
                step: j,
                attempt,
                reason: saga::cut(&e.to_string()),
            }),
        }
    }
}

/// What every step of a run reads: its tenant, id, definition and parameters (with `{run}`),
/// and the resources its own steps drive.
struct RunContext<'a> {
    tenant: &'a TenantId,
    id: &'a ResourceId,
    def: &'a SagaDef,
    params: &'a BTreeMap<String, String>,
    exclude: &'a [(GovernorKind, ResourceId)],
}

/// The resources a run's own steps drive, which a plan change it judges does not hold
/// against it: its saga record, and every billing resource its steps and compensations
/// name (an upgrade's payment is under way while the run is).
fn own_resources(
    def: &SagaDef,
    id: &ResourceId,
    params: &BTreeMap<String, String>,
) -> Vec<(GovernorKind, ResourceId)> {
    let mut out = vec![(GovernorKind::Saga, id.clone())];
    for step in &def.steps {
        for action in std::iter::once(&step.action).chain(&step.compensation) {
            let resource = match action {
                StepAction::Command(c) if c.governor == GovernorKind::Billing => {
                    render(&c.resource, params).ok()
                }
                StepAction::Operation(op) => op
                    .args
                    .get("period")
                    .and_then(|p| render(p, params).ok())
                    .and_then(|p| crate::billing_run::BillingPeriod::month(&p).ok())
                    .map(|p| p.payment_resource.to_string()),
                StepAction::Command(_) => None,
            };
            if let Some(r) = resource.and_then(|r| ResourceId::new(&r).ok()) {
                out.push((GovernorKind::Billing, r));
            }
        }
    }
    out
}

/// Where a test's simulated coordinator crash stops a run: at its `records`-th record,
/// after writing it or before.
#[derive(Clone, Copy, Debug)]
struct CrashAt {
    records: usize,
    before: bool,
}

/// Faults injected into a saga run (scenarios, tests): a step that fails without its command
/// being sent, and a coordinator crash at a record.
#[cfg(feature = "testing")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SagaFaults {
    /// This step fails (`injected failure`) instead of running.
    pub fail_step: Option<u32>,
    /// The coordinator stops at its N-th record of the call, right after writing it.
    pub crash_after_records: Option<usize>,
}

/// The reason a test's simulated coordinator crash stops a run with.
const CRASHED: &str = "the saga coordinator stopped (simulated crash)";

/// The record's name, for its reason.
trait NameOf {
    fn name_of(&self) -> &'static str;
}

impl NameOf for Record {
    fn name_of(&self) -> &'static str {
        govern_governors::CommandSpec::name(self)
    }
}

//! Typed handles: one governor of one tenant, addressed by kind through its Rust type, with a
//! method per command for the subscription governor, and a generic string entry for scripts.

use std::marker::PhantomData;
use std::sync::Arc;

use govern_governors::audit;
use govern_governors::subscription::{Command as SubCommand, Subscription};
use govern_governors::tenant::{Command as TenantCommand, ResourceQuota, Tenant};
use govern_governors::{
    ArgError, ArgProblem, Args, CommandSpec, GovernorKind, Metadata, Reason, ReasonError,
    Rejection, Request, ResourceId, TenantId, Timestamp,
};

use crate::domains::BoxFuture;
use crate::error::{CommandError, Outcome, Refusal};
#[cfg(feature = "testing")]
use crate::governor::CrashPoint;
use crate::governor::Snapshot;
use crate::hosted::{Hosted, KindVisitor, dispatch};
use crate::idempotency::{Begin, Fingerprint, IDEMPOTENCY_KEY};
use crate::registry::Key;
use crate::runtime::RuntimeHandle;
use crate::telemetry::Started;

/// One governor of one tenant, e.g. `handle.governor::<Subscription>(&acme, &sub_1)`.
#[derive(Debug)]
pub struct GovernorHandle<G: Hosted> {
    runtime: RuntimeHandle,
    key: Key,
    /// The idempotency key its commands carry, if any.
    idempotency_key: Option<Arc<str>>,
    _kind: PhantomData<fn() -> G>,
}

impl<G: Hosted> Clone for GovernorHandle<G> {
    fn clone(&self) -> Self {
        Self {
            runtime: self.runtime.clone(),
            key: self.key.clone(),
            idempotency_key: self.idempotency_key.clone(),
            _kind: PhantomData,
        }
    }
}

pub(crate) fn reason_rejection(command: &str, e: &ReasonError) -> CommandError {
    let problem = match e {
        ReasonError::TooLong { max, .. } => ArgProblem::TooLong { max: *max },
        _ => ArgProblem::Empty,
    };
    CommandError::Rejected(Rejection::from(ArgError::new(command, "reason", None, problem)))
}

impl<G: Hosted> GovernorHandle<G> {
    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &TenantId {
        &self.key.tenant
    }

    /// The resource.
    #[must_use]
    pub fn resource(&self) -> &ResourceId {
        &self.key.resource
    }

    /// Sends `command` with `reason` and no metadata, and waits for the outcome.
    ///
    /// # Errors
    /// The governor's rejection, or the runtime's refusal.
    pub async fn send(&self, command: G::Command, reason: &str) -> Outcome {
        let reason = Reason::new(reason).map_err(|e| reason_rejection(command.name(), &e))?;
        self.send_request(Request::new(command, reason)).await
    }

    /// Sends a full request (command, reason, metadata) and waits for the outcome.
    ///
    /// A command to the tenant governor that is answered while state timeouts are due (as
    /// when it resumes a suspended tenant, whose held timeouts are then due at once) also
    /// waits until those are decided, in order: every tenant's, not only this one's, though it
    /// starts no delivery once the reply timeout has passed since the answer (what that
    /// leaves, the delivery task decides next).
    ///
    /// # Errors
    /// The governor's rejection, or the runtime's refusal.
    pub async fn send_request(&self, request: Request<G::Command>) -> Outcome {
        let started = Started::now();
        let outcome = self.send_request_measured(request, started).await;
        // An acceptance after a group commit is measured where it is answered (the receipt
        // actor, or a keyed repeat's replay); everything else here.
        if outcome.is_err() || !self.runtime.shared.acks_after_commit() {
            self.runtime.shared.telemetry.command(G::KIND, &self.key.tenant, &outcome, started);
        }
        outcome
    }

    /// [`Self::send_request`], its acceptance measured from `started`.
    async fn send_request_measured(
        &self,
        mut request: Request<G::Command>,
        started: Started,
    ) -> Outcome {
        if G::reserved(&request.command) {
            return Err(Refusal::Reserved { command: request.command.name() }.into());
        }
        if let Some(key) = &self.idempotency_key
            && !request.metadata.as_map().contains_key(IDEMPOTENCY_KEY)
        {
            request.metadata.insert(IDEMPOTENCY_KEY, key.as_ref()).map_err(|e| {
                CommandError::Rejected(Rejection::from(ArgError::new(
                    request.command.name(),
                    "metadata",
                    None,
                    ArgProblem::Malformed { expected: e.expected() },
                )))
            })?;
        }
        let Some(key) = request.metadata.as_map().get(IDEMPOTENCY_KEY).cloned() else {
            return self.send_unreserved(request, Some(started)).await;
        };
        self.send_keyed(request, key, started).await
    }

    /// A handle whose commands carry the idempotency key `key` (unless a request carries its
    /// own): a repeat with the same key and the same command gets the first outcome and writes
    /// nothing; the same key with another command is refused `idempotency_conflict`; while
    /// the first is in flight, `idempotency_in_flight` (`docs/runtime-semantics.md`,
    /// "Idempotency keys"). Give each distinct command its own key.
    #[must_use]
    pub fn idempotent(&self, key: &str) -> Self {
        Self { idempotency_key: Some(Arc::from(key)), ..self.clone() }
    }

    /// A keyed request: the first outcome for a repeat, else run it (to its end even if the
    /// caller stops waiting, so that the key learns its outcome) and remember the outcome.
    async fn send_keyed(
        &self,
        request: Request<G::Command>,
        key: String,
        started: Started,
    ) -> Outcome {
        let shared = &self.runtime.shared;
        if key.is_empty() {
            return Err(CommandError::Rejected(Rejection::from(ArgError::new(
                request.command.name(),
                "metadata",
                None,
                ArgProblem::Malformed { expected: "an idempotency key of 1 byte or more" },
            ))));
        }
        let fingerprint = Fingerprint {
            kind: G::KIND,
            resource: self.key.resource.clone(),
            command: request.command.name().to_owned(),
            args: request.command.args(),
            from_receipt: false,
        };
        let tenant = self.key.tenant.clone();
        match shared.idempotency.begin(&tenant, &key, fingerprint, shared.clock.now())? {
            Begin::Replay(outcome) => {
                if outcome.is_ok() && shared.acks_after_commit() {
                    shared.telemetry.command(G::KIND, &tenant, &outcome, started);
                }
                outcome
            }
            Begin::Run => {
                let handle = self.clone();
                let task = tokio::spawn(async move {
                    let outcome = handle.send_unreserved(request, Some(started)).await;
                    handle.runtime.shared.idempotency.finish(&handle.key.tenant, &key, &outcome);
                    outcome
                });
                task.await.unwrap_or_else(|_| {
                    Err(Refusal::GovernorUnavailable {
                        kind: G::KIND,
                        reason: "the keyed command's task stopped".into(),
                        retry_after_ms: None,
                    }
                    .into())
                })
            }
        }
    }

    /// [`Self::send_request`] without the refusal of reserved commands, measured as it is:
    /// the runtime's own path (usage batches).
    pub(crate) async fn send_runtime(&self, request: Request<G::Command>) -> Outcome {
        let started = Started::now();
        let outcome = self.send_unreserved(request, Some(started)).await;
        if outcome.is_err() || !self.runtime.shared.acks_after_commit() {
            self.runtime.shared.telemetry.command(G::KIND, &self.key.tenant, &outcome, started);
        }
        outcome
    }

    /// The path every command takes once its request is complete; an acceptance is measured
    /// from `started` by the receipt actor as it answers.
    async fn send_unreserved(
        &self,
        request: Request<G::Command>,
        started: Option<Started>,
    ) -> Outcome {
        let shared = &self.runtime.shared;
        if shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown.into());
        }
        let lifecycle = G::KIND == GovernorKind::Tenant;
        if lifecycle && self.key.resource.as_str() != self.key.tenant.as_str() {
            return Err(Refusal::TenantResourceMismatch { tenant: self.key.tenant.clone() }.into());
        }
        if let Some(plan) = G::plan(&request.command)
            && shared.catalog
            && shared.commercial.catalog().is_some_and(|c| c.plan(plan).is_none())
        {
            return Err(Refusal::UnknownPlan { plan: plan.to_owned() }.into());
        }
        // A saga run's records are admitted whatever the tenant's state, as the runtime's
        // own records are (a run that deprovisioned its tenant while compensating records its
        // end; an operator resolves a stuck run of a suspended tenant), and before the tenant
        // exists as its first lifecycle command is (onboarding provisions it).
        let admission = match G::KIND {
            GovernorKind::Saga => match shared.registry.admit_record(&self.key.tenant) {
                Some(admission) => admission,
                None => shared.registry.admit(&self.key.tenant, true)?,
            },
            _ => shared.registry.admit(&self.key.tenant, lifecycle)?,
        };
        let outcome = self
            .runtime
            .domains
            .get::<G>()
            .call(self.key.clone(), request, admission, started)
            .await;
        if lifecycle && outcome.is_ok() {
            // A resumption released the tenant's held timeouts (the registry actor did, before
            // this answer): they are decided now, in deadline order, before the caller hears of
            // it. The delivery task may have taken them first: waiting for the delivery turn
            // waits for it too. (This makes the moment deterministic.)
            let until = tokio::time::Instant::now() + shared.reply_timeout;
            self.runtime.domains.deliver_due(shared, Some(until)).await;
            shared.durable().await;
        }
        outcome
    }

    /// The governor's current machine, answered in order with its commands.
    ///
    /// # Errors
    /// A refusal when the runtime is down or the governor cannot be started.
    pub async fn snapshot(&self) -> Result<Snapshot<G>, Refusal> {
        if self.runtime.shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        self.runtime.domains.get::<G>().inspect(self.key.clone()).await
    }

    /// The governor's current state.
    ///
    /// # Errors
    /// As [`Self::snapshot`].
    pub async fn state(&self) -> Result<G::State, Refusal> {
        Ok(self.snapshot().await?.machine.state())
    }

    #[cfg(feature = "testing")]
    /// Makes the governor panic at `point` (fault injection for tests and scenarios). Its
    /// supervisor restarts it and it replays its receipts; no command is lost.
    ///
    /// # Errors
    /// A refusal when the runtime is down or the inbox is full.
    pub async fn inject_crash(&self, point: CrashPoint) -> Result<(), Refusal> {
        if self.runtime.shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        self.runtime.domains.get::<G>().inject_crash(self.key.clone(), point).await
    }
}

impl RuntimeHandle {
    /// The handle of governor `G` of `tenant` for `resource`.
    #[must_use]
    pub fn governor<G: Hosted>(
        &self,
        tenant: &TenantId,
        resource: &ResourceId,
    ) -> GovernorHandle<G> {
        let key = Key { tenant: tenant.clone(), resource: resource.clone() };
        GovernorHandle { runtime: self.clone(), key, idempotency_key: None, _kind: PhantomData }
    }

    /// The subscription `resource` of `tenant`.
    #[must_use]
    pub fn subscription(
        &self,
        tenant: &TenantId,
        resource: &ResourceId,
    ) -> GovernorHandle<Subscription> {
        self.governor(tenant, resource)
    }

    /// The tenant governor of `tenant` (its resource id is the tenant id).
    #[must_use]
    pub fn tenant(&self, tenant: &TenantId) -> GovernorHandle<Tenant> {
        self.governor(tenant, &crate::registry::tenant_resource(tenant))
    }

    /// The audit trail of `tenant`: what the runtime decided about it (its resource id is the
    /// tenant id). Hosts read it; the runtime writes it.
    #[must_use]
    pub fn audit(&self, tenant: &TenantId) -> GovernorHandle<audit::Trail> {
        self.governor(tenant, &crate::registry::tenant_resource(tenant))
    }

    /// Provisions `tenant` with `quota` and activates it, through its tenant governor.
    ///
    /// # Errors
    /// As [`GovernorHandle::send`], for whichever of the two commands failed.
    pub async fn provision_tenant(
        &self,
        tenant: &TenantId,
        quota: ResourceQuota,
        reason: &str,
    ) -> Outcome {
        let t = self.tenant(tenant);
        t.send(TenantCommand::ProvisionTenant { quota }, reason).await?;
        t.send(TenantCommand::ActivateTenant, reason).await
    }

    /// [`Self::provision_tenant`] with idempotency keys (`{key}:provision` and
    /// `{key}:activate`): run again with the same key (a retry, a host restarted on its data
    /// directory within the keys' window), it answers the first run's outcome and writes
    /// nothing.
    ///
    /// # Errors
    /// As [`Self::provision_tenant`]; `idempotency_conflict` when the key was used for
    /// something else.
    pub async fn provision_tenant_idempotent(
        &self,
        tenant: &TenantId,
        quota: ResourceQuota,
        reason: &str,
        key: &str,
    ) -> Outcome {
        let t = self.tenant(tenant);
        t.idempotent(&format!("{key}:provision"))
            .send(TenantCommand::ProvisionTenant { quota }, reason)
            .await?;
        t.idempotent(&format!("{key}:activate")).send(TenantCommand::ActivateTenant, reason).await
    }

    /// The generic entry for scripts: a command by governor kind and name, with string
    /// arguments, parsed and validated here.
    ///
    /// # Errors
    /// `invalid_argument` rejections for a bad command, argument, reason or metadata; then
    /// as [`GovernorHandle::send_request`].
    pub async fn command(&self, command: RawCommand) -> Outcome {
        struct Raw<'a>(&'a RuntimeHandle, RawCommand);
        impl<'a> KindVisitor for Raw<'a> {
            type Out = BoxFuture<'a, Outcome>;
            fn visit<G: Hosted>(self) -> Self::Out {
                Box::pin(self.0.raw::<G>(self.1))
            }
        }
        dispatch(command.kind, Raw(self, command)).await
    }

    async fn raw<G: Hosted>(&self, raw: RawCommand) -> Outcome {
        let started = Started::now();
        let governor = self.governor::<G>(&raw.tenant, &raw.resource);
        match raw_request::<G>(raw) {
            Ok(request) => governor.send_request(request).await,
            Err(e) => {
                // Refused before it reached the handle: counted as a command all the same.
                let outcome = Err(e);
                self.shared.telemetry.command(G::KIND, governor.tenant(), &outcome, started);
                outcome
            }
        }
    }

    #[cfg(feature = "testing")]
    /// Makes a governor panic at `point`, by kind (see [`GovernorHandle::inject_crash`]).
    ///
    /// # Errors
    /// As [`GovernorHandle::inject_crash`].
    pub async fn inject_crash(
        &self,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
        point: CrashPoint,
    ) -> Result<(), Refusal> {
        if self.shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        let key = Key { tenant: tenant.clone(), resource: resource.clone() };
        self.domains.by_kind(kind).inject_crash(key, point).await
    }
}

/// A raw command's typed request, or the rejection of a bad name, argument, reason or
/// metadata.
fn raw_request<G: Hosted>(raw: RawCommand) -> Result<Request<G::Command>, CommandError> {
    let command =
        G::Command::parse(&raw.name, &raw.args).map_err(|e| CommandError::Rejected(e.into()))?;
    let reason = Reason::new(raw.reason).map_err(|e| reason_rejection(command.name(), &e))?;
    let mut metadata = Metadata::new();
    for (k, v) in raw.metadata {
        metadata.insert(k, v).map_err(|e| {
            CommandError::Rejected(Rejection::from(ArgError::new(
                command.name(),
                "metadata",
                None,
                ArgProblem::Malformed { expected: e.expected() },
            )))
        })?;
    }
    Ok(Request { command, reason, metadata })
}

/// A command as a script sends it: everything by name and string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawCommand {
    /// The tenant.
    pub tenant: TenantId,
    /// The governor kind.
    pub kind: GovernorKind,
    /// The resource.
    pub resource: ResourceId,
    /// The command name.
    pub name: String,
    /// Its arguments.
    pub args: Args,
    /// Why.
    pub reason: String,
    /// Caller context.
    pub metadata: Vec<(String, String)>,
}

/// Named methods for the subscription governor, one per command.
impl GovernorHandle<Subscription> {
    /// Begins a free trial of `plan` for `trial_days` days.
    ///
    /// # Errors
    /// As [`GovernorHandle::send`].
    pub async fn start_trial(&self, plan: &str, trial_days: u32, reason: &str) -> Outcome {
        self.send(SubCommand::StartTrial { plan: plan.to_owned(), trial_days }, reason).await
    }

    /// Starts paid service, optionally on `plan`.
    ///
    /// # Errors
    /// As [`GovernorHandle::send`].
    pub async fn activate(&self, plan: Option<&str>, reason: &str) -> Outcome {
        self.send(SubCommand::Activate { plan: plan.map(str::to_owned) }, reason).await
    }

    /// Withholds service.
    ///
    /// # Errors
    /// As [`GovernorHandle::send`].
    pub async fn suspend(&self, reason: &str) -> Outcome {
        self.send(SubCommand::Suspend, reason).await
    }

    /// Pauses service.
    ///
    /// # Errors
    /// As [`GovernorHandle::send`].
    pub async fn pause(&self, reason: &str) -> Outcome {
        self.send(SubCommand::Pause, reason).await
    }

    /// Resumes a suspended or paused subscription.
    ///
    /// # Errors
    /// As [`GovernorHandle::send`].
    pub async fn resume(&self, reason: &str) -> Outcome {
        self.send(SubCommand::Resume, reason).await
    }

    /// Records the customer's wish to cancel.
    ///
    /// # Errors
    /// As [`GovernorHandle::send`].
    pub async fn request_cancellation(&self, reason: &str) -> Outcome {
        self.send(SubCommand::RequestCancellation, reason).await
    }

    /// Confirms the cancellation; service ends at `ends_at` (default: now).
    ///
    /// # Errors
    /// As [`GovernorHandle::send`].
    pub async fn confirm_cancellation(&self, ends_at: Option<Timestamp>, reason: &str) -> Outcome {
        self.send(SubCommand::ConfirmCancellation { ends_at }, reason).await
    }

    /// Archives a subscription whose service has ended.
    ///
    /// # Errors
    /// As [`GovernorHandle::send`].
    pub async fn archive(&self, reason: &str) -> Outcome {
        self.send(SubCommand::Archive, reason).await
    }
}

//! The runtime operations a saga step may run instead of a governor command
//! ([`Operation`]): plan changes through their gates and the billing run's steps. Each is
//! idempotent by its receipts, so that a run resumed after a crash, which repeats the step
//! it had not recorded yet, never does one twice: `change_plan` and `rollback_plan` find the
//! receipt carrying the step's idempotency key; the billing run's steps find the invoice,
//! the payment and the final record by the period they name.

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::billing::{self, Billing, PaymentMethod};
use govern_governors::subscription::{self, Subscription};
use govern_governors::{
    Governor, GovernorKind, Metadata, Reason, Request, ResourceId, TenantId, Timestamp, audit,
};

use crate::billing_run::{BillingPeriod, period_record};
use crate::error::{CommandError, Refusal};
use crate::limits::{SAGA_NOTIFY_POLL_MAX, SAGA_NOTIFY_WAIT};
use crate::notify::EventKind;
use crate::plan_change::PlanChangeError;
use crate::runtime::RuntimeHandle;
use crate::saga::{Operation, StepOperation, render};

/// Why a step's action did not complete: a refusal of the runtime (retried when transient,
/// the run stopped when the runtime is going away), or a failure that fails the step.
#[derive(Debug)]
pub(crate) enum StepError {
    Refused(Refusal),
    Failed(String),
}

impl From<CommandError> for StepError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Refused(r) => Self::Refused(r),
            CommandError::Rejected(r) => Self::Failed(r.to_string()),
        }
    }
}

impl From<Refusal> for StepError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<PlanChangeError> for StepError {
    fn from(e: PlanChangeError) -> Self {
        match e {
            PlanChangeError::Runtime(r) => Self::Refused(r),
            PlanChangeError::Command(e) => e.into(),
            PlanChangeError::Ledger(e) => Self::Refused(Refusal::LedgerUnavailable(e.to_string())),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// What an operation knows of the step that runs it.
pub(crate) struct OpContext<'a> {
    pub(crate) tenant: &'a TenantId,
    /// The step's idempotency key (`saga:{run}:{step}:do`, `...:undo:{attempt}`).
    pub(crate) key: String,
    /// The reason its receipts carry.
    pub(crate) reason: String,
    /// Resources the run's own steps drive (its saga record, the billing resources its
    /// steps name): not held against it by the plan change's clean-receipts gate.
    pub(crate) exclude: &'a [(GovernorKind, ResourceId)],
    /// The step's time limit, and when its first attempt began.
    pub(crate) limit: Option<Duration>,
    pub(crate) first_attempt: Timestamp,
}

impl RuntimeHandle {
    /// Runs `op` with its arguments rendered from `params`.
    pub(crate) async fn saga_operation(
        &self,
        cx: &OpContext<'_>,
        op: &StepOperation,
        params: &BTreeMap<String, String>,
    ) -> Result<(), StepError> {
        let mut args = BTreeMap::new();
        for (k, v) in &op.args {
            args.insert(k.as_str(), render(v, params).map_err(StepError::Failed)?);
        }
        let arg = |name: &str| args.get(name).map(String::as_str);
        let required = |name: &str| {
            arg(name).ok_or_else(|| {
                StepError::Failed(format!("`{}` needs `{name}`", op.operation.name()))
            })
        };
        let tenant = cx.tenant;
        match op.operation {
            Operation::PlanChangeGates => {
                let sub = self.saga_subscription(tenant, arg("subscription"))?;
                let to = required("to")?;
                let simulation =
                    self.simulate_plan_change_excluding(tenant, &sub, to, cx.exclude).await?;
                if simulation.allowed() {
                    Ok(())
                } else {
                    Err(StepError::Failed(format!(
                        "plan change refused: {}",
                        simulation.refusals().join("; ")
                    )))
                }
            }
            Operation::ChangePlan => {
                let sub = self.saga_subscription(tenant, arg("subscription"))?;
                if self.keyed_receipt(tenant, &sub, "change_plan", &cx.key)? {
                    return Ok(());
                }
                let to = required("to")?;
                self.apply_plan_change_as(tenant, &sub, to, &cx.reason, Some(&cx.key), cx.exclude)
                    .await?;
                Ok(())
            }
            Operation::RollbackPlan => {
                let sub = self.saga_subscription(tenant, arg("subscription"))?;
                if self.keyed_receipt(tenant, &sub, "rollback_plan", &cx.key)? {
                    return Ok(());
                }
                let machine = self.governor::<Subscription>(tenant, &sub).snapshot().await?.machine;
                let Some(plan) = machine.previous_plan() else {
                    return Err(StepError::Failed(format!(
                        "subscription {sub} has no plan change to roll back"
                    )));
                };
                let command = subscription::Command::RollbackPlan { plan: plan.to_owned() };
                let request = keyed_request(command, &cx.reason, &cx.key)?;
                self.governor::<Subscription>(tenant, &sub).send_request(request).await?;
                Ok(())
            }
            Operation::CloseInvoice => {
                self.billing_run_step(tenant, required("period")?, None).await?;
                Ok(())
            }
            Operation::RequestInvoicePayment => {
                let method = match arg("method") {
                    None => PaymentMethod::Card,
                    Some(m) => m.parse().map_err(|()| {
                        StepError::Failed(format!(
                            "method `{m}`: expected {}",
                            PaymentMethod::EXPECTED
                        ))
                    })?,
                };
                self.billing_run_step(tenant, required("period")?, Some(method)).await?;
                Ok(())
            }
            Operation::CancelInvoicePayment => {
                let period = BillingPeriod::month(required("period")?)?;
                let payment = self.governor::<Billing>(tenant, &period.payment_resource);
                let state = payment.snapshot().await?.machine.state();
                if !matches!(
                    state,
                    billing::State::PaymentPending
                        | billing::State::PaymentAuthorized
                        | billing::State::PaymentProcessing
                ) {
                    // None was requested (a zero total), or it has moved on (settled, failed):
                    // there is nothing a billing run may take back.
                    return Ok(());
                }
                let command = billing::Command::FailPayment {
                    code: Some(crate::billing_run::PAYMENT_ABANDONED.into()),
                    money: None,
                };
                payment.send_request(keyed_request(command, &cx.reason, &cx.key)?).await?;
                Ok(())
            }
            Operation::NotifyInvoice => {
                let period = BillingPeriod::month(required("period")?)?;
                self.invoice_notified(cx, &period).await
            }
            Operation::FinalizeInvoice => {
                let period = BillingPeriod::month(required("period")?)?;
                let receipts = self.audit_receipts(tenant)?;
                if period_record(&receipts, "finalize_invoice", &period.label).is_some() {
                    return Ok(());
                }
                if period_record(&receipts, "record_invoice", &period.label).is_none() {
                    return Err(StepError::Failed(format!(
                        "no invoice is recorded for {}",
                        period.label
                    )));
                }
                let command = audit::Command::FinalizeInvoice { period: period.label.clone() };
                self.record_waiting(tenant, keyed_request(command, &cx.reason, &cx.key)?).await?;
                Ok(())
            }
        }
    }

    /// The subscription an operation names, else the tenant's only one.
    fn saga_subscription(
        &self,
        tenant: &TenantId,
        named: Option<&str>,
    ) -> Result<ResourceId, StepError> {
        match named {
            Some(id) => ResourceId::new(id)
                .map_err(|e| StepError::Failed(format!("subscription `{id}`: {e}"))),
            None => Ok(self.sole_subscription(tenant)?),
        }
    }

    /// Whether subscription `resource`'s receipts hold a `command` carrying idempotency key
    /// `key` (how a resumed `change_plan` or `rollback_plan` finds itself done).
    fn keyed_receipt(
        &self,
        tenant: &TenantId,
        resource: &ResourceId,
        command: &str,
        key: &str,
    ) -> Result<bool, StepError> {
        let receipts = self
            .receipts(tenant, Some(GovernorKind::Subscription), Some(resource))
            .map_err(|e| Refusal::LedgerUnavailable(e.to_string()))?;
        Ok(receipts.iter().any(|r| {
            r.body.command == command
                && r.body.metadata.get(crate::IDEMPOTENCY_KEY).map(String::as_str) == Some(key)
        }))
    }

    /// The tenant's audit trail's receipts.
    fn audit_receipts(&self, tenant: &TenantId) -> Result<Vec<govern_receipt::Receipt>, StepError> {
        Ok(self
            .receipts(tenant, Some(GovernorKind::Audit), None)
            .map_err(|e| Refusal::LedgerUnavailable(e.to_string()))?)
    }

    /// Waits until the `invoice.closed` event of `period`'s recorded invoice is delivered to
    /// every endpoint of the tenant that takes it, reading the notifier's delivery records
    /// (`record_notification`) from the audit trail, at growing intervals; fails when an
    /// endpoint gave the event up or dropped it, or when the step's time limit passes.
    async fn invoice_notified(
        &self,
        cx: &OpContext<'_>,
        period: &BillingPeriod,
    ) -> Result<(), StepError> {
        let tenant = cx.tenant;
        let endpoints: Vec<String> = match &self.shared.notify {
            None => Vec::new(),
            Some(notify) => notify
                .lanes_of(tenant)
                .iter()
                .filter(|l| l.endpoint.wants(EventKind::InvoiceClosed))
                .map(|l| l.endpoint.id.clone())
                .collect(),
        };
        let limit = cx.limit.unwrap_or(SAGA_NOTIFY_WAIT);
        let deadline =
            cx.first_attempt.plus_ms(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX));
        let mut pause = Duration::from_millis(50);
        loop {
            let receipts = self.audit_receipts(tenant)?;
            let Some(invoice) = period_record(&receipts, "record_invoice", &period.label) else {
                return Err(StepError::Failed(format!(
                    "no invoice is recorded for {}",
                    period.label
                )));
            };
            let event = crate::notify::event_id(invoice.seq);
            let mut waiting = Vec::new();
            for endpoint in &endpoints {
                let last = receipts.iter().rev().find(|r| {
                    r.body.command == "record_notification"
                        && r.body.args.get("event_id") == Some(&event)
                        && r.body.args.get("endpoint") == Some(endpoint)
                        && r.body.args.get("outcome").map(String::as_str) != Some("failed")
                });
                match last.and_then(|r| r.body.args.get("outcome")).map(String::as_str) {
                    Some("delivered") => {}
                    Some(outcome) => {
                        return Err(StepError::Failed(format!(
                            "{event} (invoice {}) was not delivered to endpoint {endpoint}: {outcome}",
                            period.label
                        )));
                    }
                    None => waiting.push(endpoint.as_str()),
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if self.now() >= deadline {
                return Err(StepError::Failed(format!(
                    "{event} (invoice {}) not delivered to {} within {}",
                    period.label,
                    waiting.join(", "),
                    humantime::format_duration(limit)
                )));
            }
            if self.shared.is_shutting_down() {
                return Err(StepError::Refused(Refusal::ShuttingDown));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(SAGA_NOTIFY_POLL_MAX);
        }
    }
}

/// A request of `command` with `reason` and idempotency key `key`.
fn keyed_request<C>(command: C, reason: &str, key: &str) -> Result<Request<C>, StepError> {
    let reason = Reason::new(govern_governors::saga::cut(reason))
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let mut metadata = Metadata::new();
    metadata
        .insert(crate::IDEMPOTENCY_KEY, key)
        .map_err(|e| StepError::Failed(format!("idempotency key: {}", e.expected())))?;
    Ok(Request { command, reason, metadata })
}

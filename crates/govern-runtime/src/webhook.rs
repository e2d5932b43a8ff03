//! Payment-provider webhook deliveries (`docs/webhooks.md`): verified by signature, mapped onto
//! a billing or subscription command, deduplicated by the provider's event id (the idempotency
//! keys), and each delivery about a known tenant receipted in its audit trail as accepted,
//! duplicate or rejected, with why.
//!
//! What is not receipted, and why: a delivery whose signature does not verify (unauthenticated
//! input must not be able to write to the system of record: anyone could fill the ledger), and
//! a verified event that names no tenant of this runtime (there is no trail to put it in). Both
//! are logged and counted ([`WebhookStats`]) and answered with an error.

use std::sync::atomic::Ordering;

use govern_governors::audit::{self, WebhookOutcome};
use govern_governors::{Args, GovernorKind, Metadata, Reason, Request, TenantId};
use govern_webhooks::event::{IDEMPOTENCY_PREFIX, TENANT_METADATA_KEY};
use govern_webhooks::{
    EventError, Ignored, Mapping, Verifier, VerifyError, map_event, parse_event,
};

use crate::RawCommand;
use crate::error::{Accepted, CommandError, Refusal};
use crate::idempotency::{Begin, Fingerprint, IDEMPOTENCY_KEY};
use crate::registry::{Key, tenant_resource};
use crate::runtime::RuntimeHandle;

/// The idempotency key of a delivery's own record: `webhook-delivery:<event id>` (the mapped
/// command carries `webhook:<event id>`).
pub const DELIVERY_KEY_PREFIX: &str = "webhook-delivery:";

/// What became of one delivery that was receipted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The provider's event id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The tenant it is about.
    pub tenant: TenantId,
    /// Accepted, duplicate or rejected.
    pub outcome: WebhookOutcome,
    /// The command it became, `none: …` for an event that maps to none, or why it was
    /// rejected (as receipted).
    pub detail: String,
    /// The mapped command's receipt (accepted, or the first delivery's for a duplicate).
    pub command: Option<Accepted>,
    /// The `record_webhook` receipt of this delivery.
    pub record: Accepted,
}

/// Why a delivery was not taken and not receipted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature header is missing or malformed, no secret's signature matches, or the
    /// timestamp is outside the tolerance window.
    #[error("webhook signature refused: {0}")]
    Signature(#[from] VerifyError),
    /// Signed, but not an event (bad JSON, bad id, too long).
    #[error("webhook event refused: {0}")]
    Event(EventError),
    /// Signed, but names no tenant, or one this runtime has never provisioned.
    #[error("webhook event {event_id} is about no tenant of this runtime: {why}")]
    NoTenant {
        /// The event id.
        event_id: String,
        /// What was missing.
        why: String,
    },
    /// The runtime could not take it now (shutting down, busy, the same event in flight):
    /// nothing was decided; the provider should retry.
    #[error(transparent)]
    Unavailable(Refusal),
}

impl WebhookError {
    /// A stable code: `bad_signature`, `bad_event`, `unknown_tenant`, or the refusal's.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Signature(_) => "bad_signature",
            Self::Event(_) => "bad_event",
            Self::NoTenant { .. } => "unknown_tenant",
            Self::Unavailable(r) => r.code(),
        }
    }
}

/// [`RuntimeHandle::webhook_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Deliveries receipted (accepted, duplicate or rejected).
    pub receipted: u64,
    /// Refused for their signature (not receipted).
    pub bad_signature: u64,
    /// Signed but not an event (not receipted).
    pub bad_event: u64,
    /// Signed events about no tenant of this runtime (not receipted).
    pub no_tenant: u64,
}

impl RuntimeHandle {
    /// Takes one payment-provider webhook delivery: verifies `signature_header` over `body`
    /// with `verifier` at the runtime's clock, parses and maps the event
    /// (`govern_webhooks::map_event`), sends the mapped command with the idempotency key
    /// `webhook:<event id>`, and receipts the delivery in the tenant's audit trail
    /// (`record_webhook`, itself keyed `webhook-delivery:<event id>`): a repeat of an event
    /// id is receipted `duplicate` and answered the first outcome, running nothing again, for
    /// as long as idempotency keys are kept (24 h by default, and across restarts).
    ///
    /// # Errors
    /// [`WebhookError`]: nothing was receipted (see the module's docs for why).
    pub async fn deliver_webhook(
        &self,
        verifier: &Verifier,
        signature_header: &str,
        body: &[u8],
    ) -> Result<WebhookDelivery, WebhookError> {
        let counts = &self.shared.webhooks;
        let now = self.shared.clock.now();
        if let Err(e) = verifier.verify(signature_header, body, now.as_ms() / 1000) {
            counts.signature.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "webhook refused: signature");
            return Err(e.into());
        }
        let event = parse_event(body).map_err(|e| {
            counts.event.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "webhook refused: not an event");
            WebhookError::Event(e)
        })?;
        let no_tenant = |why: String| {
            counts.no_tenant.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event = %event.id, %why, "webhook refused: no tenant");
            WebhookError::NoTenant { event_id: event.id.clone(), why }
        };
        let tenant = event
            .object
            .metadata
            .get(TENANT_METADATA_KEY)
            .ok_or_else(|| no_tenant(format!("no {TENANT_METADATA_KEY:?} in its metadata")))?;
        let tenant = TenantId::new(tenant).map_err(|e| no_tenant(e.to_string()))?;
        if self.shared.registry.state(&tenant).is_none() {
            return Err(no_tenant(format!("tenant {tenant} was never provisioned")));
        }
        let event_type = event.kind.as_str().to_owned();
        let key = format!("{DELIVERY_KEY_PREFIX}{}", event.id);
        let marker = Fingerprint {
            kind: GovernorKind::Audit,
            resource: tenant_resource(&tenant),
            command: "record_webhook".into(),
            args: Args::from([
                ("event_id".into(), event.id.clone()),
                ("event_type".into(), event_type.clone()),
            ]),
            from_receipt: false,
        };
        let begun = self.shared.idempotency.begin(&tenant, &key, marker, now);
        // Only the delivery that began the key (a new event) records with it and finishes it:
        // a duplicate or a conflicting delivery must not touch the first one's entry.
        let owns_key = matches!(begun, Ok(Begin::Run));
        let (outcome, detail, command) = match begun {
            Err(Refusal::IdempotencyInFlight { key }) => {
                return Err(WebhookError::Unavailable(Refusal::IdempotencyInFlight { key }));
            }
            Err(e) => (WebhookOutcome::Rejected, audit::check_text(&e.to_string()), None),
            Ok(Begin::Replay(first)) => {
                let first = first.ok();
                let detail = match &first {
                    Some(r) => {
                        format!("event {} was delivered before (receipt {})", event.id, r.seq)
                    }
                    None => format!("event {} was delivered before", event.id),
                };
                (WebhookOutcome::Duplicate, detail, None)
            }
            Ok(Begin::Run) => {
                let taken = self.take(&event, &tenant).await;
                match taken {
                    Err(refusal) => {
                        // Nothing decided: free the key, let the provider retry.
                        self.shared.idempotency.finish(&tenant, &key, &Err(refusal.clone().into()));
                        return Err(WebhookError::Unavailable(refusal));
                    }
                    Ok(t) => t,
                }
            }
        };
        let record = audit::Command::RecordWebhook {
            event_id: event.id.clone(),
            event_type: audit::check_text(&event_type),
            outcome,
            detail: audit::check_text(&detail),
        };
        let mut metadata = Metadata::new();
        let source = metadata.insert("source", "webhook");
        let keyed = if owns_key { metadata.insert(IDEMPOTENCY_KEY, key.as_str()) } else { Ok(()) };
        let reason = Reason::new("payment provider webhook");
        let (Ok(()), Ok(()), Ok(reason)) = (source, keyed, reason) else {
            // A metadata value or reason this module builds is always valid; be safe anyway.
            return Err(WebhookError::Unavailable(Refusal::GovernorUnavailable {
                kind: GovernorKind::Audit,
                reason: "the delivery record could not be built".into(),
                retry_after_ms: None,
            }));
        };
        let request = Request { command: record, reason, metadata };
        let written = self.record_waiting(&tenant, request).await;
        if owns_key {
            self.shared.idempotency.finish(&tenant, &key, &written);
        }
        let record = written.map_err(|e| match e {
            CommandError::Refused(r) => WebhookError::Unavailable(r),
            CommandError::Rejected(r) => WebhookError::Unavailable(Refusal::GovernorUnavailable {
                kind: GovernorKind::Audit,
                reason: r.to_string(),
                retry_after_ms: None,
            }),
        })?;
        counts.receipted.fetch_add(1, Ordering::Relaxed);
        let command = match outcome {
            WebhookOutcome::Duplicate => self.first_command(&event, &tenant),
            _ => command,
        };
        Ok(WebhookDelivery {
            event_id: event.id.clone(),
            event_type,
            tenant,
            outcome,
            detail,
            command,
            record,
        })
    }

    /// Runs a new event: its mapped command, or nothing. `Err` only for a runtime refusal
    /// (nothing decided).
    async fn take(
        &self,
        event: &govern_webhooks::Event,
        tenant: &TenantId,
    ) -> Result<(WebhookOutcome, String, Option<Accepted>), Refusal> {
        let mapped = match map_event(event) {
            Err(e) => return Ok((WebhookOutcome::Rejected, e.to_string(), None)),
            Ok(Mapping::Ignored(why)) => {
                let why = match why {
                    Ignored::UnhandledType { event_type } => {
                        format!("none: type {event_type} is not mapped")
                    }
                    Ignored::NoStatusChange => "none: no status change".to_owned(),
                    Ignored::UnhandledStatus { status } => {
                        format!("none: status {status} is not mapped")
                    }
                    other => format!("none: {other:?}"),
                };
                return Ok((WebhookOutcome::Accepted, why, None));
            }
            Ok(Mapping::Command(c)) => c,
        };
        if &mapped.tenant != tenant {
            return Ok((WebhookOutcome::Rejected, "the event names two tenants".into(), None));
        }
        let what = format!("{} {} {}", mapped.kind.name(), mapped.resource, mapped.name);
        let outcome = self
            .command(RawCommand {
                tenant: mapped.tenant,
                kind: mapped.kind,
                resource: mapped.resource,
                name: mapped.name.to_owned(),
                args: mapped.args,
                reason: mapped.reason,
                metadata: mapped.metadata,
            })
            .await;
        match outcome {
            Ok(accepted) => {
                let detail = format!("{what} (receipt {})", accepted.seq);
                Ok((WebhookOutcome::Accepted, detail, Some(accepted)))
            }
            Err(CommandError::Rejected(r)) => {
                Ok((WebhookOutcome::Rejected, format!("{what}: {} {r}", r.kind()), None))
            }
            // Nothing decided (busy, stopping, ...): the provider's retry will be taken.
            Err(CommandError::Refused(r)) if r.is_transient() => Err(r),
            // A decision about it (the tenant suspended, a plan the catalog lacks, the event id
            // reused for another command, ...): receipted as rejected, with why.
            Err(CommandError::Refused(r)) => {
                Ok((WebhookOutcome::Rejected, format!("{what}: {} {r}", r.code()), None))
            }
        }
    }

    /// The first delivery's command receipt, for a duplicate: the mapped command's key
    /// replays it without running anything.
    fn first_command(&self, event: &govern_webhooks::Event, tenant: &TenantId) -> Option<Accepted> {
        let key = format!("{}{}", IDEMPOTENCY_PREFIX, event.id);
        self.shared.idempotency.accepted(tenant, &key)
    }

    /// Sends a record to the tenant's audit trail and waits until it is durable.
    pub(crate) async fn record_waiting(
        &self,
        tenant: &TenantId,
        request: Request<audit::Command>,
    ) -> crate::error::Outcome {
        let Some(admission) = self.shared.registry.admit_record(tenant) else {
            return Err(Refusal::UnknownTenant(tenant.clone()).into());
        };
        let key = Key { resource: tenant_resource(tenant), tenant: tenant.clone() };
        self.domains.get::<audit::Trail>().call(key, request, admission, None).await
    }

    /// Deliveries receipted and refused since start.
    #[must_use]
    pub fn webhook_stats(&self) -> WebhookStats {
        let c = &self.shared.webhooks;
        WebhookStats {
            receipted: c.receipted.load(Ordering::Relaxed),
            bad_signature: c.signature.load(Ordering::Relaxed),
            bad_event: c.event.load(Ordering::Relaxed),
            no_tenant: c.no_tenant.load(Ordering::Relaxed),
        }
    }
}

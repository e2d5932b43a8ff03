//! Provider events and the governor commands they imply.
//!
//! The accepted event is a minimal subset of Stripe's (unknown fields are ignored, so real
//! Stripe payloads parse):
//!
//! ```json
//! {"id": "evt_1", "type": "payment_intent.succeeded", "created": 1700000000,
//!  "data": {"object": {"id": "pi_1", "amount": 1999, "currency": "usd",
//!                      "metadata": {"govern_tenant": "acme", "govern_resource": "pay-1"}},
//!           "previous_attributes": {"status": "trialing"}}}
//! ```
//!
//! The tenant and resource come from the object's metadata ([`TENANT_METADATA_KEY`],
//! [`RESOURCE_METADATA_KEY`]), which the host sets when it creates the payment or the
//! subscription at the provider. Amounts are in the currency's minor unit, as Stripe sends
//! them. Each handled event maps to exactly one command, whose metadata carries the
//! idempotency key `webhook:<event id>`: a redelivered event is answered with the first
//! outcome and writes nothing. Webhooks confirm what the host started through govern
//! (`request_payment` then `authorize_payment`, `request_refund` then `process_refund`,
//! `request_cancellation` then `confirm_cancellation`); see `docs/webhooks.md`.

use std::collections::BTreeMap;

use govern_governors::{Args, Currency, GovernorKind, IdError, Money, ResourceId, TenantId};
use rust_decimal::Decimal;
use serde::Deserialize;

/// Longest event body accepted, in bytes.
pub const EVENT_BODY_LEN_MAX: usize = 64 * 1024;
/// Longest provider event id, in bytes (Stripe's are about 30).
pub const EVENT_ID_LEN_MAX: usize = 255;
/// Object metadata key naming the govern tenant.
pub const TENANT_METADATA_KEY: &str = "govern_tenant";
/// Object metadata key naming the governed resource (the payment or the subscription).
pub const RESOURCE_METADATA_KEY: &str = "govern_resource";
/// The command metadata key of the idempotency key (the runtime's `IDEMPOTENCY_KEY`).
pub const IDEMPOTENCY_METADATA_KEY: &str = "idempotency_key";
/// The command metadata key recording the provider event type.
pub const EVENT_TYPE_METADATA_KEY: &str = "webhook_event_type";
/// Prefix of the idempotency key: `webhook:<event id>`.
pub const IDEMPOTENCY_PREFIX: &str = "webhook:";

/// Why an event is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Longer than [`EVENT_BODY_LEN_MAX`] bytes.
    #[error("event body is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON of the expected shape.
    #[error("event is not valid: {message} at line {line} column {column}")]
    Json {
        /// serde_json's message.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The event id is empty, too long, or holds other than printable ASCII.
    #[error("event id must be 1 to {max} printable ASCII bytes without spaces")]
    BadEventId {
        /// [`EVENT_ID_LEN_MAX`].
        max: usize,
    },
    /// The object's metadata has no tenant or resource.
    #[error("event object metadata has no {key:?}")]
    MissingMetadata {
        /// The missing key.
        key: &'static str,
    },
    /// The tenant in the metadata is not a valid tenant id.
    #[error("event tenant {value:?} is not a valid tenant id: {source}")]
    BadTenant {
        /// The value found.
        value: String,
        /// Why.
        source: IdError,
    },
    /// The resource in the metadata is not a valid resource id.
    #[error("event resource {value:?} is not a valid resource id: {source}")]
    BadResource {
        /// The value found.
        value: String,
        /// Why.
        source: IdError,
    },
    /// A field this event type needs is absent.
    #[error("{event_type} event has no data.object.{field}")]
    MissingField {
        /// The event type.
        event_type: String,
        /// The field.
        field: &'static str,
    },
    /// The currency is not an ISO 4217 code.
    #[error("unknown currency {code:?}")]
    UnknownCurrency {
        /// The code found.
        code: String,
    },
    /// The amount (minor units) is not positive, or does not fit a decimal.
    #[error("amount {amount} (minor units) is not a positive amount")]
    BadAmount {
        /// The amount found.
        amount: i64,
    },
}

/// The event types handled; anything else is [`EventKind::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `payment_intent.succeeded`.
    PaymentIntentSucceeded,
    /// `payment_intent.payment_failed`.
    PaymentIntentPaymentFailed,
    /// `charge.refunded`.
    ChargeRefunded,
    /// `charge.dispute.created`.
    ChargeDisputeCreated,
    /// `customer.subscription.updated`.
    CustomerSubscriptionUpdated,
    /// `customer.subscription.deleted`.
    CustomerSubscriptionDeleted,
    /// Any other type (ignored).
    Other(String),
}

impl EventKind {
    /// The kind of a type string.
    #[must_use]
    pub fn from_type(t: &str) -> Self {
        match t {
            "payment_intent.succeeded" => Self::PaymentIntentSucceeded,
            "payment_intent.payment_failed" => Self::PaymentIntentPaymentFailed,
            "charge.refunded" => Self::ChargeRefunded,
            "charge.dispute.created" => Self::ChargeDisputeCreated,
            "customer.subscription.updated" => Self::CustomerSubscriptionUpdated,
            "customer.subscription.deleted" => Self::CustomerSubscriptionDeleted,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The provider's type string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::PaymentIntentSucceeded => "payment_intent.succeeded",
            Self::PaymentIntentPaymentFailed => "payment_intent.payment_failed",
            Self::ChargeRefunded => "charge.refunded",
            Self::ChargeDisputeCreated => "charge.dispute.created",
            Self::CustomerSubscriptionUpdated => "customer.subscription.updated",
            Self::CustomerSubscriptionDeleted => "customer.subscription.deleted",
            Self::Other(t) => t,
        }
    }
}

/// The event's object, reduced to the fields the mapping reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct EventObject {
    /// The object's id (`pi_...`, `ch_...`, `dp_...`, `sub_...`).
    #[serde(default)]
    pub id: Option<String>,
    /// Amount in the currency's minor unit.
    #[serde(default)]
    pub amount: Option<i64>,
    /// ISO 4217 code, any case.
    #[serde(default)]
    pub currency: Option<String>,
    /// A subscription's status.
    #[serde(default)]
    pub status: Option<String>,
    /// The host's metadata: the tenant and resource.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// A failed payment's error.
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
    /// A subscription's plan.
    #[serde(default)]
    pub plan: Option<Plan>,
}

/// A failed payment's error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct PaymentError {
    /// The decline code.
    #[serde(default)]
    pub code: Option<String>,
}

/// A subscription's plan.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Plan {
    /// The plan id, used as govern's plan id.
    pub id: String,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: u64,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: EventObject,
    #[serde(default)]
    previous_attributes: Option<Previous>,
}

#[derive(Deserialize)]
struct Previous {
    #[serde(default)]
    status: Option<String>,
}

/// A parsed provider event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The provider's event id (the idempotency key's tail).
    pub id: String,
    /// Its type.
    pub kind: EventKind,
    /// When the provider created it, Unix seconds.
    pub created: u64,
    /// Its object.
    pub object: EventObject,
    /// `data.previous_attributes.status`, when the status changed.
    pub previous_status: Option<String>,
}

/// Parses an event body.
///
/// # Errors
/// [`EventError::TooLong`], [`EventError::Json`] (with line and column) or
/// [`EventError::BadEventId`].
pub fn parse_event(body: &[u8]) -> Result<Event, EventError> {
    if body.len() > EVENT_BODY_LEN_MAX {
        return Err(EventError::TooLong { len: body.len(), max: EVENT_BODY_LEN_MAX });
    }
    let raw: RawEvent = serde_json::from_slice(body).map_err(|e| EventError::Json {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })?;
    let id_ok = !raw.id.is_empty()
        && raw.id.len() <= EVENT_ID_LEN_MAX
        && raw.id.bytes().all(|b| b.is_ascii_graphic());
    if !id_ok {
        return Err(EventError::BadEventId { max: EVENT_ID_LEN_MAX });
    }
    Ok(Event {
        id: raw.id,
        kind: EventKind::from_type(&raw.kind),
        created: raw.created,
        object: raw.data.object,
        previous_status: raw.data.previous_attributes.and_then(|p| p.status),
    })
}

/// A governor command implied by an event, as plain data (what the runtime's `RawCommand`
/// holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedCommand {
    /// The governor kind (`billing` or `subscription`).
    pub kind: GovernorKind,
    /// The tenant.
    pub tenant: TenantId,
    /// The resource.
    pub resource: ResourceId,
    /// The command name, one of the governor's `Command::NAMES`.
    pub name: &'static str,
    /// Its arguments.
    pub args: Args,
    /// Why: `payment provider webhook <type> <event id>`.
    pub reason: String,
    /// `idempotency_key` = `webhook:<event id>` and `webhook_event_type` = the type.
    pub metadata: Vec<(String, String)>,
}

/// Why an event implies no command (it is acknowledged, not acted on).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ignored {
    /// A type the mapping does not handle.
    UnhandledType {
        /// The type.
        event_type: String,
    },
    /// `customer.subscription.updated` without a status change (no
    /// `previous_attributes.status`): a change govern does not track.
    NoStatusChange,
    /// `customer.subscription.updated` to a status that maps to no command.
    UnhandledStatus {
        /// The new status.
        status: String,
    },
}

/// What an event means for the governors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// One command to send.
    Command(MappedCommand),
    /// Nothing to do, and why.
    Ignored(Ignored),
}

/// Maps an event onto the command it implies.
///
/// | type | governor | command | arguments |
/// |---|---|---|---|
/// | `payment_intent.succeeded` | billing | `settle_payment` | `amount`, `currency` |
/// | `payment_intent.payment_failed` | billing | `fail_payment` | `code`?, `amount`, `currency` |
/// | `charge.refunded` | billing | `settle_refund` | none (the pending refund's) |
/// | `charge.dispute.created` | billing | `dispute_payment` | `dispute_id` |
/// | `customer.subscription.updated` | subscription | by status, see below | |
/// | `customer.subscription.deleted` | subscription | `terminate` | |
///
/// Subscription status changes: to `active` from `past_due`, `unpaid` or `paused` is
/// `resume`, from anything else `activate` (with `plan` = the object's plan id, if any); to
/// `past_due` or `unpaid` is `suspend`; to `paused` from `trialing` is `end_trial`, else
/// `pause`; to `canceled` is `terminate`. Other statuses are [`Ignored::UnhandledStatus`].
///
/// # Errors
/// [`EventError`]: tenant or resource missing or invalid, a needed field missing, an
/// unknown currency or a non-positive amount.
pub fn map_event(event: &Event) -> Result<Mapping, EventError> {
    use EventKind as K;
    let (kind, name, args) = match &event.kind {
        K::Other(t) => {
            return Ok(Mapping::Ignored(Ignored::UnhandledType { event_type: t.clone() }));
        }
        K::PaymentIntentSucceeded => (GovernorKind::Billing, "settle_payment", money_args(event)?),
        K::PaymentIntentPaymentFailed => {
            let mut args = money_args(event)?;
            let code = event.object.last_payment_error.as_ref().and_then(|e| e.code.clone());
            if let Some(code) = code {
                args.insert("code".into(), code);
            }
            (GovernorKind::Billing, "fail_payment", args)
        }
        K::ChargeRefunded => (GovernorKind::Billing, "settle_refund", Args::new()),
        K::ChargeDisputeCreated => {
            let id = event.object.id.clone().ok_or_else(|| missing(event, "id"))?;
            (GovernorKind::Billing, "dispute_payment", Args::from([("dispute_id".into(), id)]))
        }
        K::CustomerSubscriptionDeleted => (GovernorKind::Subscription, "terminate", Args::new()),
        K::CustomerSubscriptionUpdated => {
            let Some(previous) = event.previous_status.as_deref() else {
                return Ok(Mapping::Ignored(Ignored::NoStatusChange));
            };
            let status = event.object.status.as_deref().ok_or_else(|| missing(event, "status"))?;
            let mut args = Args::new();
            let name = match (previous, status) {
                ("past_due" | "unpaid" | "paused", "active") => "resume",
                (_, "active") => {
                    if let Some(plan) = &event.object.plan {
                        args.insert("plan".into(), plan.id.clone());
                    }
                    "activate"
                }
                (_, "past_due" | "unpaid") => "suspend",
                ("trialing", "paused") => "end_trial",
                (_, "paused") => "pause",
                (_, "canceled") => "terminate",
                (_, other) => {
                    return Ok(Mapping::Ignored(Ignored::UnhandledStatus {
                        status: other.to_owned(),
                    }));
                }
            };
            (GovernorKind::Subscription, name, args)
        }
    };
    let (tenant, resource) = target(&event.object)?;
    Ok(Mapping::Command(MappedCommand {
        kind,
        tenant,
        resource,
        name,
        args,
        reason: format!("payment provider webhook {} {}", event.kind.as_str(), event.id),
        metadata: vec![
            (IDEMPOTENCY_METADATA_KEY.to_owned(), format!("{IDEMPOTENCY_PREFIX}{}", event.id)),
            (EVENT_TYPE_METADATA_KEY.to_owned(), event.kind.as_str().to_owned()),
        ],
    }))
}

fn missing(event: &Event, field: &'static str) -> EventError {
    EventError::MissingField { event_type: event.kind.as_str().to_owned(), field }
}

/// The tenant and resource named by the object's metadata.
fn target(object: &EventObject) -> Result<(TenantId, ResourceId), EventError> {
    let get =
        |key: &'static str| object.metadata.get(key).ok_or(EventError::MissingMetadata { key });
    let t = get(TENANT_METADATA_KEY)?;
    let tenant =
        TenantId::new(t).map_err(|source| EventError::BadTenant { value: t.clone(), source })?;
    let r = get(RESOURCE_METADATA_KEY)?;
    let resource = ResourceId::new(r)
        .map_err(|source| EventError::BadResource { value: r.clone(), source })?;
    Ok((tenant, resource))
}

/// `amount` (a decimal in major units) and `currency` (upper-case ISO code) from the
/// object's minor-unit amount and currency.
fn money_args(event: &Event) -> Result<Args, EventError> {
    let minor = event.object.amount.ok_or_else(|| missing(event, "amount"))?;
    let code = event.object.currency.as_deref().ok_or_else(|| missing(event, "currency"))?;
    let currency = Currency::from_code(&code.to_ascii_uppercase())
        .ok_or_else(|| EventError::UnknownCurrency { code: code.to_owned() })?;
    let amount = Decimal::try_new(minor, currency.decimals())
        .map_err(|_| EventError::BadAmount { amount: minor })?;
    let money =
        Money::new(amount, currency).map_err(|_| EventError::BadAmount { amount: minor })?;
    Ok(Args::from([
        ("amount".into(), money.amount().to_string()),
        ("currency".into(), money.currency().code().to_owned()),
    ]))
}

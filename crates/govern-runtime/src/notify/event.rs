//! Events from receipts, purely: which accepted transitions are worth telling a tenant's
//! endpoints about ([`RULES`], plus a host's own [`Rule`]s), the event each one is, and the
//! JSON body an endpoint receives. No I/O, no clock: the same receipt always gives the same
//! event, with the same id, before and after a restart.

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::ReceiptBody;

/// What an outbound notification is about. Stable names (`quota.warning`, ...) go into the
/// body, the `govern-event-type` header and the `record_notification` receipts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventKind {
    /// A quota crossed into `warning` (75 % of its limit, or escalated by an operator).
    QuotaWarning,
    /// A quota crossed into `throttled` (90 %): its traffic is throttled.
    QuotaCritical,
    /// A quota crossed into `exceeded` (100 %).
    QuotaExhausted,
    /// A payment failed (the billing governor's `fail_payment`).
    PaymentFailed,
    /// The tenant was suspended (`suspend_tenant`).
    TenantSuspended,
    /// An account of the tenant was suspended (`suspend_account`).
    AccountSuspended,
    /// An SLA violation was receipted (the audit trail's `record_sla_violation`; a recovery,
    /// `record_sla_recovery`, is no event).
    SlaViolated,
    /// A billing period was closed into an invoice (the audit trail's `record_invoice`): the
    /// billing run's notification.
    InvoiceClosed,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::QuotaWarning,
        Self::QuotaCritical,
        Self::QuotaExhausted,
        Self::PaymentFailed,
        Self::TenantSuspended,
        Self::AccountSuspended,
        Self::SlaViolated,
        Self::InvoiceClosed,
    ];

    /// The stable name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::QuotaWarning => "quota.warning",
            Self::QuotaCritical => "quota.critical",
            Self::QuotaExhausted => "quota.exhausted",
            Self::PaymentFailed => "payment.failed",
            Self::TenantSuspended => "tenant.suspended",
            Self::AccountSuspended => "account.suspended",
            Self::SlaViolated => "sla.violated",
            Self::InvoiceClosed => "invoice.closed",
        }
    }

    /// The kind of a stable name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of the mapping from receipts to events: a receipt of `governor` whose command
/// is `command` (any, if `None`) and whose state went *into* `to` from another state (any
/// transition, if `None`) is an event of kind `event`. The first matching rule wins.
///
/// This is the hook for new event sources: a source adds its rule to [`RULES`] (as SLA
/// monitoring did, `record_sla_violation`), or a host adds one with `Notifications::rule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The governor whose receipts it looks at.
    pub governor: GovernorKind,
    /// The command's stable name, or any.
    pub command: Option<&'static str>,
    /// The state entered (from another one), or any transition.
    pub to: Option<&'static str>,
    /// The event it is.
    pub event: EventKind,
}

impl Rule {
    fn matches(&self, governor: GovernorKind, command: &str, from: &str, to: &str) -> bool {
        self.governor == governor
            && self.command.is_none_or(|c| c == command)
            && self.to.is_none_or(|t| t == to && from != to)
    }
}

/// The shipped mapping: quota threshold crossings (by the state entered, whichever command
/// moved it: `record_usage`, `check_quota` or an operator's escalation), payment failures,
/// suspensions, closed invoices, SLA violations.
pub const RULES: &[Rule] = &[
    Rule {
        governor: GovernorKind::Quota,
        command: None,
        to: Some("warning"),
        event: EventKind::QuotaWarning,
    },
    Rule {
        governor: GovernorKind::Quota,
        command: None,
        to: Some("throttled"),
        event: EventKind::QuotaCritical,
    },
    Rule {
        governor: GovernorKind::Quota,
        command: None,
        to: Some("exceeded"),
        event: EventKind::QuotaExhausted,
    },
    Rule {
        governor: GovernorKind::Billing,
        command: Some("fail_payment"),
        to: None,
        event: EventKind::PaymentFailed,
    },
    Rule {
        governor: GovernorKind::Tenant,
        command: Some("suspend_tenant"),
        to: None,
        event: EventKind::TenantSuspended,
    },
    Rule {
        governor: GovernorKind::Account,
        command: Some("suspend_account"),
        to: None,
        event: EventKind::AccountSuspended,
    },
    Rule {
        governor: GovernorKind::Audit,
        command: Some("record_invoice"),
        to: None,
        event: EventKind::InvoiceClosed,
    },
    Rule {
        governor: GovernorKind::Audit,
        command: Some("record_sla_violation"),
        to: None,
        event: EventKind::SlaViolated,
    },
];

/// The event kind of a receipt with these fields, by the first rule of `rules` that matches.
#[must_use]
pub fn kind_of(
    rules: &[Rule],
    governor: GovernorKind,
    command: &str,
    from: &str,
    to: &str,
) -> Option<EventKind> {
    rules.iter().find(|r| r.matches(governor, command, from, to)).map(|r| r.event)
}

/// The prefix of every event id: `evt_<seq>`.
pub const EVENT_ID_PREFIX: &str = "evt_";

/// The id of the event a receipt at sequence number `seq` is: stable across restarts, unique
/// in the ledger.
#[must_use]
pub fn event_id(seq: u64) -> String {
    format!("{EVENT_ID_PREFIX}{seq}")
}

/// The sequence number in an event id, if it is one.
#[must_use]
pub fn event_seq(id: &str) -> Option<u64> {
    let digits = id.strip_prefix(EVENT_ID_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq: u64 = digits.parse().ok()?;
    // One spelling per id: `evt_07` is not `evt_7`.
    (event_id(seq) == id).then_some(seq)
}

/// One event: a durable receipt that a rule maps, with what an endpoint is told of it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// The receipt's sequence number (the id is `evt_<seq>`).
    pub seq: u64,
    /// What it is.
    pub kind: EventKind,
    /// The tenant.
    pub tenant: TenantId,
    /// The governor whose receipt it is.
    pub governor: GovernorKind,
    /// Its resource.
    pub resource: ResourceId,
    /// The accepted command.
    pub command: String,
    /// The state before and after.
    pub from: String,
    /// See `from`.
    pub to: String,
    /// When it was decided.
    pub at: Timestamp,
    /// The receipt's hash (hex), so a receiver can ask the ledger for its proof.
    pub receipt_hash: String,
}

impl Event {
    /// The event a receipt body at `seq` with hash `hash` is, by `rules`.
    #[must_use]
    pub fn of(rules: &[Rule], body: &ReceiptBody, seq: u64, hash: String) -> Option<Self> {
        let kind = kind_of(rules, body.governor, &body.command, &body.state_from, &body.state_to)?;
        Some(Self {
            seq,
            kind,
            tenant: body.tenant.clone(),
            governor: body.governor,
            resource: body.resource.clone(),
            command: body.command.to_string(),
            from: body.state_from.to_string(),
            to: body.state_to.to_string(),
            at: body.timestamp,
            receipt_hash: hash,
        })
    }

    /// `evt_<seq>`.
    #[must_use]
    pub fn id(&self) -> String {
        event_id(self.seq)
    }

    /// The JSON body sent to endpoints: one encoding per event (fixed key order), the same
    /// on every attempt and to every endpoint.
    ///
    /// ```text
    /// {"id":"evt_12","type":"quota.warning","tenant":"acme","created_ms":1767225600000,
    ///  "data":{"governor":"quota","resource":"api","command":"record_usage",
    ///          "from":"normal","to":"warning","receipt_seq":12,"receipt_hash":"ab12…"}}
    /// ```
    #[must_use]
    pub fn body(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "id": self.id(),
            "type": self.kind.name(),
            "tenant": self.tenant.as_str(),
            "created_ms": self.at.as_ms(),
            "data": {
                "governor": self.governor.name(),
                "resource": self.resource.as_str(),
                "command": self.command,
                "from": self.from,
                "to": self.to,
                "receipt_seq": self.seq,
                "receipt_hash": self.receipt_hash,
            },
        });
        // serde_json's map keeps keys sorted without `preserve_order`: one encoding.
        body.to_string().into_bytes()
    }
}

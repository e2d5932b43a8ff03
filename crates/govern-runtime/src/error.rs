//! What a command can come back with besides acceptance: a governor's rejection, or a
//! refusal by the runtime before any governor decided. Both are values, with stable codes.
//!
//! All of them serialise with serde as the JSON a host returns (`docs/runtime-semantics.md`,
//! "For hosts: outcomes as JSON"): [`Accepted`] as its fields, [`CommandError`] and
//! [`Refusal`] as `{"code", "status", "message", ...details}`.

use std::fmt;

use govern_governors::{GovernorKind, Rejection, TenantId};
use govern_receipt::Digest;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// A command the governor accepted: its receipt is in the ledger.
///
/// As JSON (serde), the fields in this order, the hash in lowercase hex:
/// `{"seq":7,"hash":"<64 hex>","resource_seq":1,"from":"free_trial","to":"active"}`.
/// (Serialise only: the state names are the governors' own `&'static str`s.)
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    /// The receipt's global sequence number.
    pub seq: u64,
    /// The receipt's hash.
    pub hash: Digest,
    /// The receipt's per-resource sequence number.
    pub resource_seq: u64,
    /// The state before.
    pub from: &'static str,
    /// The state after.
    pub to: &'static str,
}

/// The runtime refused a command before a governor decided it. Nothing was recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No tenant of this id was ever provisioned.
    #[error("unknown tenant {0}")]
    UnknownTenant(TenantId),
    /// The tenant is provisioned but not active yet.
    #[error("tenant {0} is not active yet")]
    TenantNotActive(TenantId),
    /// The tenant is suspended.
    #[error("tenant {0} is suspended")]
    TenantSuspended(TenantId),
    /// The tenant is deprovisioned.
    #[error("tenant {0} is deprovisioned")]
    TenantDeprovisioned(TenantId),
    /// A bound on queued or in-flight commands is reached; retry later.
    #[error("busy: {what} is at its limit of {max}")]
    Busy {
        /// Which bound: `tenant in-flight commands` or `governor inbox`.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// No reply came within the reply timeout. The command may still be applied: its
    /// receipt, if any, says so.
    #[error("no reply within {after_ms} ms; the outcome is unknown until the ledger is read")]
    Timeout {
        /// The timeout.
        after_ms: u64,
    },
    /// The runtime is shutting down or has stopped.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// The ledger refuses appends (a store failure poisoned it); nothing can be recorded. (A
    /// command that races shutdown, after the ledger was closed, is refused `ShuttingDown`.)
    #[error("the ledger is unavailable: {0}")]
    LedgerUnavailable(String),
    /// The governor could not be started (its supervisor is restarting or gave up), or it is
    /// quarantined after crashing again and again: retry after `retry_after_ms` when given.
    #[error("the {kind} governor is unavailable: {reason}")]
    GovernorUnavailable {
        /// The governor kind.
        kind: GovernorKind,
        /// Why.
        reason: String,
        /// When a retry may succeed (a quarantine's end), in milliseconds from now.
        retry_after_ms: Option<u64>,
    },
    /// The resource id of a tenant governor must be the tenant's own id.
    #[error("the tenant governor of {tenant} is addressed by the tenant id itself")]
    TenantResourceMismatch {
        /// The tenant.
        tenant: TenantId,
    },
    /// `check` was asked of a runtime started without a plan catalog.
    #[error("checks need a plan catalog: start the runtime with one (RuntimeBuilder::catalog)")]
    NoCatalog,
    /// A subscription names a plan the runtime's catalog does not have.
    #[error("plan {plan:?} is not in the catalog")]
    UnknownPlan {
        /// The plan named.
        plan: String,
    },
    /// The command is the runtime's own (a quota's `record_usage`: usage goes through
    /// `RuntimeHandle::record_usage`).
    #[error("{command} is sent by the runtime only")]
    Reserved {
        /// The command.
        command: &'static str,
    },
    /// A usage event is malformed or cannot be counted (zero, too old, in the future, a
    /// meter the tenant's plans do not limit, ...). Nothing was counted.
    #[error("usage refused: {0}")]
    Usage(#[from] govern_usage::UsageError),
    /// The idempotency key was first used for another request (another governor, resource,
    /// command or arguments). Nothing was done.
    #[error("idempotency key {key:?} was used for another request")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
    /// The first request with this idempotency key is still in flight: retry once it is
    /// answered (its outcome is then replayed).
    #[error("the request with idempotency key {key:?} is still in flight")]
    IdempotencyInFlight {
        /// The key.
        key: String,
    },
    /// A saga cannot be run: no such saga is registered, a parameter has no value, or its
    /// record was refused.
    #[error("saga refused: {problem}")]
    BadSaga {
        /// What is wrong.
        problem: String,
    },
    /// A catalog reload was refused: the new catalog is invalid (every problem is listed),
    /// or it drops a plan a live subscription is on. Nothing changed.
    #[error("catalog refused: {problems}")]
    BadCatalog {
        /// The problems, one per line.
        problems: String,
    },
    /// A billing period that is not a month `YYYY-MM` from 1970 to 9999.
    #[error("`{period}` is not a billing period (YYYY-MM)")]
    BadPeriod {
        /// What was given.
        period: String,
    },
    /// The billing period has not ended by the runtime's clock: it cannot be closed yet.
    #[error("billing period {period} has not ended")]
    PeriodOpen {
        /// The period.
        period: String,
    },
    /// The tenant's shard is not owned by this node (docs/scaling.md): send the request to
    /// `owner` at `address`, when known (as Redis Cluster's `MOVED`). Nothing was decided.
    #[error("tenant's shard {shard} is owned by {}", owner.as_deref().unwrap_or("no node right now"))]
    WrongNode {
        /// The tenant's shard.
        shard: u32,
        /// The node that owns it, as far as this node knows; `None` while no node does.
        owner: Option<String>,
        /// The owner's advertised address (`host:port`).
        address: Option<String>,
    },
    /// The tenant has nothing to invoice for the period (no live subscription at its end, a
    /// plan the catalog lacks, a price that cannot be computed). Nothing written.
    #[error("nothing to invoice: {reason}")]
    NotInvoiceable {
        /// Why.
        reason: String,
    },
}

impl Refusal {
    /// The stable snake_case code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownTenant(_) => "unknown_tenant",
            Self::TenantNotActive(_) => "tenant_not_active",
            Self::TenantSuspended(_) => "tenant_suspended",
            Self::TenantDeprovisioned(_) => "tenant_deprovisioned",
            Self::Busy { .. } => "busy",
            Self::Timeout { .. } => "timeout",
            Self::ShuttingDown => "shutting_down",
            Self::LedgerUnavailable(_) => "ledger_unavailable",
            Self::GovernorUnavailable { .. } => "governor_unavailable",
            Self::TenantResourceMismatch { .. } => "tenant_resource_mismatch",
            Self::UnknownPlan { .. } => "unknown_plan",
            Self::NoCatalog => "no_catalog",
            Self::Reserved { .. } => "reserved",
            Self::Usage(_) => "bad_usage",
            Self::BadCatalog { .. } => "bad_catalog",
            Self::IdempotencyConflict { .. } => "idempotency_conflict",
            Self::IdempotencyInFlight { .. } => "idempotency_in_flight",
            Self::BadSaga { .. } => "bad_saga",
            Self::BadPeriod { .. } => "bad_period",
            Self::PeriodOpen { .. } => "period_open",
            Self::NotInvoiceable { .. } => "not_invoiceable",
            Self::WrongNode { .. } => "wrong_node",
        }
    }

    /// Whether nothing was decided and the same request may succeed later: the runtime was
    /// busy, slow, stopping, its ledger or the governor unavailable, or the same idempotency
    /// key still in flight. Every other refusal is a decision about the request (an unknown or
    /// suspended tenant, a reserved command, a conflict, ...): retrying changes nothing.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Busy { .. }
                | Self::Timeout { .. }
                | Self::ShuttingDown
                | Self::LedgerUnavailable(_)
                | Self::GovernorUnavailable { .. }
                | Self::IdempotencyInFlight { .. }
                | Self::WrongNode { .. }
        )
    }

    /// How long to wait before retrying, when the refusal says (a quarantined governor).
    #[must_use]
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::GovernorUnavailable { retry_after_ms, .. } => *retry_after_ms,
            // A shard between owners: a takeover is a lease renewal period away.
            Self::WrongNode { owner: None, .. } => Some(1_000),
            _ => None,
        }
    }

    /// The HTTP status a host's API answers with (see [`CommandError::http_status`]).
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownTenant(_) => 404,
            Self::TenantNotActive(_) | Self::TenantSuspended(_) => 403,
            Self::TenantDeprovisioned(_) => 410,
            Self::Busy { .. } => 429,
            Self::Timeout { .. } => 504,
            Self::ShuttingDown | Self::LedgerUnavailable(_) | Self::GovernorUnavailable { .. } => {
                503
            }
            Self::TenantResourceMismatch { .. } => 400,
            Self::UnknownPlan { .. } | Self::Usage(_) | Self::BadCatalog { .. } => 422,
            Self::NoCatalog => 501,
            Self::Reserved { .. } => 403,
            Self::IdempotencyConflict { .. } => 422,
            Self::IdempotencyInFlight { .. } => 409,
            Self::BadSaga { .. } => 422,
            Self::BadPeriod { .. } | Self::NotInvoiceable { .. } => 422,
            Self::PeriodOpen { .. } => 409,
            Self::WrongNode { .. } => 421,
        }
    }
}

/// Every code a [`CommandError`] can have: the rejection kinds, then the refusal codes.
pub const ERROR_CODES: &[&str] = &[
    "invalid_transition",
    "invalid_argument",
    "too_early",
    "precondition_failed",
    "unknown_tenant",
    "tenant_not_active",
    "tenant_suspended",
    "tenant_deprovisioned",
    "busy",
    "timeout",
    "shutting_down",
    "ledger_unavailable",
    "governor_unavailable",
    "tenant_resource_mismatch",
    "unknown_plan",
    "no_catalog",
    "reserved",
    "bad_usage",
    "bad_catalog",
    "idempotency_conflict",
    "idempotency_in_flight",
    "bad_saga",
    "bad_period",
    "period_open",
    "not_invoiceable",
    "wrong_node",
];

/// Why a command was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The governor decided against it (invalid transition, bad argument, guard).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The runtime refused it before any governor decided.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl CommandError {
    /// The stable code: the rejection's kind or the refusal's code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected(r) => r.kind(),
            Self::Refused(r) => r.code(),
        }
    }

    /// The HTTP status a host's API would answer with, the same for every host: a governor's
    /// rejection is 409 Conflict (the command does not fit the resource's state:
    /// `invalid_transition`, `too_early`, `precondition_failed`) or 422 Unprocessable Content
    /// (`invalid_argument`); a refusal is 404 (unknown tenant), 403 (tenant not active or
    /// suspended), 410 (deprovisioned), 429 (busy: retry later), 504 (no reply in time),
    /// 503 (shutting down, ledger or governor unavailable), 400 (a tenant governor addressed
    /// by another id) or 422 (a plan the catalog does not have). An accepted command is 200.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Rejected(r) if r.kind() == "invalid_argument" => 422,
            Self::Rejected(_) => 409,
            Self::Refused(r) => r.http_status(),
        }
    }
}

/// The answer to one command.
///
/// A host answers `Ok(accepted)` with status 200 and `accepted` as JSON, and `Err(e)` with
/// [`CommandError::http_status`] and `e` as JSON (serde's own form of a `Result`,
/// `{"Ok": ...}` or `{"Err": ...}`, is not the shape to return).
pub type Outcome = Result<Accepted, CommandError>;

/// One detail field of an error's JSON object.
enum Detail<'a> {
    Str(&'a str),
    U64(u64),
}

impl Serialize for Detail<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Str(s) => serializer.serialize_str(s),
            Self::U64(n) => serializer.serialize_u64(*n),
        }
    }
}

/// The detail fields of one error, in order; `None` is left out.
type Details<'a> = [Option<(&'static str, Detail<'a>)>; 3];

/// A `Display` written as a JSON string without an intermediate `String`.
struct Message<'a>(&'a dyn fmt::Display);

impl Serialize for Message<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// `{"code", "status", "message", ...details}`: the one JSON shape of every error.
fn serialize_error<S: Serializer>(
    serializer: S,
    code: &str,
    status: u16,
    message: &dyn fmt::Display,
    details: &Details<'_>,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(3 + details.iter().flatten().count()))?;
    map.serialize_entry("code", code)?;
    map.serialize_entry("status", &status)?;
    map.serialize_entry("message", &Message(message))?;
    for (key, value) in details.iter().flatten() {
        map.serialize_entry(key, value)?;
    }
    map.end()
}

impl Refusal {
    /// The detail fields of this refusal's JSON object.
    fn details(&self) -> Details<'_> {
        let str = |key, value| Some((key, Detail::Str(value)));
        let u64 = |key, value| Some((key, Detail::U64(value)));
        match self {
            Self::UnknownTenant(t)
            | Self::TenantNotActive(t)
            | Self::TenantSuspended(t)
            | Self::TenantDeprovisioned(t)
            | Self::TenantResourceMismatch { tenant: t } => [str("tenant", t.as_str()), None, None],
            Self::Busy { what, max } => [str("what", what), u64("max", *max as u64), None],
            Self::Timeout { after_ms } => [u64("after_ms", *after_ms), None, None],
            Self::GovernorUnavailable { kind, retry_after_ms, .. } => [
                str("governor", kind.name()),
                retry_after_ms.and_then(|ms| u64("retry_after_ms", ms)),
                None,
            ],
            Self::UnknownPlan { plan } => [str("plan", plan), None, None],
            Self::BadPeriod { period } | Self::PeriodOpen { period } => {
                [str("period", period), None, None]
            }
            Self::Reserved { command } => [str("command", command), None, None],
            Self::WrongNode { shard, owner, address } => [
                u64("shard", u64::from(*shard)),
                owner.as_deref().and_then(|o| str("owner", o)),
                address.as_deref().and_then(|a| str("address", a)),
            ],
            Self::IdempotencyConflict { key } | Self::IdempotencyInFlight { key } => {
                [str("key", key), None, None]
            }
            Self::ShuttingDown
            | Self::LedgerUnavailable(_)
            | Self::NoCatalog
            | Self::Usage(_)
            | Self::BadCatalog { .. }
            | Self::BadSaga { .. }
            | Self::NotInvoiceable { .. } => [None, None, None],
        }
    }
}

/// The detail fields of a rejection's JSON object.
fn rejection_details(rejection: &Rejection) -> Details<'_> {
    let str = |key, value| Some((key, Detail::Str(value)));
    match rejection {
        Rejection::InvalidTransition { governor, state, command } => {
            [str("governor", governor.name()), str("command", command), str("state", state)]
        }
        Rejection::InvalidArgument(e) => [
            str("command", &e.command),
            str("argument", &e.argument),
            e.value.as_deref().and_then(|v| str("value", v)),
        ],
        Rejection::TooEarly { command, not_before } => [
            str("command", command),
            Some(("not_before_ms", Detail::U64(not_before.as_ms()))),
            None,
        ],
        Rejection::PreconditionFailed { command, condition } => {
            [str("command", command), str("condition", condition), None]
        }
        _ => [None, None, None],
    }
}

/// The JSON a host returns for a refused command: `code` ([`Refusal::code`]), `status`
/// ([`Refusal::http_status`]), `message` (the `Display` text), then the details:
///
/// | code | details |
/// |---|---|
/// | `unknown_tenant`, `tenant_not_active`, `tenant_suspended`, `tenant_deprovisioned`, `tenant_resource_mismatch` | `tenant` |
/// | `busy` | `what` (which bound), `max` |
/// | `timeout` | `after_ms` |
/// | `governor_unavailable` | `governor` (its kind), `retry_after_ms` when set |
/// | `unknown_plan` | `plan` |
/// | `reserved` | `command` |
/// | `idempotency_conflict`, `idempotency_in_flight` | `key` |
/// | `no_catalog`, `bad_usage`, `bad_catalog`, `bad_saga` | none (the message says what) |
/// | `shutting_down`, `ledger_unavailable` | none |
///
/// For example `{"code":"busy","status":429,"message":"busy: governor inbox is at its limit
/// of 1024","what":"governor inbox","max":1024}`. The same object as the
/// [`CommandError::Refused`] that wraps it.
impl Serialize for Refusal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_error(serializer, self.code(), self.http_status(), self, &self.details())
    }
}

/// The JSON a host returns for a command not accepted, with the status it answers with:
/// `{"code", "status", "message", ...details}`. A refusal is as [`Refusal`] serialises; a
/// rejection's details are:
///
/// | code | details |
/// |---|---|
/// | `invalid_transition` | `governor`, `command`, `state` |
/// | `invalid_argument` | `command`, `argument`, `value` when there is one |
/// | `too_early` | `command`, `not_before_ms` |
/// | `precondition_failed` | `command`, `condition` |
///
/// For example `{"code":"invalid_transition","status":409,"message":"archive is not allowed
/// in state active of the subscription governor","governor":"subscription",
/// "command":"archive","state":"active"}`. Serialise only: a host answers errors, it does
/// not read them back.
impl Serialize for CommandError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Rejected(r) => serialize_error(
                serializer,
                self.code(),
                self.http_status(),
                self,
                &rejection_details(r),
            ),
            Self::Refused(r) => r.serialize(serializer),
        }
    }
}

/// The runtime could not start, or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// An actor of the supervision tree could not be spawned.
    #[error("could not start {what}: {reason}")]
    Start {
        /// Which actor.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The ledger's store failed.
    #[error("ledger store: {0}")]
    Store(#[from] crate::ledger::StoreError),
}

#[cfg(test)]
mod tests {
    use govern_governors::{ArgError, ArgProblem, GovernorKind, Rejection, TenantId, Timestamp};
    use govern_receipt::Digest;

    use super::{Accepted, CommandError, ERROR_CODES, Refusal};

    #[test]
    fn every_code_is_listed_and_has_a_status() {
        let t = TenantId::new("acme").expect("valid");
        let errors = [
            CommandError::Rejected(Rejection::InvalidTransition {
                governor: govern_governors::GovernorKind::Quota,
                command: "x",
                state: "y",
            }),
            CommandError::Rejected(Rejection::unmet("x", "y")),
            CommandError::Refused(Refusal::UnknownTenant(t.clone())),
            CommandError::Refused(Refusal::TenantSuspended(t.clone())),
            CommandError::Refused(Refusal::TenantDeprovisioned(t)),
            CommandError::Refused(Refusal::Busy { what: "governor inbox", max: 1 }),
        ];
        let statuses: Vec<(&str, u16)> =
            errors.iter().map(|e| (e.code(), e.http_status())).collect();
        assert_eq!(
            statuses,
            [
                ("invalid_transition", 409),
                ("precondition_failed", 409),
                ("unknown_tenant", 404),
                ("tenant_suspended", 403),
                ("tenant_deprovisioned", 410),
                ("busy", 429),
            ]
        );
        assert!(statuses.iter().all(|(code, _)| ERROR_CODES.contains(code)));
    }

    fn json(value: &impl serde::Serialize) -> String {
        serde_json::to_string(value).expect("serialises")
    }

    #[test]
    fn accepted_serialises_as_its_fields_with_the_hash_in_hex() {
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        hash[31] = 0x01;
        let accepted = Accepted {
            seq: 7,
            hash: Digest(hash),
            resource_seq: 1,
            from: "free_trial",
            to: "active",
        };
        assert_eq!(
            json(&accepted),
            concat!(
                r#"{"seq":7,"hash":"ab00000000000000000000000000000000000000000000000000000000000001","#,
                r#""resource_seq":1,"from":"free_trial","to":"active"}"#
            )
        );
    }

    #[test]
    fn every_refusal_serialises_as_code_status_message_and_its_details() {
        let t = TenantId::new("acme").expect("valid");
        let cases = [
            (
                Refusal::UnknownTenant(t.clone()),
                r#"{"code":"unknown_tenant","status":404,"message":"unknown tenant acme","tenant":"acme"}"#,
            ),
            (
                Refusal::TenantNotActive(t.clone()),
                r#"{"code":"tenant_not_active","status":403,"message":"tenant acme is not active yet","tenant":"acme"}"#,
            ),
            (
                Refusal::TenantSuspended(t.clone()),
                r#"{"code":"tenant_suspended","status":403,"message":"tenant acme is suspended","tenant":"acme"}"#,
            ),
            (
                Refusal::TenantDeprovisioned(t.clone()),
                r#"{"code":"tenant_deprovisioned","status":410,"message":"tenant acme is deprovisioned","tenant":"acme"}"#,
            ),
            (
                Refusal::Busy { what: "governor inbox", max: 1024 },
                r#"{"code":"busy","status":429,"message":"busy: governor inbox is at its limit of 1024","what":"governor inbox","max":1024}"#,
            ),
            (
                Refusal::Timeout { after_ms: 5000 },
                r#"{"code":"timeout","status":504,"message":"no reply within 5000 ms; the outcome is unknown until the ledger is read","after_ms":5000}"#,
            ),
            (
                Refusal::ShuttingDown,
                r#"{"code":"shutting_down","status":503,"message":"the runtime is shutting down"}"#,
            ),
            (
                Refusal::LedgerUnavailable("disk \"full\"".into()),
                r#"{"code":"ledger_unavailable","status":503,"message":"the ledger is unavailable: disk \"full\""}"#,
            ),
            (
                Refusal::GovernorUnavailable {
                    kind: GovernorKind::Billing,
                    reason: "quarantined after 5 crashes".into(),
                    retry_after_ms: Some(800),
                },
                r#"{"code":"governor_unavailable","status":503,"message":"the billing governor is unavailable: quarantined after 5 crashes","governor":"billing","retry_after_ms":800}"#,
            ),
            (
                Refusal::GovernorUnavailable {
                    kind: GovernorKind::Quota,
                    reason: "its supervisor gave up".into(),
                    retry_after_ms: None,
                },
                r#"{"code":"governor_unavailable","status":503,"message":"the quota governor is unavailable: its supervisor gave up","governor":"quota"}"#,
            ),
            (
                Refusal::TenantResourceMismatch { tenant: t },
                r#"{"code":"tenant_resource_mismatch","status":400,"message":"the tenant governor of acme is addressed by the tenant id itself","tenant":"acme"}"#,
            ),
            (
                Refusal::UnknownPlan { plan: "platinum".into() },
                r#"{"code":"unknown_plan","status":422,"message":"plan \"platinum\" is not in the catalog","plan":"platinum"}"#,
            ),
            (
                Refusal::NoCatalog,
                r#"{"code":"no_catalog","status":501,"message":"checks need a plan catalog: start the runtime with one (RuntimeBuilder::catalog)"}"#,
            ),
        ];
        for (refusal, expected) in cases {
            assert_eq!(json(&refusal), expected);
            // Wrapped in a command error, the same object.
            assert_eq!(json(&CommandError::Refused(refusal)), expected);
        }
    }

    #[test]
    fn every_rejection_serialises_as_code_status_message_and_its_details() {
        let cases = [
            (
                Rejection::InvalidTransition {
                    governor: GovernorKind::Subscription,
                    state: "active",
                    command: "archive",
                },
                r#"{"code":"invalid_transition","status":409,"message":"archive is not allowed in state active of the subscription governor","governor":"subscription","command":"archive","state":"active"}"#,
            ),
            (
                ArgError::new(
                    "check_quota",
                    "limit",
                    Some("0"),
                    ArgProblem::OutOfRange { expected: "at least 1" },
                )
                .into(),
                r#"{"code":"invalid_argument","status":422,"message":"check_quota: argument `limit` = \"0\": out of range; expected at least 1","command":"check_quota","argument":"limit","value":"0"}"#,
            ),
            (
                ArgError::new("check_quota", "limit", None, ArgProblem::Missing).into(),
                r#"{"code":"invalid_argument","status":422,"message":"check_quota: argument `limit` missing","command":"check_quota","argument":"limit"}"#,
            ),
            (
                Rejection::TooEarly {
                    command: "end_trial",
                    not_before: Timestamp(1_767_225_600_000),
                },
                r#"{"code":"too_early","status":409,"message":"end_trial is too early: allowed from 2026-01-01T00:00:00Z","command":"end_trial","not_before_ms":1767225600000}"#,
            ),
            (
                Rejection::unmet("refund", "the amount exceeds the refundable balance"),
                r#"{"code":"precondition_failed","status":409,"message":"refund refused: the amount exceeds the refundable balance","command":"refund","condition":"the amount exceeds the refundable balance"}"#,
            ),
        ];
        for (rejection, expected) in cases {
            assert_eq!(json(&CommandError::Rejected(rejection)), expected);
        }
    }
}

//! What a command can come back with besides acceptance: a governor's rejection, or a
//! refusal by the runtime before any governor decided. Both are values, with stable codes.

use govern_governors::{GovernorKind, Rejection, TenantId};
use govern_receipt::Digest;

/// A command the governor accepted: its receipt is in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
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
        }
    }

    /// How long to wait before retrying, when the refusal says (a quarantined governor).
    #[must_use]
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::GovernorUnavailable { retry_after_ms, .. } => *retry_after_ms,
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
    /// 503 (shutting down, ledger or governor unavailable) or 400 (a tenant governor addressed
    /// by another id). An accepted command is 200.
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
pub type Outcome = Result<Accepted, CommandError>;

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
    use govern_governors::{Rejection, TenantId};

    use super::{CommandError, ERROR_CODES, Refusal};

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
}

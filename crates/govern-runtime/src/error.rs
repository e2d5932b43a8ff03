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
    /// The ledger refuses appends (a store failure poisoned it); nothing can be recorded.
    #[error("the ledger is unavailable: {0}")]
    LedgerUnavailable(String),
    /// The governor could not be started (its supervisor is restarting or gave up).
    #[error("the {kind} governor could not be started: {reason}")]
    GovernorUnavailable {
        /// The governor kind.
        kind: GovernorKind,
        /// Why.
        reason: String,
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
}

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

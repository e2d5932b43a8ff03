//! The answer: allowed (and by what), or a refusal with a stable code, an HTTP status, a
//! message and what decided it.

use std::fmt;
use std::sync::Arc;

use crate::input::{GrantKind, TenantState};

/// The stable refusal codes (snake_case; hosts and receipts key on them, never on messages).
pub mod code {
    /// The tenant is suspended (403).
    pub const TENANT_SUSPENDED: &str = "tenant_suspended";
    /// The tenant is terminated (403).
    pub const TENANT_TERMINATED: &str = "tenant_terminated";
    /// A deny grant closes the feature (403).
    pub const GRANT_DENIED: &str = "grant_denied";
    /// A policy rule denies the request (403).
    pub const POLICY_DENIED: &str = "policy_denied";
    /// Not in the plan, but some plan offers it: an upgrade would allow it (402).
    pub const PLAN_UPGRADE_REQUIRED: &str = "plan_upgrade_required";
    /// No grant, plan or rule allows it and no plan offers it (403).
    pub const NOT_ENTITLED: &str = "not_entitled";
    /// Over the rate; retry after the limiter's delay (429).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The quantity would exceed the quota (429).
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";

    /// Every code, for validators that check a refusal table names only codes that exist.
    pub const ALL: [&str; 8] = [
        TENANT_SUSPENDED,
        TENANT_TERMINATED,
        GRANT_DENIED,
        POLICY_DENIED,
        PLAN_UPGRADE_REQUIRED,
        NOT_ENTITLED,
        RATE_LIMITED,
        QUOTA_EXCEEDED,
    ];
}

/// What decided an answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    /// The tenant's state (suspended, terminated).
    TenantState(TenantState),
    /// A grant.
    Grant {
        /// The grant's id.
        id: Arc<str>,
        /// Its kind.
        kind: GrantKind,
    },
    /// The plan offers the feature.
    PlanFeature(Arc<str>),
    /// A policy rule.
    Rule {
        /// The rule's id.
        id: Arc<str>,
        /// The rule set's version.
        version: u64,
    },
    /// A limit (rate or quota), by name.
    Limit(Arc<str>),
    /// Nothing allowed it: the default deny.
    Default,
}

/// `state:suspended`, `grant:ID (trial)`, `plan_feature:F`, `rule:ID@vN`, `limit:NAME`,
/// `default`.
impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TenantState(state) => write!(f, "state:{state}"),
            Self::Grant { id, kind } => write!(f, "grant:{id} ({})", kind.name()),
            Self::PlanFeature(feature) => write!(f, "plan_feature:{feature}"),
            Self::Rule { id, version } => write!(f, "rule:{id}@v{version}"),
            Self::Limit(name) => write!(f, "limit:{name}"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// A refusal: a value, never an error.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// One of [`code`]'s constants.
    pub code: &'static str,
    /// 402 (payment or plan required), 403 (not entitled, suspended), 429 (rate or quota).
    pub status: u16,
    /// For a 429: seconds until a retry can succeed, when known.
    pub retry_after_secs: Option<u64>,
    /// For a person; stable for a given situation, but hosts key on `code`.
    pub message: Arc<str>,
    /// What decided it.
    pub decided_by: DecidedBy,
}

/// The answer to "may tenant T do action A on feature F, quantity Q, now?".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed, and by what (a grant, the plan's feature, a rule).
    Allowed {
        /// What allowed it.
        decided_by: DecidedBy,
    },
    /// Refused.
    Refused(Refusal),
}

impl Decision {
    /// Whether it is an allow.
    #[must_use]
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }

    /// The refusal, if it is one.
    #[must_use]
    pub const fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Allowed { .. } => None,
            Self::Refused(refusal) => Some(refusal),
        }
    }

    /// What decided it.
    #[must_use]
    pub const fn decided_by(&self) -> &DecidedBy {
        match self {
            Self::Allowed { decided_by } | Self::Refused(Refusal { decided_by, .. }) => decided_by,
        }
    }

    pub(crate) fn refused(
        code: &'static str,
        status: u16,
        retry_after_secs: Option<u64>,
        message: String,
        decided_by: DecidedBy,
    ) -> Self {
        Self::Refused(Refusal {
            code,
            status,
            retry_after_secs,
            message: message.into(),
            decided_by,
        })
    }
}

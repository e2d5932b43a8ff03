//! Entitlement governor: one feature grant of a tenant, from request to the archived record.
//!
//! Adopted from Kill Bill, which keeps entitlement (may the tenant use the feature) apart from
//! billing (has the tenant paid): this governor never looks at payments, and the billing
//! governor never grants features. The seed's "archived → expired" order is reversed here: a
//! grant expires when its end passes (`expire`, sent by the state timeout at `expires_at`),
//! and `archived` is the terminal record state that an expired, revoked or escalated grant
//! goes to.

use crate::args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
use crate::codec::{StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, StateTimeout, Transition};
use crate::kind::GovernorKind;
use crate::limits::TEXT_ARG_LEN_MAX;
use crate::rejection::Rejection;
use crate::time::{Ctx, DAY_MS, Timestamp};

crate::define_states! {
    /// Where a feature grant is in its life.
    pub enum State {
        /// No grant: nothing requested yet, or a request was denied.
        Unentitled => "unentitled",
        /// A grant was requested and awaits review.
        PendingReview => "pending_review",
        /// The tenant may use the feature (until `expires_at`, if given).
        Entitled => "entitled",
        /// The grant is withheld for now and may be reinstated.
        Suspended => "suspended",
        /// A suspension was escalated and awaits resolution.
        Escalated => "escalated",
        /// The grant's end has passed; it may be requested again.
        Expired => "expired",
        /// The grant was withdrawn (or blocked before any request).
        Revoked => "revoked",
        /// Kept for the record only.
        Archived => "archived",
    }
    terminal: [Archived]
}

/// Why a grant exists; checks name it in what decided (`grant:ID (trial)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantKind {
    /// A trial of a feature.
    Trial,
    /// A promotion.
    Promotional,
    /// Granted by an operator (the default).
    #[default]
    Manual,
    /// Early access to a feature in beta.
    Beta,
}

impl GrantKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Trial, Self::Promotional, Self::Manual, Self::Beta];

    /// The stable name used in receipts and scripts.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Trial => "trial",
            Self::Promotional => "promotional",
            Self::Manual => "manual",
            Self::Beta => "beta",
        }
    }
}

/// The highest grant priority (a higher one wins over a lower one for the same feature).
pub const GRANT_PRIORITY_MAX: u32 = 1_000;

/// What a grant kind must be, for the message.
const KIND_EXPECTED: &str = "trial, promotional, manual or beta";
/// What a priority must be, for the message.
const PRIORITY_EXPECTED: &str = "a priority from 0 to 1000";

/// What can be asked of a feature grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Requests a grant of `feature`, optionally ending at `expires_at`; also re-requests an
    /// expired grant.
    GrantEntitlement {
        /// The feature key.
        feature: String,
        /// When the grant ends; must lie after the time of the request.
        expires_at: Option<Timestamp>,
        /// Why it is granted (default `manual`; recorded only when not the default).
        kind: GrantKind,
        /// Its priority among the tenant's grants of the feature, 0 to
        /// [`GRANT_PRIORITY_MAX`] (default 0; recorded only when not 0).
        priority: u32,
    },
    /// Approves the pending request: the tenant is entitled.
    ApproveGrant,
    /// Denies the pending request; the grant may be requested again.
    DenyGrant,
    /// Withdraws the grant, or blocks it before any request.
    RevokeEntitlement,
    /// Withholds an entitled grant for now.
    SuspendEntitlement,
    /// Lifts a suspension.
    ReinstateEntitlement,
    /// Escalates a suspension for resolution.
    EscalateIssue,
    /// Resolves an escalation in the tenant's favour: the grant is back in force.
    ResolveEscalation,
    /// Ends the grant once `expires_at` has passed; sent by the state timeout at `expires_at`.
    Expire,
    /// Archives a grant that is over (expired, revoked) or escalated without resolution.
    ArchiveEntitlement,
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "grant_entitlement",
        "approve_grant",
        "deny_grant",
        "revoke_entitlement",
        "suspend_entitlement",
        "reinstate_entitlement",
        "escalate_issue",
        "resolve_escalation",
        "expire",
        "archive_entitlement",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::GrantEntitlement { .. } => "grant_entitlement",
            Self::ApproveGrant => "approve_grant",
            Self::DenyGrant => "deny_grant",
            Self::RevokeEntitlement => "revoke_entitlement",
            Self::SuspendEntitlement => "suspend_entitlement",
            Self::ReinstateEntitlement => "reinstate_entitlement",
            Self::EscalateIssue => "escalate_issue",
            Self::ResolveEscalation => "resolve_escalation",
            Self::Expire => "expire",
            Self::ArchiveEntitlement => "archive_entitlement",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::GrantEntitlement { feature, expires_at, kind, priority } => {
                a.insert("feature".into(), feature.clone());
                if let Some(t) = expires_at {
                    a.insert("expires_at".into(), t.as_ms().to_string());
                }
                // Defaults are left out: a receipt written before kinds existed reads the same.
                if *kind != GrantKind::Manual {
                    a.insert("kind".into(), kind.name().into());
                }
                if *priority != 0 {
                    a.insert("priority".into(), priority.to_string());
                }
            }
            Self::ApproveGrant
            | Self::DenyGrant
            | Self::RevokeEntitlement
            | Self::SuspendEntitlement
            | Self::ReinstateEntitlement
            | Self::EscalateIssue
            | Self::ResolveEscalation
            | Self::Expire
            | Self::ArchiveEntitlement => {}
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let cmd = match r.command() {
            "grant_entitlement" => {
                let feature = r.text("feature")?;
                let expires_at = r.optional_timestamp("expires_at")?;
                let kind = match r.optional_raw("kind") {
                    None => GrantKind::Manual,
                    Some(k) => {
                        GrantKind::ALL.into_iter().find(|g| g.name() == k).ok_or_else(|| {
                            ArgError::new(
                                name,
                                "kind",
                                Some(k),
                                ArgProblem::Malformed { expected: KIND_EXPECTED },
                            )
                        })?
                    }
                };
                let priority = r
                    .optional_u32_in("priority", 0, GRANT_PRIORITY_MAX, PRIORITY_EXPECTED)?
                    .unwrap_or(0);
                Self::GrantEntitlement { feature, expires_at, kind, priority }
            }
            "approve_grant" => Self::ApproveGrant,
            "deny_grant" => Self::DenyGrant,
            "revoke_entitlement" => Self::RevokeEntitlement,
            "suspend_entitlement" => Self::SuspendEntitlement,
            "reinstate_entitlement" => Self::ReinstateEntitlement,
            "escalate_issue" => Self::EscalateIssue,
            "resolve_escalation" => Self::ResolveEscalation,
            "expire" => Self::Expire,
            _ => Self::ArchiveEntitlement,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(ctx: &Ctx) -> Vec<Self> {
        // Two years: still in force when approved one exploration step (400 days) later, and
        // over one step after that, so that `expire` and `expired` are reached.
        let expires_at = ctx.now.plus_ms(730 * DAY_MS);
        vec![
            Self::GrantEntitlement {
                feature: "sso".into(),
                expires_at: Some(expires_at),
                kind: GrantKind::Manual,
                priority: 0,
            },
            Self::GrantEntitlement {
                feature: "beta_dashboards".into(),
                expires_at: None,
                kind: GrantKind::Beta,
                priority: 10,
            },
            Self::ApproveGrant,
            Self::DenyGrant,
            Self::RevokeEntitlement,
            Self::SuspendEntitlement,
            Self::ReinstateEntitlement,
            Self::EscalateIssue,
            Self::ResolveEscalation,
            Self::Expire,
            Self::ArchiveEntitlement,
        ]
    }
}

/// One feature grant: its state and the data that travels with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entitlement {
    state: StateCell,
    /// The feature granted, once requested; receipts and operators name the grant by it.
    feature: Option<String>,
    /// When the grant ends, if it does; drives the `expire` guard and state timeout.
    expires_at: Option<Timestamp>,
    /// When the grant was last requested, for review queues and audit.
    requested_at: Option<Timestamp>,
    /// When the grant was first approved, for audit (a re-request does not reset it).
    granted_at: Option<Timestamp>,
    /// How many times the grant was suspended, so that repeated suspensions can be spotted.
    suspensions: u32,
    /// Why it is granted.
    kind: GrantKind,
    /// Its priority among the tenant's grants of the feature.
    priority: u32,
}

impl Entitlement {
    /// The feature key, once requested.
    #[must_use]
    pub fn feature(&self) -> Option<&str> {
        self.feature.as_deref()
    }

    /// Why it is granted (as last requested).
    #[must_use]
    pub fn kind(&self) -> GrantKind {
        self.kind
    }

    /// Its priority (as last requested).
    #[must_use]
    pub fn priority(&self) -> u32 {
        self.priority
    }

    /// When the grant ends, if it does.
    #[must_use]
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }

    /// When the grant was last requested.
    #[must_use]
    pub fn requested_at(&self) -> Option<Timestamp> {
        self.requested_at
    }

    /// When the grant was first approved.
    #[must_use]
    pub fn granted_at(&self) -> Option<Timestamp> {
        self.granted_at
    }

    /// How many times the grant was suspended (saturating).
    #[must_use]
    pub fn suspensions(&self) -> u32 {
        self.suspensions
    }
}

impl Governor for Entitlement {
    const KIND: GovernorKind = GovernorKind::Entitlement;
    type State = State;
    type Command = Command;

    fn state(&self) -> State {
        self.state.0
    }

    fn decide(&self, command: &Command, ctx: &Ctx) -> Result<Transition<State>, Rejection> {
        use Command as C;
        use State as S;
        let from = self.state.0;
        let to = match (from, command) {
            (S::Unentitled | S::Expired, C::GrantEntitlement { expires_at, .. }) => {
                match expires_at {
                    Some(end) if *end <= ctx.now => {
                        return Err(ArgError::new(
                            "grant_entitlement",
                            "expires_at",
                            Some(&end.as_ms().to_string()),
                            ArgProblem::NotInFuture,
                        )
                        .into());
                    }
                    _ => S::PendingReview,
                }
            }
            (S::PendingReview, C::ApproveGrant) => match self.expires_at {
                Some(end) if ctx.now >= end => {
                    return Err(Rejection::unmet(
                        "approve_grant",
                        "the requested grant has already expired",
                    ));
                }
                _ => S::Entitled,
            },
            (S::PendingReview, C::DenyGrant) => S::Unentitled,
            (
                S::Unentitled | S::PendingReview | S::Entitled | S::Suspended | S::Escalated,
                C::RevokeEntitlement,
            ) => S::Revoked,
            (S::Entitled, C::SuspendEntitlement) => S::Suspended,
            (S::Suspended, C::ReinstateEntitlement) => S::Entitled,
            (S::Suspended, C::EscalateIssue) => S::Escalated,
            (S::Escalated, C::ResolveEscalation) => S::Entitled,
            (S::Entitled | S::Suspended, C::Expire) => match self.expires_at {
                None => return Err(Rejection::unmet("expire", "the grant has no expiry")),
                Some(end) if ctx.now < end => {
                    return Err(Rejection::TooEarly { command: "expire", not_before: end });
                }
                Some(_) => S::Expired,
            },
            (S::Revoked | S::Expired | S::Escalated, C::ArchiveEntitlement) => S::Archived,
            (
                S::Unentitled
                | S::PendingReview
                | S::Entitled
                | S::Suspended
                | S::Escalated
                | S::Expired
                | S::Revoked
                | S::Archived,
                _,
            ) => return Err(self.invalid(command)),
        };
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::GrantEntitlement { feature, expires_at, kind, priority } => {
                self.feature = Some(feature.clone());
                // A re-request replaces the old end: no end given means the grant does not expire.
                self.expires_at = *expires_at;
                self.kind = *kind;
                self.priority = *priority;
                self.requested_at = Some(at);
            }
            Command::ApproveGrant => {
                self.granted_at.get_or_insert(at);
            }
            Command::SuspendEntitlement => {
                self.suspensions = self.suspensions.saturating_add(1);
            }
            Command::DenyGrant
            | Command::RevokeEntitlement
            | Command::ReinstateEntitlement
            | Command::EscalateIssue
            | Command::ResolveEscalation
            | Command::Expire
            | Command::ArchiveEntitlement => {}
        }
        self.state.0 = to;
    }

    fn state_timeout(&self) -> Option<StateTimeout<Command>> {
        match self.state.0 {
            State::Entitled | State::Suspended => {
                self.expires_at.map(|at| StateTimeout { at, command: Command::Expire })
            }
            State::Unentitled
            | State::PendingReview
            | State::Escalated
            | State::Expired
            | State::Revoked
            | State::Archived => None,
        }
    }
}

impl StateCodec for Entitlement {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.opt_str("feature", self.feature.as_deref(), TEXT_ARG_LEN_MAX);
        w.opt_timestamp(self.expires_at);
        w.opt_timestamp(self.requested_at);
        w.opt_timestamp(self.granted_at);
        w.u32(self.suspensions);
        w.choice("kind", &self.kind, &GrantKind::ALL);
        w.u32(self.priority);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        Ok(Self {
            state: StateCell(r.state()?),
            feature: r.opt_str("feature", TEXT_ARG_LEN_MAX)?,
            expires_at: r.opt_timestamp("expires_at")?,
            requested_at: r.opt_timestamp("requested_at")?,
            granted_at: r.opt_timestamp("granted_at")?,
            suspensions: r.u32("suspensions")?,
            kind: r.choice("kind", &GrantKind::ALL)?,
            priority: r.u32("priority")?,
        })
    }
}

#[cfg(test)]
mod tests;

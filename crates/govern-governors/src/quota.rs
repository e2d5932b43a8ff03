//! Quota governor: one resource quota and its SLA thresholds at 75 %, 90 % and 100 %.
//!
//! Usage checks move the quota between `normal`, `warning`, `throttled` and `exceeded` by
//! level, in either direction; operators may escalate by hand. Once exceeded the quota stays
//! exceeded (possibly in a degraded mode) until remediation restores resources, and only a
//! quota back under the warning threshold resumes normal operation.

use crate::args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
use crate::governor::{Governor, Transition};
use crate::kind::GovernorKind;
use crate::rejection::Rejection;
use crate::time::{Ctx, Timestamp};

/// Usage at or above this share of the limit, in basis points, is a warning (75 %).
pub const WARNING_BPS: u64 = 7_500;
/// Usage at or above this share of the limit, in basis points, is throttled (90 %).
pub const THROTTLE_BPS: u64 = 9_000;
/// Usage at or above this share of the limit, in basis points, is exceeded (100 %).
pub const EXCEEDED_BPS: u64 = 10_000;

const _: () = assert!(WARNING_BPS < THROTTLE_BPS && THROTTLE_BPS < EXCEEDED_BPS);

/// What a zero or malformed limit is told to be.
const LIMIT_EXPECTED: &str = "a limit greater than zero";

crate::define_states! {
    /// Where a quota is. No state is terminal: a quota lives as long as its resource.
    pub enum State {
        /// Usage below the warning threshold.
        Normal => "normal",
        /// Usage at or above 75 %, or escalated by an operator.
        Warning => "warning",
        /// Usage at or above 90 %: traffic is throttled.
        Throttled => "throttled",
        /// Usage at or above 100 %; sticky until remediation.
        Exceeded => "exceeded",
        /// Exceeded, and serving in a degraded mode until usage drops or remediation starts.
        DegradedMode => "degraded_mode",
        /// Operators are remediating; checks are recorded but do not move the state.
        Remediation => "remediation",
        /// Resources restored; waiting for usage to resume normal operation.
        Restored => "restored",
    }
    terminal: []
}

/// How full a quota is, by threshold. Ordered from emptiest to fullest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Below [`WARNING_BPS`].
    Normal,
    /// From [`WARNING_BPS`] to below [`THROTTLE_BPS`].
    Warning,
    /// From [`THROTTLE_BPS`] to below [`EXCEEDED_BPS`].
    Throttled,
    /// At or above [`EXCEEDED_BPS`].
    Exceeded,
}

impl Level {
    /// The state a check at this level leads to from a state that follows levels.
    const fn state(self) -> State {
        match self {
            Self::Normal => State::Normal,
            Self::Warning => State::Warning,
            Self::Throttled => State::Throttled,
            Self::Exceeded => State::Exceeded,
        }
    }
}

/// `usage` as a share of `limit` in basis points (10 000 = 100 %), rounded down, computed in
/// `u128` so that it cannot overflow and saturated to `u64::MAX`. A zero limit counts as
/// full: `u64::MAX`.
#[must_use]
pub fn usage_bps(usage: u64, limit: u64) -> u64 {
    (u128::from(usage) * u128::from(EXCEEDED_BPS))
        .checked_div(u128::from(limit))
        .map_or(u64::MAX, |bps| u64::try_from(bps).unwrap_or(u64::MAX))
}

/// The level of `usage` against `limit`: below 75 % normal, below 90 % warning, below 100 %
/// throttled, else exceeded (also for a zero limit).
#[must_use]
pub fn level(usage: u64, limit: u64) -> Level {
    let bps = usage_bps(usage, limit);
    if bps < WARNING_BPS {
        Level::Normal
    } else if bps < THROTTLE_BPS {
        Level::Warning
    } else if bps < EXCEEDED_BPS {
        Level::Throttled
    } else {
        Level::Exceeded
    }
}

crate::define_arg_enum! {
    /// The kind of resource a quota limits.
    pub enum Resource {
        /// API requests.
        ApiCalls => "api_calls",
        /// Stored bytes.
        Storage => "storage",
        /// Compute time.
        Compute => "compute",
        /// Transferred bytes.
        Bandwidth => "bandwidth",
        /// User seats.
        Seats => "seats",
    }
}

/// What can be asked of a quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Records a usage measurement and moves the quota to its level where the state allows.
    CheckQuota {
        /// The resource measured; a quota tracks the one its first check names.
        resource: Resource,
        /// Units used.
        usage: u64,
        /// Units allowed, greater than zero.
        limit: u64,
    },
    /// Escalates a normal quota to a warning by hand.
    SendWarning,
    /// Throttles traffic of a quota in warning.
    ThrottleTraffic,
    /// Declares a throttled quota exceeded.
    MarkExceeded,
    /// Serves an exceeded quota in a degraded mode.
    DegradeMode,
    /// Starts remediating an exceeded quota.
    StartRemediation,
    /// Ends remediation, optionally with a new limit.
    RestoreResources {
        /// The new limit, greater than zero and than the current limit (when one was
        /// recorded); the old one stays when absent.
        limit: Option<u64>,
    },
    /// Returns a restored quota to normal once the last recorded usage is under the warning
    /// threshold of the current limit (or when no usage was ever recorded).
    ResumeNormal,
}

/// The error for a zero `limit` of `command`.
fn zero_limit(command: &str) -> ArgError {
    ArgError::new(command, "limit", Some("0"), ArgProblem::OutOfRange { expected: LIMIT_EXPECTED })
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "check_quota",
        "send_warning",
        "throttle_traffic",
        "mark_exceeded",
        "degrade_mode",
        "start_remediation",
        "restore_resources",
        "resume_normal",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::CheckQuota { .. } => "check_quota",
            Self::SendWarning => "send_warning",
            Self::ThrottleTraffic => "throttle_traffic",
            Self::MarkExceeded => "mark_exceeded",
            Self::DegradeMode => "degrade_mode",
            Self::StartRemediation => "start_remediation",
            Self::RestoreResources { .. } => "restore_resources",
            Self::ResumeNormal => "resume_normal",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::CheckQuota { resource, usage, limit } => {
                a.insert("resource".into(), resource.name().to_owned());
                a.insert("usage".into(), usage.to_string());
                a.insert("limit".into(), limit.to_string());
            }
            Self::RestoreResources { limit: Some(limit) } => {
                a.insert("limit".into(), limit.to_string());
            }
            Self::RestoreResources { limit: None }
            | Self::SendWarning
            | Self::ThrottleTraffic
            | Self::MarkExceeded
            | Self::DegradeMode
            | Self::StartRemediation
            | Self::ResumeNormal => {}
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let cmd = match r.command() {
            "check_quota" => {
                let resource = r.parsed("resource", Resource::EXPECTED)?;
                let usage = r.parsed("usage", "a whole number of units")?;
                let limit = r.positive_u64("limit", LIMIT_EXPECTED)?;
                Self::CheckQuota { resource, usage, limit }
            }
            "send_warning" => Self::SendWarning,
            "throttle_traffic" => Self::ThrottleTraffic,
            "mark_exceeded" => Self::MarkExceeded,
            "degrade_mode" => Self::DegradeMode,
            "start_remediation" => Self::StartRemediation,
            "restore_resources" => {
                Self::RestoreResources { limit: r.optional_positive_u64("limit", LIMIT_EXPECTED)? }
            }
            _ => Self::ResumeNormal,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(_ctx: &Ctx) -> Vec<Self> {
        let check = |usage| Self::CheckQuota { resource: Resource::ApiCalls, usage, limit: 100 };
        vec![
            check(50),
            check(80),
            check(95),
            check(100),
            Self::SendWarning,
            Self::ThrottleTraffic,
            Self::MarkExceeded,
            Self::DegradeMode,
            Self::StartRemediation,
            Self::RestoreResources { limit: Some(200) },
            Self::ResumeNormal,
        ]
    }
}

/// One resource quota: its state and the data that travels with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    state: StateCell,
    /// The resource named by the first check; later checks must name the same one.
    resource: Option<Resource>,
    /// The last recorded usage, which `resume_normal` checks against the warning threshold.
    usage: Option<u64>,
    /// The current limit, from the last check or a restoring of resources.
    limit: Option<u64>,
    /// When usage was last checked, to tell how fresh the level is.
    checked_at: Option<Timestamp>,
}

impl Quota {
    /// The resource this quota tracks, once checked.
    #[must_use]
    pub fn resource(&self) -> Option<Resource> {
        self.resource
    }

    /// The last recorded usage.
    #[must_use]
    pub fn usage(&self) -> Option<u64> {
        self.usage
    }

    /// The current limit.
    #[must_use]
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// When usage was last checked.
    #[must_use]
    pub fn checked_at(&self) -> Option<Timestamp> {
        self.checked_at
    }

    /// The last recorded usage as a share of the current limit, in basis points (see
    /// [`usage_bps`]); `None` until both are known.
    #[must_use]
    pub fn percent_bps(&self) -> Option<u64> {
        match (self.usage, self.limit) {
            (Some(usage), Some(limit)) => Some(usage_bps(usage, limit)),
            _ => None,
        }
    }

    /// Refuses a check of another resource than the one tracked, or with a zero limit (which
    /// `parse` already refuses; this keeps a hand-built command from recording one).
    fn admit_check(&self, resource: Resource, limit: u64) -> Result<(), Rejection> {
        if limit == 0 {
            return Err(zero_limit("check_quota").into());
        }
        match self.resource {
            Some(tracked) if tracked != resource => {
                Err(Rejection::unmet("check_quota", "a quota tracks one resource type"))
            }
            _ => Ok(()),
        }
    }
}

impl Governor for Quota {
    const KIND: GovernorKind = GovernorKind::Quota;
    type State = State;
    type Command = Command;

    fn state(&self) -> State {
        self.state.0
    }

    fn decide(&self, command: &Command, _ctx: &Ctx) -> Result<Transition<State>, Rejection> {
        use Command as C;
        use State as S;
        let from = self.state.0;
        let to = match (from, command) {
            (
                S::Normal | S::Warning | S::Throttled | S::Restored,
                C::CheckQuota { resource, usage, limit },
            ) => {
                self.admit_check(*resource, *limit)?;
                level(*usage, *limit).state()
            }
            (S::Exceeded, C::CheckQuota { resource, limit, .. }) => {
                self.admit_check(*resource, *limit)?;
                S::Exceeded
            }
            (S::DegradedMode, C::CheckQuota { resource, usage, limit }) => {
                self.admit_check(*resource, *limit)?;
                match level(*usage, *limit) {
                    Level::Exceeded => S::DegradedMode,
                    below => below.state(),
                }
            }
            (S::Remediation, C::CheckQuota { resource, limit, .. }) => {
                self.admit_check(*resource, *limit)?;
                S::Remediation
            }
            (S::Normal, C::SendWarning) => S::Warning,
            (S::Warning, C::ThrottleTraffic) => S::Throttled,
            (S::Throttled, C::MarkExceeded) => S::Exceeded,
            (S::Exceeded, C::DegradeMode) => S::DegradedMode,
            (S::Exceeded | S::DegradedMode, C::StartRemediation) => S::Remediation,
            (S::Remediation, C::RestoreResources { limit }) => {
                if *limit == Some(0) {
                    return Err(zero_limit("restore_resources").into());
                }
                // Restoring raises the limit or keeps it; a smaller one is not a restoration.
                if let (Some(new), Some(current)) = (limit, self.limit)
                    && new <= &current
                {
                    return Err(Rejection::unmet(
                        "restore_resources",
                        "the new limit is not larger than the current one",
                    ));
                }
                S::Restored
            }
            (S::Restored, C::ResumeNormal) => match self.percent_bps() {
                Some(bps) if bps >= WARNING_BPS => {
                    return Err(Rejection::unmet(
                        "resume_normal",
                        "usage is still above the warning threshold",
                    ));
                }
                _ => S::Normal,
            },
            (
                S::Normal
                | S::Warning
                | S::Throttled
                | S::Exceeded
                | S::DegradedMode
                | S::Remediation
                | S::Restored,
                _,
            ) => return Err(self.invalid(command)),
        };
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::CheckQuota { resource, usage, limit } => {
                self.resource.get_or_insert(*resource);
                self.usage = Some(*usage);
                self.limit = Some(*limit);
                self.checked_at = Some(at);
            }
            Command::RestoreResources { limit } => {
                if let Some(limit) = limit {
                    self.limit = Some(*limit);
                }
            }
            Command::SendWarning
            | Command::ThrottleTraffic
            | Command::MarkExceeded
            | Command::DegradeMode
            | Command::StartRemediation
            | Command::ResumeNormal => {}
        }
        self.state.0 = to;
    }
}

#[cfg(test)]
mod tests;

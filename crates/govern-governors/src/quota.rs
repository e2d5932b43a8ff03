//! Quota governor: one resource quota and its SLA thresholds at 75 %, 90 % and 100 %.
//!
//! Usage checks move the quota between `normal`, `warning`, `throttled` and `exceeded` by
//! level, in either direction; operators may escalate by hand. Once exceeded the quota stays
//! exceeded (possibly in a degraded mode) until remediation restores resources, and only a
//! quota back under the warning threshold resumes normal operation.
//!
//! `record_usage` is how the runtime drives a quota from metered usage: it carries a batch of
//! counted usage events of one meter (the runtime counts and deduplicates them; the batch is
//! what it replays to rebuild its counters), the meter's value after the batch and the plan's
//! limit. It moves the quota by level like `check_quota`, and a new period (the counter was
//! reset) also takes an exceeded quota back to its level.

use crate::args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
use crate::codec::{StateCodec, StateCodecError, StateReader, StateWriter};
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

/// The most events one `record_usage` batch carries (as the usage crate's batches).
pub const USAGE_BATCH_EVENTS_MAX: usize = 4_096;
/// The longest event id in a `record_usage` batch, in bytes.
pub const USAGE_EVENT_ID_LEN_MAX: usize = 128;

/// What a malformed `events` argument is told to be.
const EVENTS_EXPECTED: &str = "one event per line, each `AT_MS ID` (an id of at most 128 bytes \
                               without control characters), at most 4096 lines";

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
    /// Records a batch of metered usage (the runtime's `record_usage`): moves the quota by
    /// level as `check_quota` does, and out of `exceeded` when the batch opens a new period.
    RecordUsage(UsageBatch),
}

/// A batch of counted usage events of one meter in one period, as the runtime receipts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageBatch {
    /// The meter (also the quota's resource id).
    pub meter: String,
    /// The meter's period key (days or months since the epoch, rolling buckets, 0 for a
    /// meter that never resets).
    pub period: u64,
    /// The sum of the events' quantities.
    pub total: u64,
    /// The meter's value in `period` after the batch.
    pub usage: u64,
    /// The plan's limit on the meter; `None`: unlimited (the quota stays normal).
    pub limit: Option<u64>,
    /// The events: (`at` in ms since the epoch, id), in the order they were counted.
    pub events: Vec<(u64, String)>,
}

impl UsageBatch {
    /// The `events` argument: one `AT_MS ID` line per event.
    #[must_use]
    pub fn events_arg(&self) -> String {
        let mut out = String::with_capacity(self.events.len() * 24);
        for (i, (at, id)) in self.events.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&at.to_string());
            out.push(' ');
            out.push_str(id);
        }
        out
    }

    /// Parses an `events` argument.
    fn parse_events(text: &str) -> Option<Vec<(u64, String)>> {
        let mut events = Vec::new();
        for line in text.split('\n') {
            let (at, id) = line.split_once(' ')?;
            let at = at.parse().ok()?;
            if id.is_empty()
                || id.len() > USAGE_EVENT_ID_LEN_MAX
                || id.chars().any(char::is_control)
            {
                return None;
            }
            events.push((at, id.to_owned()));
            if events.len() > USAGE_BATCH_EVENTS_MAX {
                return None;
            }
        }
        Some(events)
    }
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
        "record_usage",
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
            Self::RecordUsage(_) => "record_usage",
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
            Self::RecordUsage(b) => {
                a.insert("meter".into(), b.meter.clone());
                a.insert("period".into(), b.period.to_string());
                a.insert("total".into(), b.total.to_string());
                a.insert("usage".into(), b.usage.to_string());
                if let Some(limit) = b.limit {
                    a.insert("limit".into(), limit.to_string());
                }
                a.insert("events".into(), b.events_arg());
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
            "record_usage" => {
                let meter = r.text("meter")?;
                let period: u64 = r.parsed("period", "a period key (a whole number)")?;
                let total = r.positive_u64("total", "a total greater than zero")?;
                let usage: u64 = r.parsed("usage", "a whole number of units")?;
                let limit = r.optional_positive_u64("limit", LIMIT_EXPECTED)?;
                let text = r.raw("events")?;
                let events = UsageBatch::parse_events(text).ok_or_else(|| {
                    ArgError::new(
                        "record_usage",
                        "events",
                        None,
                        ArgProblem::Malformed { expected: EVENTS_EXPECTED },
                    )
                })?;
                if usage < total {
                    return Err(ArgError::new(
                        "record_usage",
                        "usage",
                        Some(&usage.to_string()),
                        ArgProblem::OutOfRange { expected: "at least the batch's total" },
                    ));
                }
                Self::RecordUsage(UsageBatch { meter, period, total, usage, limit, events })
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
            Self::RecordUsage(UsageBatch {
                meter: "api_calls".into(),
                period: 672,
                total: 3,
                usage: 80,
                limit: Some(100),
                events: vec![
                    (1_767_225_600_000, "evt-1".into()),
                    (1_767_225_600_500, "evt 2".into()),
                ],
            }),
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
    /// The period of the last recorded usage batch: a batch of a later one is a reset.
    period: Option<u64>,
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

    /// The period key of the last recorded usage batch.
    #[must_use]
    pub fn period(&self) -> Option<u64> {
        self.period
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

impl Quota {
    /// Where a usage batch takes the quota: by level (an unlimited meter is normal) from the
    /// states `check_quota` moves by level, and from `exceeded` or `degraded_mode` when the
    /// batch opens a new period; `exceeded` and `degraded_mode` otherwise as `check_quota`;
    /// `remediation` stays.
    fn usage_state(&self, batch: &UsageBatch) -> State {
        use State as S;
        let level = batch.limit.map_or(Level::Normal, |limit| level(batch.usage, limit));
        let reset = self.period.is_some_and(|p| batch.period > p);
        match self.state.0 {
            S::Normal | S::Warning | S::Throttled | S::Restored => level.state(),
            S::Exceeded | S::DegradedMode if reset => level.state(),
            S::Exceeded => S::Exceeded,
            S::DegradedMode => match level {
                Level::Exceeded => S::DegradedMode,
                below => below.state(),
            },
            S::Remediation => S::Remediation,
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
            (_, C::RecordUsage(batch)) => self.usage_state(batch),
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
            Command::RecordUsage(batch) => {
                self.usage = Some(batch.usage);
                self.limit = batch.limit;
                self.period = Some(batch.period);
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

impl StateCodec for Quota {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.option(self.resource.as_ref(), |w, res| w.choice("resource", res, Resource::ALL));
        w.option(self.usage.as_ref(), |w, v| w.u64(*v));
        w.option(self.limit.as_ref(), |w, v| w.u64(*v));
        w.opt_timestamp(self.checked_at);
        w.option(self.period.as_ref(), |w, v| w.u64(*v));
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        Ok(Self {
            state: StateCell(r.state()?),
            resource: r.option("resource", |r| r.choice("resource", Resource::ALL))?,
            usage: r.option("usage", |r| r.u64("usage"))?,
            limit: r.option("limit", |r| r.u64("limit"))?,
            checked_at: r.opt_timestamp("checked_at")?,
            period: r.option("period", |r| r.u64("period"))?,
        })
    }
}

#[cfg(test)]
mod tests;

//! Compliance governor: one audit of one compliance domain, from review to remediation.
//!
//! An audit is started for a domain, reviewed, and found compliant or non-compliant. A
//! non-compliant finding is given a remediation deadline; a deadline that passes sends the
//! audit back to `non_compliant` with the finding's severity raised one level. A compliant
//! audit may be reviewed again (a periodic re-audit), so no state is terminal.

use std::fmt;
use std::str::FromStr;

use crate::args::{ArgError, ArgReader, Args, CommandSpec};
use crate::codec::{CodecProblem, StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, StateTimeout, Transition};
use crate::kind::GovernorKind;
use crate::limits::{REMEDIATION_DAYS_MAX, TEXT_ARG_LEN_MAX};
use crate::rejection::Rejection;
use crate::time::{Ctx, DAY_MS, Timestamp};

/// Longest name of a custom compliance domain (`custom:<name>`), in bytes.
pub const CUSTOM_DOMAIN_LEN_MAX: usize = 64;

crate::define_states! {
    /// Where an audit is. No state is terminal: a compliant domain is audited again.
    pub enum State {
        /// Created; the domain is set here, then review begins.
        PendingAudit => "pending_audit",
        /// The auditor is reviewing the domain.
        UnderReview => "under_review",
        /// The domain was found compliant; it may be re-audited.
        Compliant => "compliant",
        /// A finding is open and no remediation is under way.
        NonCompliant => "non_compliant",
        /// A remediation is under way until `remediation_due`.
        RemediationRequired => "remediation_required",
    }
    terminal: []
}

/// The compliance domain an audit covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// EU General Data Protection Regulation.
    Gdpr,
    /// US Health Insurance Portability and Accountability Act.
    Hipaa,
    /// AICPA SOC 2.
    Soc2,
    /// Payment Card Industry Data Security Standard.
    PciDss,
    /// ISO/IEC 27001.
    Iso27001,
    /// A domain of the tenant's own, written `custom:<name>`; the name is 1 to
    /// [`CUSTOM_DOMAIN_LEN_MAX`] characters of `a-z`, `0-9`, `_` and `-`.
    Custom(String),
}

/// What a domain argument must look like, for the message.
const DOMAIN_EXPECTED: &str =
    "one of gdpr, hipaa, soc2, pci_dss, iso27001 or custom:<name> (1 to 64 of a-z, 0-9, _, -)";

impl Domain {
    /// A custom domain, if `name` is a valid custom domain name.
    #[must_use]
    pub fn custom(name: &str) -> Option<Self> {
        let valid = !name.is_empty()
            && name.len() <= CUSTOM_DOMAIN_LEN_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        valid.then(|| Self::Custom(name.to_owned()))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gdpr => f.write_str("gdpr"),
            Self::Hipaa => f.write_str("hipaa"),
            Self::Soc2 => f.write_str("soc2"),
            Self::PciDss => f.write_str("pci_dss"),
            Self::Iso27001 => f.write_str("iso27001"),
            Self::Custom(name) => write!(f, "custom:{name}"),
        }
    }
}

/// A text that is not a [`Domain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a compliance domain")]
pub struct UnknownDomain;

impl FromStr for Domain {
    type Err = UnknownDomain;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gdpr" => Ok(Self::Gdpr),
            "hipaa" => Ok(Self::Hipaa),
            "soc2" => Ok(Self::Soc2),
            "pci_dss" => Ok(Self::PciDss),
            "iso27001" => Ok(Self::Iso27001),
            _ => s.strip_prefix("custom:").and_then(Self::custom).ok_or(UnknownDomain),
        }
    }
}

crate::define_arg_enum! {
    /// How serious a non-compliance finding is.
    pub enum Severity {
        /// Minor; no immediate risk.
        Low => "low",
        /// Needs attention.
        Medium => "medium",
        /// Serious risk.
        High => "high",
        /// Immediate risk; the highest level.
        Critical => "critical",
    }
}

impl Severity {
    /// One level higher; `critical` stays `critical`.
    #[must_use]
    pub const fn escalated(self) -> Self {
        match self {
            Self::Low => Self::Medium,
            Self::Medium => Self::High,
            Self::High | Self::Critical => Self::Critical,
        }
    }
}

/// What can be asked of an audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Sets the domain the audit covers; once only, before review.
    StartAudit {
        /// The compliance domain.
        domain: Domain,
    },
    /// Starts reviewing the domain: the first review, or a periodic re-audit of a compliant one.
    BeginReview,
    /// Records that the domain is compliant; closes the open finding, if any.
    MarkCompliant,
    /// Records a non-compliance finding.
    MarkNonCompliant {
        /// How serious the finding is.
        severity: Severity,
        /// What was found.
        finding: String,
    },
    /// Grants `deadline_days` days to remediate the open finding.
    RequestRemediation {
        /// The deadline in days, 1 to [`REMEDIATION_DAYS_MAX`].
        deadline_days: u32,
    },
    /// The remediation deadline passed; sent by the state timeout at `remediation_due`.
    RemediationOverdue,
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "start_audit",
        "begin_review",
        "mark_compliant",
        "mark_non_compliant",
        "request_remediation",
        "remediation_overdue",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::StartAudit { .. } => "start_audit",
            Self::BeginReview => "begin_review",
            Self::MarkCompliant => "mark_compliant",
            Self::MarkNonCompliant { .. } => "mark_non_compliant",
            Self::RequestRemediation { .. } => "request_remediation",
            Self::RemediationOverdue => "remediation_overdue",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::StartAudit { domain } => {
                a.insert("domain".into(), domain.to_string());
            }
            Self::MarkNonCompliant { severity, finding } => {
                a.insert("severity".into(), severity.name().into());
                a.insert("finding".into(), finding.clone());
            }
            Self::RequestRemediation { deadline_days } => {
                a.insert("deadline_days".into(), deadline_days.to_string());
            }
            Self::BeginReview | Self::MarkCompliant | Self::RemediationOverdue => {}
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let cmd = match r.command() {
            "start_audit" => Self::StartAudit { domain: r.parsed("domain", DOMAIN_EXPECTED)? },
            "begin_review" => Self::BeginReview,
            "mark_compliant" => Self::MarkCompliant,
            "mark_non_compliant" => Self::MarkNonCompliant {
                severity: r.parsed("severity", Severity::EXPECTED)?,
                finding: r.text("finding")?,
            },
            "request_remediation" => Self::RequestRemediation {
                deadline_days: r.u32_in(
                    "deadline_days",
                    1,
                    REMEDIATION_DAYS_MAX,
                    "1 to 365 days",
                )?,
            },
            _ => Self::RemediationOverdue,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(_ctx: &Ctx) -> Vec<Self> {
        vec![
            Self::StartAudit { domain: Domain::Soc2 },
            Self::BeginReview,
            Self::MarkCompliant,
            Self::MarkNonCompliant {
                severity: Severity::High,
                finding: "access reviews not performed".into(),
            },
            Self::RequestRemediation { deadline_days: 30 },
            Self::RemediationOverdue,
        ]
    }
}

/// One compliance audit: its state and the data that travels with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    state: StateCell,
    /// The domain audited; set by `start_audit`, which review requires.
    domain: Option<Domain>,
    /// The open finding's severity; raised when a remediation deadline passes.
    severity: Option<Severity>,
    /// The open finding's text, until the audit is marked compliant.
    finding: Option<String>,
    /// When the current remediation is due; arms the overdue timeout.
    remediation_due: Option<Timestamp>,
    /// How many non-compliance findings were recorded, for the audit's history.
    findings: u32,
    /// How many remediation deadlines passed, for the audit's history.
    overdue: u32,
}

impl Audit {
    /// The audited domain, once started.
    #[must_use]
    pub fn domain(&self) -> Option<&Domain> {
        self.domain.as_ref()
    }

    /// The open finding's severity, if a finding is open.
    #[must_use]
    pub fn severity(&self) -> Option<Severity> {
        self.severity
    }

    /// The open finding's text, if a finding is open.
    #[must_use]
    pub fn finding(&self) -> Option<&str> {
        self.finding.as_deref()
    }

    /// When the current (or last missed) remediation is due.
    #[must_use]
    pub fn remediation_due(&self) -> Option<Timestamp> {
        self.remediation_due
    }

    /// How many non-compliance findings were recorded.
    #[must_use]
    pub fn findings(&self) -> u32 {
        self.findings
    }

    /// How many remediation deadlines passed.
    #[must_use]
    pub fn overdue(&self) -> u32 {
        self.overdue
    }
}

impl Governor for Audit {
    const KIND: GovernorKind = GovernorKind::Compliance;
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
            (S::PendingAudit, C::StartAudit { .. }) => {
                if self.domain.is_some() {
                    return Err(Rejection::unmet("start_audit", "the audit has already started"));
                }
                S::PendingAudit
            }
            (S::PendingAudit, C::BeginReview) => {
                if self.domain.is_none() {
                    return Err(Rejection::unmet("begin_review", "start_audit must come first"));
                }
                S::UnderReview
            }
            (S::Compliant, C::BeginReview) => S::UnderReview,
            (S::UnderReview | S::RemediationRequired, C::MarkCompliant) => S::Compliant,
            (S::UnderReview, C::MarkNonCompliant { .. }) => S::NonCompliant,
            (S::NonCompliant, C::RequestRemediation { .. }) => S::RemediationRequired,
            (S::RemediationRequired, C::RemediationOverdue) => match self.remediation_due {
                Some(due) if ctx.now < due => {
                    return Err(Rejection::TooEarly {
                        command: "remediation_overdue",
                        not_before: due,
                    });
                }
                _ => S::NonCompliant,
            },
            (
                S::PendingAudit
                | S::UnderReview
                | S::Compliant
                | S::NonCompliant
                | S::RemediationRequired,
                _,
            ) => return Err(self.invalid(command)),
        };
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::StartAudit { domain } => {
                self.domain = Some(domain.clone());
            }
            Command::MarkCompliant => {
                self.severity = None;
                self.finding = None;
                self.remediation_due = None;
            }
            Command::MarkNonCompliant { severity, finding } => {
                self.severity = Some(*severity);
                self.finding = Some(finding.clone());
                self.findings = self.findings.saturating_add(1);
            }
            Command::RequestRemediation { deadline_days } => {
                self.remediation_due = Some(at.plus_ms(u64::from(*deadline_days) * DAY_MS));
            }
            Command::RemediationOverdue => {
                self.severity = self.severity.map(Severity::escalated);
                self.overdue = self.overdue.saturating_add(1);
            }
            Command::BeginReview => {}
        }
        self.state.0 = to;
    }

    fn state_timeout(&self) -> Option<StateTimeout<Command>> {
        match self.state.0 {
            State::RemediationRequired => self
                .remediation_due
                .map(|at| StateTimeout { at, command: Command::RemediationOverdue }),
            State::PendingAudit | State::UnderReview | State::Compliant | State::NonCompliant => {
                None
            }
        }
    }
}

/// The tag of a custom domain in a machine's state; the named domains are 0 to 4.
const CUSTOM_DOMAIN_TAG: u8 = 5;

impl StateCodec for Audit {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.option(self.domain.as_ref(), |w, d| match d {
            Domain::Gdpr => w.u8(0),
            Domain::Hipaa => w.u8(1),
            Domain::Soc2 => w.u8(2),
            Domain::PciDss => w.u8(3),
            Domain::Iso27001 => w.u8(4),
            Domain::Custom(name) => {
                w.u8(CUSTOM_DOMAIN_TAG);
                w.str("domain", name, CUSTOM_DOMAIN_LEN_MAX);
            }
        });
        w.option(self.severity.as_ref(), |w, s| w.choice("severity", s, Severity::ALL));
        w.opt_str("finding", self.finding.as_deref(), TEXT_ARG_LEN_MAX);
        w.opt_timestamp(self.remediation_due);
        w.u32(self.findings);
        w.u32(self.overdue);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        let state = StateCell(r.state()?);
        let domain = r.option("domain", |r| match r.u8("domain")? {
            0 => Ok(Domain::Gdpr),
            1 => Ok(Domain::Hipaa),
            2 => Ok(Domain::Soc2),
            3 => Ok(Domain::PciDss),
            4 => Ok(Domain::Iso27001),
            CUSTOM_DOMAIN_TAG => {
                let name = r.str("domain", CUSTOM_DOMAIN_LEN_MAX)?;
                Domain::custom(&name).ok_or_else(|| {
                    r.err("domain", CodecProblem::Invalid { expected: DOMAIN_EXPECTED })
                })
            }
            tag => Err(r.err("domain", CodecProblem::BadTag { tag })),
        })?;
        Ok(Self {
            state,
            domain,
            severity: r.option("severity", |r| r.choice("severity", Severity::ALL))?,
            finding: r.opt_str("finding", TEXT_ARG_LEN_MAX)?,
            remediation_due: r.opt_timestamp("remediation_due")?,
            findings: r.u32("findings")?,
            overdue: r.u32("overdue")?,
        })
    }
}

#[cfg(test)]
mod tests;

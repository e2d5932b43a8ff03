//! Audit governor: one tenant's trail of what the runtime itself decided about the tenant,
//! beside its governors' own transitions.
//!
//! A governor's receipts record what was asked of it and accepted. Some decisions are the
//! runtime's, not a governor's: it quarantined one of the tenant's governors after repeated
//! crashes (and refused its commands meanwhile). Those are receipted here, one receipt per
//! decision, so that the tenant's audit trail shows them in order with everything else and an
//! export carries them. The audit governor has one state, `recording`, and every command is a
//! self-transition that is always accepted: the runtime has already decided; the receipt is
//! the record of it. Its resource id is the tenant's own id, as the tenant governor's is.
//!
//! Not to be confused with the compliance governor (`compliance`), whose resource is one
//! compliance audit with a lifecycle of its own.

use crate::args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
use crate::governor::{Governor, Transition};
use crate::kind::GovernorKind;
use crate::rejection::Rejection;
use crate::time::{Ctx, Timestamp};

crate::define_states! {
    /// The audit trail has one state: it records.
    pub enum State {
        /// Recording the runtime's decisions about the tenant.
        Recording => "recording",
    }
    terminal: []
}

/// What a quarantine's level must be, for the message.
const LEVEL_EXPECTED: &str = "a quarantine level of 1 or more";
/// What a quarantine's length must be, for the message.
const LENGTH_EXPECTED: &str = "a quarantine length of 1 ms or more";

/// What the runtime records about a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// One of the tenant's governors crashed again and again and is quarantined: its
    /// commands are refused `governor_unavailable` until `until`.
    RecordQuarantine {
        /// The quarantined governor's kind.
        governor: GovernorKind,
        /// Its resource id.
        resource: String,
        /// Which quarantine of this governor this is (1 for the first; each lasts twice as
        /// long as the one before, up to the runtime's maximum).
        level: u64,
        /// How long it lasts, in milliseconds.
        length_ms: u64,
    },
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &["record_quarantine"];

    fn name(&self) -> &'static str {
        match self {
            Self::RecordQuarantine { .. } => "record_quarantine",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::RecordQuarantine { governor, resource, level, length_ms } => {
                a.insert("governor".into(), governor.name().into());
                a.insert("resource".into(), resource.clone());
                a.insert("level".into(), level.to_string());
                a.insert("length_ms".into(), length_ms.to_string());
            }
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let governor = r.raw("governor")?;
        let governor = GovernorKind::from_name(governor).ok_or_else(|| {
            ArgError::new(
                name,
                "governor",
                Some(governor),
                ArgProblem::Malformed { expected: "a governor kind" },
            )
        })?;
        let cmd = Self::RecordQuarantine {
            governor,
            resource: r.text("resource")?,
            level: r.positive_u64("level", LEVEL_EXPECTED)?,
            length_ms: r.positive_u64("length_ms", LENGTH_EXPECTED)?,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(_ctx: &Ctx) -> Vec<Self> {
        vec![Self::RecordQuarantine {
            governor: GovernorKind::Billing,
            resource: "pay-1".into(),
            level: 1,
            length_ms: 1_000,
        }]
    }
}

/// One tenant's audit trail: what has been recorded so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trail {
    state: StateCell,
    /// Quarantines recorded.
    quarantines: u64,
    /// When the last one was recorded.
    last_quarantine_at: Option<Timestamp>,
}

impl Trail {
    /// How many quarantines have been recorded.
    #[must_use]
    pub fn quarantines(&self) -> u64 {
        self.quarantines
    }

    /// When the last quarantine was recorded.
    #[must_use]
    pub fn last_quarantine_at(&self) -> Option<Timestamp> {
        self.last_quarantine_at
    }
}

impl Governor for Trail {
    const KIND: GovernorKind = GovernorKind::Audit;
    type State = State;
    type Command = Command;

    fn state(&self) -> State {
        self.state.0
    }

    fn decide(&self, command: &Command, _ctx: &Ctx) -> Result<Transition<State>, Rejection> {
        // The runtime has decided already; the record is always taken.
        match command {
            Command::RecordQuarantine { .. } => {
                Ok(Transition { from: State::Recording, to: State::Recording })
            }
        }
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::RecordQuarantine { .. } => {
                self.quarantines += 1;
                self.last_quarantine_at = Some(at);
            }
        }
        self.state.0 = to;
    }
}

#[cfg(test)]
mod tests;

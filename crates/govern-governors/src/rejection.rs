//! Rejections: a refused command is a value with a reason, never a panic or an actor failure.

use crate::args::ArgError;
use crate::kind::GovernorKind;
use crate::time::Timestamp;

/// Why a governor refused a command. The machine is unchanged and no receipt is written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The command has no transition from the current state.
    #[error("{command} is not allowed in state {state} of the {governor} governor")]
    InvalidTransition {
        /// The governor kind.
        governor: GovernorKind,
        /// The current state's name.
        state: &'static str,
        /// The command's name.
        command: &'static str,
    },
    /// An argument is invalid (unknown currency, empty id, zero limit, malformed e-mail...).
    #[error(transparent)]
    InvalidArgument(Box<ArgError>),
    /// The command is allowed in this state, but not yet (a trial ending before its end).
    #[error("{command} is too early: allowed from {not_before}")]
    TooEarly {
        /// The command's name.
        command: &'static str,
        /// The first instant at which it is allowed.
        not_before: Timestamp,
    },
    /// The command is allowed in this state, but a condition on the machine's data fails.
    #[error("{command} refused: {condition}")]
    PreconditionFailed {
        /// The command's name.
        command: &'static str,
        /// The condition that does not hold, as a sentence fragment.
        condition: &'static str,
    },
}

impl Rejection {
    /// The stable snake_case kind used by scripts and logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::TooEarly { .. } => "too_early",
            Self::PreconditionFailed { .. } => "precondition_failed",
        }
    }

    /// A precondition failure of `command`.
    #[must_use]
    pub const fn unmet(command: &'static str, condition: &'static str) -> Self {
        Self::PreconditionFailed { command, condition }
    }
}

impl From<ArgError> for Rejection {
    fn from(e: ArgError) -> Self {
        Self::InvalidArgument(Box::new(e))
    }
}

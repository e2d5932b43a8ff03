//! The governor contract: decide purely, evolve exactly, replay from the record.

use std::fmt;

use crate::args::{Args, CommandSpec};
use crate::codec::{StateCodec, StateCodecError};
use crate::kind::GovernorKind;
use crate::rejection::Rejection;
use crate::time::{Ctx, Timestamp};

/// A governor's state names: a closed, fieldless set with stable names.
pub trait StateSpec: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// Every state, in table order. The first one is the initial state.
    const ALL: &'static [Self];

    /// The stable snake_case name used in receipts, logs and scripts.
    fn name(self) -> &'static str;

    /// Whether no command leaves this state.
    fn is_terminal(self) -> bool;

    /// The state with this name, if any.
    #[must_use]
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// An accepted command's effect on the state: from where to where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition<S> {
    /// The state before.
    pub from: S,
    /// The state after (equal to `from` for a self-transition, which is still receipted).
    pub to: S,
}

/// A command the runtime must send to the governor at a given time unless the state changes
/// first (gen_statem's state timeout): a trial ends, a maintenance window closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTimeout<C> {
    /// When the command becomes due.
    pub at: Timestamp,
    /// The command to send; it goes through `decide` like any other.
    pub command: C,
}

/// One governor: a machine of typed data in one of a closed set of states.
///
/// `Default` is the machine before its first command. Its whole state encodes to bytes and
/// back ([`StateCodec`], through [`Self::encode_state`] and [`Self::decode_state`]).
pub trait Governor:
    StateCodec + Clone + fmt::Debug + Default + PartialEq + Send + Sync + 'static
{
    /// Which governor this is.
    const KIND: GovernorKind;
    /// Its states.
    type State: StateSpec;
    /// Its commands.
    type Command: CommandSpec;

    /// The current state.
    fn state(&self) -> Self::State;

    /// Decides whether `command` is accepted now, and into which state. Pure: no I/O, no
    /// clock (time is `ctx.now`), no mutation.
    ///
    /// # Errors
    /// A [`Rejection`] naming the state and command, a bad argument or an unmet condition.
    fn decide(
        &self,
        command: &Self::Command,
        ctx: &Ctx,
    ) -> Result<Transition<Self::State>, Rejection>;

    /// Applies an accepted command: moves to `to` and records the command's data. Never
    /// refuses; replay calls it with recorded commands.
    fn evolve(&mut self, command: &Self::Command, to: Self::State, at: Timestamp);

    /// Completes an accepted `command` with what the machine knows and the caller left out,
    /// so that its receipt (whose arguments are the command's canonical arguments, which
    /// replay parses) records it: the billing governor fills in the amount and currency.
    /// [`Self::accept`] calls it once `decide` accepted the command; `decide` has already
    /// checked whatever the caller did state, and this never changes it. Pure. The default
    /// completes nothing. Hosts call [`Self::accept`], not this.
    fn complete(&self, _command: &mut Self::Command) {}

    /// [`Self::decide`], then, when accepted, [`Self::complete`]: the command a host seals
    /// into the receipt and evolves with, and its transition. Every host decides through
    /// this, so that no receipt misses what completion adds.
    ///
    /// # Errors
    /// The rejection from `decide`; the command is then unchanged.
    fn accept(
        &self,
        command: &mut Self::Command,
        ctx: &Ctx,
    ) -> Result<Transition<Self::State>, Rejection> {
        let t = self.decide(command, ctx)?;
        self.complete(command);
        Ok(t)
    }

    /// The state timeout armed in the current state, if any. Derived from the machine, so a
    /// replayed governor re-arms exactly what the live one had.
    fn state_timeout(&self) -> Option<StateTimeout<Self::Command>> {
        None
    }

    /// [`Self::accept`] on a copy of `command`, then [`Self::evolve`] with the completed
    /// command when accepted, as a host does without the receipt.
    ///
    /// # Errors
    /// The rejection from `decide`; the machine is then unchanged.
    fn apply(
        &mut self,
        command: &Self::Command,
        ctx: &Ctx,
    ) -> Result<Transition<Self::State>, Rejection> {
        let mut command = command.clone();
        let t = self.accept(&mut command, ctx)?;
        self.evolve(&command, t.to, ctx.now);
        Ok(t)
    }

    /// The machine's whole state as bytes: kind tag, format version, fields
    /// (`codec.rs`). The same machine always gives the same bytes, and
    /// [`Self::decode_state`] gives it back: equal, and deciding every further command as
    /// this one would.
    ///
    /// # Errors
    /// [`StateCodecError`] naming a text longer than the limit its command argument is
    /// parsed with (reachable only through typed commands that receipts could not replay).
    fn encode_state(&self) -> Result<Vec<u8>, StateCodecError> {
        crate::codec::encode(self)
    }

    /// The machine whose [`Self::encode_state`] bytes these are. Never panics and never
    /// allocates more than the input's length allows, whatever the bytes.
    ///
    /// # Errors
    /// [`StateCodecError`] naming the first field that is truncated, out of bounds or not
    /// in its one canonical form, another kind's state, or another format version.
    fn decode_state(bytes: &[u8]) -> Result<Self, StateCodecError> {
        crate::codec::decode(bytes)
    }

    /// The rejection for a command that has no edge from the current state.
    fn invalid(&self, command: &Self::Command) -> Rejection {
        Rejection::InvalidTransition {
            governor: Self::KIND,
            state: self.state().name(),
            command: command.name(),
        }
    }
}

/// Why a recorded transition cannot be replayed onto a machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The record belongs to another governor kind.
    #[error("record is for governor {found}, not {expected}")]
    WrongGovernor {
        /// The kind being replayed.
        expected: GovernorKind,
        /// The kind in the record.
        found: String,
    },
    /// A state name in the record is not a state of this governor.
    #[error("unknown state {0:?}")]
    UnknownState(String),
    /// The record's command does not parse.
    #[error("recorded command does not parse: {0}")]
    BadCommand(#[from] crate::args::ArgError),
    /// The record starts from another state than the machine is in.
    #[error("record starts from {recorded} but the machine is in {actual}")]
    StateMismatch {
        /// The machine's state.
        actual: &'static str,
        /// The record's `state_from`.
        recorded: String,
    },
}

/// Applies one recorded transition (as a receipt stores it) to `machine`.
///
/// The recorded command is parsed back and applied with [`Governor::evolve`]; guards are not
/// run again, because history is a fact, but the recorded starting state must match.
///
/// # Errors
/// [`ReplayError`] when the record does not fit the machine.
pub fn replay_step<G: Governor>(
    machine: &mut G,
    governor: &str,
    command: &str,
    args: &Args,
    state_from: &str,
    state_to: &str,
    at: Timestamp,
) -> Result<(), ReplayError> {
    if governor != G::KIND.name() {
        return Err(ReplayError::WrongGovernor { expected: G::KIND, found: governor.to_owned() });
    }
    let actual = machine.state().name();
    if actual != state_from {
        return Err(ReplayError::StateMismatch { actual, recorded: state_from.to_owned() });
    }
    let to = G::State::from_name(state_to)
        .ok_or_else(|| ReplayError::UnknownState(state_to.to_owned()))?;
    let command = G::Command::parse(command, args)?;
    machine.evolve(&command, to, at);
    Ok(())
}

/// Declares a governor's fieldless `State` enum with its stable names and terminal states,
/// and implements [`StateSpec`] for it. The first variant is the initial state. Also declares
/// the module-private `StateCell` wrapper a governor keeps its state in.
#[macro_export]
macro_rules! define_states {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
        terminal: [$($terminal:ident),* $(,)?]
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $crate::StateSpec for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];

            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            fn is_terminal(self) -> bool {
                false $(|| matches!(self, Self::$terminal))*
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::StateSpec::name(*self))
            }
        }

        /// The machine's state, private to its module so that only `evolve` moves it, with
        /// the initial (first declared) state as its default.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        struct StateCell($name);

        impl Default for StateCell {
            fn default() -> Self {
                // `ALL` lists every variant in declaration order; the macro requires one.
                Self(<$name as $crate::StateSpec>::ALL[0])
            }
        }
    };
}

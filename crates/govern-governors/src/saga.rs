//! Saga governor: the record of one saga run, ordered steps across governors, each with a
//! compensating step. The runtime's saga coordinator runs the steps; this machine is what
//! it has done, receipted, so that a coordinator (or a whole runtime) that crashed resumes
//! from it: it continues where the last receipt says, or compensates.
//!
//! `begin` names the saga and its step count; each completed step is `step_done` (in order;
//! the last completes the saga); a failed step is `step_failed`, which starts compensating
//! the completed steps in reverse order (`compensated`, one per step; a failed attempt is
//! `compensation_failed`, retried by the coordinator) until none is left; a compensation
//! that keeps failing is `give_up`: the saga is `stuck` with its reason, for an operator,
//! who `resolve`s it once it is dealt with. Its resource id is the saga's id.

use crate::args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
use crate::codec::{StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, Transition};
use crate::kind::GovernorKind;
use crate::limits::TEXT_ARG_LEN_MAX;
use crate::rejection::Rejection;
use crate::time::{Ctx, Timestamp};

/// The most steps a saga has.
pub const SAGA_STEPS_MAX: u32 = 64;
/// The longest parameter list a saga records (`KEY=VALUE` lines), in bytes.
pub const SAGA_PARAMS_LEN_MAX: usize = 4_096;

crate::define_states! {
    /// Where a saga run is.
    pub enum State {
        /// Not begun.
        Pending => "pending",
        /// Running its steps in order.
        Running => "running",
        /// A step failed: undoing the completed ones, last first.
        Compensating => "compensating",
        /// Every step completed.
        Completed => "completed",
        /// A step failed and every completed step was undone (or none had completed).
        Compensated => "compensated",
        /// A compensation kept failing: an operator must look (`resolve` once done).
        Stuck => "stuck",
    }
    terminal: [Completed, Compensated]
}

/// What the coordinator records about a saga run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Begins a run of saga `saga` with `steps` steps and its parameters.
    Begin {
        /// The saga's name (its definition, as the runtime knows it).
        saga: String,
        /// How many steps it has, 1 to [`SAGA_STEPS_MAX`].
        steps: u32,
        /// Its parameters, `KEY=VALUE` lines sorted by key (what it is resumed with).
        params: String,
    },
    /// Step `step` (from 0, the next one) completed; after the last, the saga has.
    StepDone {
        /// The step.
        step: u32,
    },
    /// Step `step` (the next one) failed: compensation begins.
    StepFailed {
        /// The step.
        step: u32,
        /// Why.
        reason: String,
    },
    /// The compensation of step `step` (the last completed one not yet undone) completed.
    Compensated {
        /// The step.
        step: u32,
    },
    /// An attempt at compensating step `step` failed; the coordinator retries.
    CompensationFailed {
        /// The step.
        step: u32,
        /// Which attempt, from 1.
        attempt: u32,
        /// Why.
        reason: String,
    },
    /// The coordinator stops retrying: the saga is stuck.
    GiveUp {
        /// Why, for the operator.
        reason: String,
    },
    /// An operator dealt with a stuck saga.
    Resolve,
}

/// A problem with `argument` of `command`.
fn bad(command: &str, argument: &str, expected: &'static str) -> ArgError {
    ArgError::new(command, argument, None, ArgProblem::Malformed { expected })
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "begin",
        "step_done",
        "step_failed",
        "compensated",
        "compensation_failed",
        "give_up",
        "resolve",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::Begin { .. } => "begin",
            Self::StepDone { .. } => "step_done",
            Self::StepFailed { .. } => "step_failed",
            Self::Compensated { .. } => "compensated",
            Self::CompensationFailed { .. } => "compensation_failed",
            Self::GiveUp { .. } => "give_up",
            Self::Resolve => "resolve",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::Begin { saga, steps, params } => {
                a.insert("saga".into(), saga.clone());
                a.insert("steps".into(), steps.to_string());
                a.insert("params".into(), params.clone());
            }
            Self::StepDone { step } | Self::Compensated { step } => {
                a.insert("step".into(), step.to_string());
            }
            Self::StepFailed { step, reason } => {
                a.insert("step".into(), step.to_string());
                a.insert("failure".into(), reason.clone());
            }
            Self::CompensationFailed { step, attempt, reason } => {
                a.insert("step".into(), step.to_string());
                a.insert("attempt".into(), attempt.to_string());
                a.insert("failure".into(), reason.clone());
            }
            Self::GiveUp { reason } => {
                a.insert("failure".into(), reason.clone());
            }
            Self::Resolve => {}
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let step = |r: &mut ArgReader<'_>| r.u32_in("step", 0, SAGA_STEPS_MAX - 1, "a step index");
        // A failure as it was (a rejection's message may be long): cut, never refused.
        let failure = |r: &mut ArgReader<'_>| -> Result<String, ArgError> {
            let v = r.raw("failure")?;
            if v.is_empty() {
                return Err(bad(name, "failure", "a reason"));
            }
            Ok(cut(v))
        };
        let cmd = match r.command() {
            "begin" => {
                let saga = r.text("saga")?;
                let steps = r.u32_in("steps", 1, SAGA_STEPS_MAX, "1 to 64 steps")?;
                let params = r.optional_raw("params").unwrap_or_default();
                if params.len() > SAGA_PARAMS_LEN_MAX
                    || params.chars().any(|c| c.is_control() && c != '\n')
                {
                    return Err(bad(name, "params", "KEY=VALUE lines, at most 4096 bytes"));
                }
                Self::Begin { saga, steps, params: params.to_owned() }
            }
            "step_done" => Self::StepDone { step: step(&mut r)? },
            "step_failed" => Self::StepFailed { step: step(&mut r)?, reason: failure(&mut r)? },
            "compensated" => Self::Compensated { step: step(&mut r)? },
            "compensation_failed" => Self::CompensationFailed {
                step: step(&mut r)?,
                attempt: r.u32_in("attempt", 1, u32::MAX, "an attempt from 1")?,
                reason: failure(&mut r)?,
            },
            "give_up" => Self::GiveUp { reason: failure(&mut r)? },
            _ => Self::Resolve,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(_ctx: &Ctx) -> Vec<Self> {
        vec![
            Self::Begin { saga: "onboarding".into(), steps: 2, params: "plan=pro".into() },
            Self::StepDone { step: 0 },
            Self::StepDone { step: 1 },
            Self::StepFailed { step: 0, reason: "declined".into() },
            Self::StepFailed { step: 1, reason: "declined".into() },
            Self::Compensated { step: 0 },
            Self::CompensationFailed { step: 0, attempt: 1, reason: "busy".into() },
            Self::GiveUp { reason: "compensation failed 5 times".into() },
            Self::Resolve,
        ]
    }
}

/// `text` cut to at most [`TEXT_ARG_LEN_MAX`] bytes at a character boundary.
#[must_use]
pub fn cut(text: &str) -> String {
    let mut end = text.len().min(TEXT_ARG_LEN_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// One saga run: its state and what it has done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saga {
    state: StateCell,
    /// The saga's name.
    saga: Option<String>,
    /// Its parameters.
    params: String,
    /// Its step count.
    steps: u32,
    /// Steps completed, in order: `0..done`.
    done: u32,
    /// Completed steps not yet undone while compensating: `0..to_undo`.
    to_undo: u32,
    /// The step that failed, and why.
    failed: Option<(u32, String)>,
    /// Failed attempts at the current compensation.
    attempts: u32,
    /// Why it is stuck.
    stuck: Option<String>,
    /// When it began.
    began_at: Option<Timestamp>,
}

impl Saga {
    /// The saga's name, once begun.
    #[must_use]
    pub fn saga(&self) -> Option<&str> {
        self.saga.as_deref()
    }

    /// Its parameters (`KEY=VALUE` lines).
    #[must_use]
    pub fn params(&self) -> &str {
        &self.params
    }

    /// Its step count.
    #[must_use]
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// How many steps completed (in order).
    #[must_use]
    pub fn done(&self) -> u32 {
        self.done
    }

    /// While compensating: the completed steps not yet undone (`0..to_undo`, the last first).
    #[must_use]
    pub fn to_undo(&self) -> u32 {
        self.to_undo
    }

    /// The step that failed and why.
    #[must_use]
    pub fn failed(&self) -> Option<(u32, &str)> {
        self.failed.as_ref().map(|(s, r)| (*s, r.as_str()))
    }

    /// Failed attempts at the current compensation.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why it is stuck.
    #[must_use]
    pub fn stuck(&self) -> Option<&str> {
        self.stuck.as_deref()
    }

    /// When it began.
    #[must_use]
    pub fn began_at(&self) -> Option<Timestamp> {
        self.began_at
    }

    fn next_step(&self, command: &'static str, step: u32) -> Result<(), Rejection> {
        if step == self.done && step < self.steps {
            Ok(())
        } else {
            Err(Rejection::unmet(command, "steps complete in order: the step is the next one"))
        }
    }

    fn next_undo(&self, command: &'static str, step: u32) -> Result<(), Rejection> {
        if self.to_undo > 0 && step == self.to_undo - 1 {
            Ok(())
        } else {
            Err(Rejection::unmet(
                command,
                "compensations run last first: the step is the last one not yet undone",
            ))
        }
    }
}

impl Governor for Saga {
    const KIND: GovernorKind = GovernorKind::Saga;
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
            (S::Pending, C::Begin { .. }) => S::Running,
            (S::Running, C::StepDone { step }) => {
                self.next_step("step_done", *step)?;
                if step + 1 == self.steps { S::Completed } else { S::Running }
            }
            (S::Running, C::StepFailed { step, .. }) => {
                self.next_step("step_failed", *step)?;
                if self.done == 0 { S::Compensated } else { S::Compensating }
            }
            (S::Compensating, C::Compensated { step }) => {
                self.next_undo("compensated", *step)?;
                if *step == 0 { S::Compensated } else { S::Compensating }
            }
            (S::Compensating, C::CompensationFailed { step, .. }) => {
                self.next_undo("compensation_failed", *step)?;
                S::Compensating
            }
            (S::Compensating, C::GiveUp { .. }) => S::Stuck,
            (S::Stuck, C::Resolve) => S::Compensated,
            (
                S::Pending
                | S::Running
                | S::Compensating
                | S::Completed
                | S::Compensated
                | S::Stuck,
                _,
            ) => return Err(self.invalid(command)),
        };
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::Begin { saga, steps, params } => {
                self.saga = Some(saga.clone());
                self.steps = *steps;
                self.params.clone_from(params);
                self.began_at = Some(at);
            }
            // Saturating: a replayed record is not decided again, and a decoded state may hold
            // any count.
            Command::StepDone { .. } => self.done = self.done.saturating_add(1),
            Command::StepFailed { step, reason } => {
                self.failed = Some((*step, reason.clone()));
                self.to_undo = self.done;
            }
            Command::Compensated { .. } => {
                self.to_undo = self.to_undo.saturating_sub(1);
                self.attempts = 0;
            }
            Command::CompensationFailed { attempt, .. } => self.attempts = *attempt,
            Command::GiveUp { reason } => self.stuck = Some(reason.clone()),
            Command::Resolve => self.to_undo = 0,
        }
        self.state.0 = to;
    }
}

impl StateCodec for Saga {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.opt_str("saga", self.saga.as_deref(), TEXT_ARG_LEN_MAX);
        w.str("params", &self.params, SAGA_PARAMS_LEN_MAX);
        w.u32(self.steps);
        w.u32(self.done);
        w.u32(self.to_undo);
        w.option(self.failed.as_ref(), |w, (step, reason)| {
            w.u32(*step);
            w.str("failed", reason, TEXT_ARG_LEN_MAX);
        });
        w.u32(self.attempts);
        w.opt_str("stuck", self.stuck.as_deref(), TEXT_ARG_LEN_MAX);
        w.opt_timestamp(self.began_at);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        Ok(Self {
            state: StateCell(r.state()?),
            saga: r.opt_str("saga", TEXT_ARG_LEN_MAX)?,
            params: r.str("params", SAGA_PARAMS_LEN_MAX)?,
            steps: r.u32("steps")?,
            done: r.u32("done")?,
            to_undo: r.u32("to_undo")?,
            failed: r
                .option("failed", |r| Ok((r.u32("failed")?, r.str("failed", TEXT_ARG_LEN_MAX)?)))?,
            attempts: r.u32("attempts")?,
            stuck: r.opt_str("stuck", TEXT_ARG_LEN_MAX)?,
            began_at: r.opt_timestamp("began_at")?,
        })
    }
}

#[cfg(test)]
mod tests;

//! Subscription governor: one customer's subscription to a plan, from trial to archive.
//!
//! Adopted from Stripe: a trial that ends without conversion pauses the subscription (the
//! only way into `paused` there); cancellation is requested, then confirmed with an optional
//! end of the paid period, and takes effect (`terminated`) at that end.
//!
//! Plan changes (`change_plan`, an upgrade or a downgrade the runtime decided through the
//! catalog's gates, `govern_plans::simulate`) keep the subscription `active` and remember the
//! plan left and when, so that the catalog's cooldown can count from it and `rollback_plan`
//! can restore the plan left within [`PLAN_ROLLBACK_WINDOW_MS`].

use crate::args::{ArgError, ArgReader, Args, CommandSpec};
use crate::codec::{StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, StateTimeout, Transition};
use crate::kind::GovernorKind;
use crate::limits::{PLAN_ROLLBACK_WINDOW_MS, TEXT_ARG_LEN_MAX, TRIAL_DAYS_MAX};
use crate::rejection::Rejection;
use crate::time::{Ctx, DAY_MS, Timestamp};

crate::define_states! {
    /// Where a subscription is in its life.
    pub enum State {
        /// Created, nothing started yet.
        Pending => "pending",
        /// In a free trial until `trial_end`.
        FreeTrial => "free_trial",
        /// Paid and in service.
        Active => "active",
        /// Service withheld by the provider (payment failed, abuse).
        Suspended => "suspended",
        /// Service paused, at the customer's wish or because a trial lapsed.
        Paused => "paused",
        /// The customer asked to cancel; not yet confirmed.
        CancellationRequested => "cancellation_requested",
        /// Cancellation confirmed; service runs until `ends_at`, if given.
        CancellationConfirmed => "cancellation_confirmed",
        /// Service has ended.
        Terminated => "terminated",
        /// Kept for the record only.
        Archived => "archived",
    }
    terminal: [Archived]
}

/// What can be asked of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Begins a free trial of `plan` for `trial_days` days.
    StartTrial {
        /// The plan id.
        plan: String,
        /// Trial length in days, 1 to [`TRIAL_DAYS_MAX`].
        trial_days: u32,
    },
    /// Starts paid service (from pending or a trial), optionally on another plan; also keeps
    /// a subscription whose cancellation was requested but not confirmed (on the plan in
    /// force: once paid service has begun, only `change_plan` and `rollback_plan` change it).
    Activate {
        /// The plan id; required when no plan is set yet.
        plan: Option<String>,
    },
    /// Ends a trial that was not converted; sent by the state timeout at `trial_end`.
    EndTrial,
    /// Withholds service.
    Suspend,
    /// Pauses service at the customer's wish.
    Pause,
    /// Resumes a suspended or paused subscription.
    Resume,
    /// Records the customer's wish to cancel.
    RequestCancellation,
    /// Confirms the cancellation; service ends at `ends_at` (default: now, with no timeout).
    ConfirmCancellation {
        /// End of the paid period, if later than now.
        ends_at: Option<Timestamp>,
    },
    /// Ends service once the paid period is over; sent by the state timeout at `ends_at`.
    Terminate,
    /// Archives a subscription whose service has ended.
    Archive,
    /// Moves an active subscription from the plan in force to another (a self-transition of
    /// `active`); the runtime sends it once the catalog's path, cooldown and gates allow it.
    ChangePlan {
        /// The plan moved to.
        plan: String,
        /// The plan in force when the change was decided: refused if it is no longer so.
        previous: String,
        /// Upgrade or downgrade, as the catalog's paths make it.
        kind: PlanChangeKind,
    },
    /// Restores the plan a `change_plan` left, within [`PLAN_ROLLBACK_WINDOW_MS`] of it.
    RollbackPlan {
        /// The plan restored: the one the last `change_plan` left (named, so that the receipt
        /// says which plan is in force, as every plan-setting receipt does).
        plan: String,
    },
}

/// Which way a plan change goes (`govern_plans::ChangeKind`, as a receipt writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanChangeKind {
    /// Along an upgrade path.
    Upgrade,
    /// Back down a chain of upgrade paths.
    Downgrade,
}

impl PlanChangeKind {
    /// `upgrade` or `downgrade`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Upgrade => "upgrade",
            Self::Downgrade => "downgrade",
        }
    }
}

impl std::str::FromStr for PlanChangeKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "upgrade" => Ok(Self::Upgrade),
            "downgrade" => Ok(Self::Downgrade),
            _ => Err(()),
        }
    }
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "start_trial",
        "activate",
        "end_trial",
        "suspend",
        "pause",
        "resume",
        "request_cancellation",
        "confirm_cancellation",
        "terminate",
        "archive",
        "change_plan",
        "rollback_plan",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::StartTrial { .. } => "start_trial",
            Self::Activate { .. } => "activate",
            Self::EndTrial => "end_trial",
            Self::Suspend => "suspend",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::RequestCancellation => "request_cancellation",
            Self::ConfirmCancellation { .. } => "confirm_cancellation",
            Self::Terminate => "terminate",
            Self::Archive => "archive",
            Self::ChangePlan { .. } => "change_plan",
            Self::RollbackPlan { .. } => "rollback_plan",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::StartTrial { plan, trial_days } => {
                a.insert("plan".into(), plan.clone());
                a.insert("trial_days".into(), trial_days.to_string());
            }
            Self::Activate { plan: Some(plan) } => {
                a.insert("plan".into(), plan.clone());
            }
            Self::ConfirmCancellation { ends_at: Some(t) } => {
                a.insert("ends_at".into(), t.as_ms().to_string());
            }
            Self::RollbackPlan { plan } => {
                a.insert("plan".into(), plan.clone());
            }
            Self::ChangePlan { plan, previous, kind } => {
                a.insert("plan".into(), plan.clone());
                a.insert("previous".into(), previous.clone());
                a.insert("kind".into(), kind.name().into());
            }
            Self::Activate { plan: None }
            | Self::ConfirmCancellation { ends_at: None }
            | Self::EndTrial
            | Self::Suspend
            | Self::Pause
            | Self::Resume
            | Self::RequestCancellation
            | Self::Terminate
            | Self::Archive => {}
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let cmd = match r.command() {
            "start_trial" => Self::StartTrial {
                plan: r.text("plan")?,
                trial_days: r.u32_in("trial_days", 1, TRIAL_DAYS_MAX, "1 to 365 days")?,
            },
            "activate" => Self::Activate { plan: r.optional_text("plan")? },
            "end_trial" => Self::EndTrial,
            "suspend" => Self::Suspend,
            "pause" => Self::Pause,
            "resume" => Self::Resume,
            "request_cancellation" => Self::RequestCancellation,
            "confirm_cancellation" => {
                Self::ConfirmCancellation { ends_at: r.optional_timestamp("ends_at")? }
            }
            "terminate" => Self::Terminate,
            "change_plan" => Self::ChangePlan {
                plan: r.text("plan")?,
                previous: r.text("previous")?,
                kind: r.parsed("kind", "upgrade or downgrade")?,
            },
            "rollback_plan" => Self::RollbackPlan { plan: r.text("plan")? },
            _ => Self::Archive,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(ctx: &Ctx) -> Vec<Self> {
        vec![
            Self::StartTrial { plan: "pro".into(), trial_days: 14 },
            Self::Activate { plan: Some("pro".into()) },
            Self::EndTrial,
            Self::Suspend,
            Self::Pause,
            Self::Resume,
            Self::RequestCancellation,
            Self::ConfirmCancellation { ends_at: None },
            // At a period's end: arms the `terminate` timeout.
            Self::ConfirmCancellation { ends_at: Some(ctx.now.plus_ms(30 * DAY_MS)) },
            Self::Terminate,
            Self::Archive,
            Self::ChangePlan {
                plan: "enterprise".into(),
                previous: "pro".into(),
                kind: PlanChangeKind::Upgrade,
            },
            Self::RollbackPlan { plan: "pro".into() },
        ]
    }
}

/// One subscription: its state and the data that travels with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    state: StateCell,
    /// The plan subscribed to, once known.
    plan: Option<String>,
    /// When the free trial ends; set by `start_trial`.
    trial_end: Option<Timestamp>,
    /// When paid service first started.
    activated_at: Option<Timestamp>,
    /// When service ends after a confirmed cancellation.
    ends_at: Option<Timestamp>,
    /// When the plan last changed (`change_plan`, `rollback_plan`): the catalog's cooldowns
    /// count from it.
    plan_changed_at: Option<Timestamp>,
    /// The plan the last `change_plan` left, while it may be rolled back; `None` after a
    /// rollback (a rollback is not rolled back).
    previous_plan: Option<String>,
}

impl Subscription {
    /// The plan id, once set.
    #[must_use]
    pub fn plan(&self) -> Option<&str> {
        self.plan.as_deref()
    }

    /// When the trial ends, if one was started.
    #[must_use]
    pub fn trial_end(&self) -> Option<Timestamp> {
        self.trial_end
    }

    /// When service ends after a confirmed cancellation.
    #[must_use]
    pub fn ends_at(&self) -> Option<Timestamp> {
        self.ends_at
    }

    /// When paid service first started.
    #[must_use]
    pub fn activated_at(&self) -> Option<Timestamp> {
        self.activated_at
    }

    /// When the plan last changed, if ever.
    #[must_use]
    pub fn plan_changed_at(&self) -> Option<Timestamp> {
        self.plan_changed_at
    }

    /// The plan the last `change_plan` left, while a rollback may restore it.
    #[must_use]
    pub fn previous_plan(&self) -> Option<&str> {
        self.previous_plan.as_deref()
    }

    /// Until when `rollback_plan` is allowed: [`PLAN_ROLLBACK_WINDOW_MS`] after the last plan
    /// change, when there is a plan to restore.
    #[must_use]
    pub fn rollback_until(&self) -> Option<Timestamp> {
        self.previous_plan.as_ref()?;
        self.plan_changed_at.map(|at| at.plus_ms(PLAN_ROLLBACK_WINDOW_MS))
    }

    /// Once paid service has begun (`activated_at`), the plan in force changes only through
    /// `change_plan` (decided through the catalog's gates) or `rollback_plan`: `activate`
    /// (which leaves `cancellation_requested` with that plan still in force) may name it or
    /// none, never another. Before (from `pending`, a trial, or a trial whose cancellation was
    /// requested) it chooses the first paid plan.
    fn check_activate(&self, plan: Option<&str>) -> Result<(), Rejection> {
        match (plan, self.activated_at, self.plan.as_deref()) {
            (Some(asked), Some(_), Some(in_force)) if asked != in_force => Err(Rejection::unmet(
                "activate",
                "the plan in force changes only through plan changes (change_plan); activate names it or none",
            )),
            _ => Ok(()),
        }
    }

    fn check_change(&self, plan: &str, previous: &str) -> Result<(), Rejection> {
        if self.plan.as_deref() != Some(previous) {
            return Err(Rejection::unmet("change_plan", "`previous` is not the plan in force"));
        }
        if plan == previous {
            return Err(Rejection::unmet("change_plan", "the plan is already in force"));
        }
        Ok(())
    }

    fn check_rollback(&self, plan: &str, ctx: &Ctx) -> Result<(), Rejection> {
        if self.previous_plan.is_some() && self.previous_plan.as_deref() != Some(plan) {
            return Err(Rejection::unmet(
                "rollback_plan",
                "`plan` is not the plan the last change left",
            ));
        }
        match self.rollback_until() {
            None => Err(Rejection::unmet("rollback_plan", "no plan change to roll back")),
            Some(until) if ctx.now > until => {
                Err(Rejection::unmet("rollback_plan", "the rollback window has passed"))
            }
            Some(_) => Ok(()),
        }
    }

    fn service_ended(&self, command: &'static str, ctx: &Ctx) -> Result<(), Rejection> {
        match self.ends_at {
            Some(end) if ctx.now < end => Err(Rejection::TooEarly { command, not_before: end }),
            _ => Ok(()),
        }
    }
}

impl Governor for Subscription {
    const KIND: GovernorKind = GovernorKind::Subscription;
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
            (S::Pending, C::StartTrial { .. }) => S::FreeTrial,
            (S::Pending, C::Activate { plan: None }) => {
                return Err(Rejection::unmet("activate", "a plan is required to activate"));
            }
            (S::Pending | S::FreeTrial | S::CancellationRequested, C::Activate { plan }) => {
                self.check_activate(plan.as_deref())?;
                S::Active
            }
            (S::FreeTrial, C::EndTrial) => match self.trial_end {
                Some(end) if ctx.now < end => {
                    return Err(Rejection::TooEarly { command: "end_trial", not_before: end });
                }
                _ => S::Paused,
            },
            (S::Active, C::Suspend) => S::Suspended,
            (S::Active, C::Pause) => S::Paused,
            (S::Active, C::ChangePlan { plan, previous, .. }) => {
                self.check_change(plan, previous)?;
                S::Active
            }
            (S::Active, C::RollbackPlan { plan }) => {
                self.check_rollback(plan, ctx)?;
                S::Active
            }
            (S::Suspended | S::Paused, C::Resume) => S::Active,
            (S::FreeTrial | S::Active | S::Suspended | S::Paused, C::RequestCancellation) => {
                S::CancellationRequested
            }
            (S::CancellationRequested, C::ConfirmCancellation { ends_at }) => match ends_at {
                Some(end) if *end < ctx.now => {
                    return Err(ArgError::new(
                        "confirm_cancellation",
                        "ends_at",
                        Some(&end.as_ms().to_string()),
                        crate::ArgProblem::NotInFuture,
                    )
                    .into());
                }
                _ => S::CancellationConfirmed,
            },
            (S::CancellationConfirmed, C::Terminate) => {
                self.service_ended("terminate", ctx)?;
                S::Terminated
            }
            (S::CancellationConfirmed, C::Archive) => {
                self.service_ended("archive", ctx)?;
                S::Archived
            }
            (S::Terminated, C::Archive) => S::Archived,
            (
                S::Pending
                | S::FreeTrial
                | S::Active
                | S::Suspended
                | S::Paused
                | S::CancellationRequested
                | S::CancellationConfirmed
                | S::Terminated
                | S::Archived,
                _,
            ) => return Err(self.invalid(command)),
        };
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::StartTrial { plan, trial_days } => {
                self.plan = Some(plan.clone());
                self.trial_end = Some(at.plus_ms(u64::from(*trial_days) * DAY_MS));
            }
            Command::Activate { plan } => {
                if let Some(plan) = plan {
                    self.plan = Some(plan.clone());
                }
                self.activated_at.get_or_insert(at);
            }
            Command::ConfirmCancellation { ends_at } => {
                // No end given means service ends now: no state timeout is armed.
                self.ends_at = *ends_at;
            }
            Command::ChangePlan { plan, .. } => {
                self.previous_plan = self.plan.replace(plan.clone());
                self.plan_changed_at = Some(at);
            }
            Command::RollbackPlan { plan } => {
                self.previous_plan = None;
                self.plan = Some(plan.clone());
                self.plan_changed_at = Some(at);
            }
            Command::EndTrial
            | Command::Suspend
            | Command::Pause
            | Command::Resume
            | Command::RequestCancellation
            | Command::Terminate
            | Command::Archive => {}
        }
        self.state.0 = to;
    }

    fn state_timeout(&self) -> Option<StateTimeout<Command>> {
        match self.state.0 {
            State::FreeTrial => {
                self.trial_end.map(|at| StateTimeout { at, command: Command::EndTrial })
            }
            State::CancellationConfirmed => {
                self.ends_at.map(|at| StateTimeout { at, command: Command::Terminate })
            }
            State::Pending
            | State::Active
            | State::Suspended
            | State::Paused
            | State::CancellationRequested
            | State::Terminated
            | State::Archived => None,
        }
    }
}

impl StateCodec for Subscription {
    /// 2 added `plan_changed_at` and `previous_plan`; a state of version 1 decodes with
    /// neither (no plan change happened before version 2).
    const STATE_VERSION: u8 = 2;
    const STATE_VERSION_MIN: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.opt_str("plan", self.plan.as_deref(), TEXT_ARG_LEN_MAX);
        w.opt_timestamp(self.trial_end);
        w.opt_timestamp(self.activated_at);
        w.opt_timestamp(self.ends_at);
        // Version 2.
        w.opt_timestamp(self.plan_changed_at);
        w.opt_str("previous_plan", self.previous_plan.as_deref(), TEXT_ARG_LEN_MAX);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        let state = StateCell(r.state()?);
        let plan = r.opt_str("plan", TEXT_ARG_LEN_MAX)?;
        let trial_end = r.opt_timestamp("trial_end")?;
        let activated_at = r.opt_timestamp("activated_at")?;
        let ends_at = r.opt_timestamp("ends_at")?;
        // Version 1 ends here: it had no plan changes.
        let (plan_changed_at, previous_plan) = if r.version() < 2 {
            (None, None)
        } else {
            (r.opt_timestamp("plan_changed_at")?, r.opt_str("previous_plan", TEXT_ARG_LEN_MAX)?)
        };
        Ok(Self { state, plan, trial_end, activated_at, ends_at, plan_changed_at, previous_plan })
    }
}

#[cfg(test)]
mod tests;

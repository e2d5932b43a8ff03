//! The pure restart decision of an OTP-style supervisor: which children to stop, drop and start.
//!
//! ractor only delivers supervision events; what a supervisor does about them is decided here,
//! without tokio, ractor or a clock. Time comes in as a [`Duration`] since an arbitrary
//! monotonic origin, so the same inputs always give the same [`Decision`].
//!
//! The rules follow the Erlang/OTP supervisor (OTP Design Principles, "Supervisor Behaviour",
//! and `supervisor.erl`): restart types are applied first, then the restart intensity, then the
//! strategy. Every index in and out of [`decide`] is a position in the children slice as passed,
//! in start order.

use std::collections::VecDeque;
use std::time::Duration;

/// Which children are restarted along with a failed one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[allow(
    dead_code,
    reason = "the root uses one_for_one; the others are exercised by the supervisor tests"
)]
pub(crate) enum Strategy {
    /// Only the failed child is restarted (OTP `one_for_one`, the OTP default).
    #[default]
    OneForOne,
    /// Every other child is stopped, then all are started again (OTP `one_for_all`).
    OneForAll,
    /// The children started after the failed one are stopped, then the failed one and those
    /// are started again (OTP `rest_for_one`).
    RestForOne,
}

/// When a child that ended is restarted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum RestartType {
    /// Always restarted, even after a clean exit (OTP `permanent`, the OTP default).
    #[default]
    Permanent,
    /// Restarted only after a failure, not after `normal` or `shutdown` (OTP `transient`).
    #[allow(dead_code, reason = "OTP's restart types are complete; the policy's tests use it")]
    Transient,
    /// Never restarted, not even by a sibling's one_for_all or rest_for_one restart
    /// (OTP `temporary`).
    Temporary,
}

impl RestartType {
    /// Whether a child of this type that ended with `exit` is due for a restart
    /// (OTP: permanent always, transient on an abnormal reason, temporary never).
    #[must_use]
    pub(crate) const fn restarts_after(self, exit: Exit) -> bool {
        match self {
            Self::Permanent => true,
            Self::Transient => exit.is_failure(),
            Self::Temporary => false,
        }
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Exit {
    /// It stopped by itself, cleanly (OTP exit reason `normal`).
    Normal,
    /// It was asked to stop and did (OTP exit reason `shutdown` or `{shutdown, Term}`).
    Shutdown,
    /// A panic, a handler error, or a kill the supervisor did not order (any other OTP reason).
    Failed,
}

impl Exit {
    /// Whether this is an abnormal exit, the only kind that restarts a transient child.
    #[must_use]
    pub(crate) const fn is_failure(self) -> bool {
        matches!(self, Self::Failed)
    }
}

/// The restart intensity: at most `restarts_max` restarts within any `window`
/// (OTP `intensity` and `period`, MaxR in MaxT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Intensity {
    /// How many restarts the window may hold; one more makes the supervisor give up
    /// (OTP `intensity`). Zero means any restart escalates.
    pub restarts_max: u32,
    /// How far back restarts are counted (OTP `period`).
    pub window: Duration,
}

impl Intensity {
    /// At most `restarts_max` restarts within `window`.
    #[must_use]
    pub(crate) const fn new(restarts_max: u32, window: Duration) -> Self {
        Self { restarts_max, window }
    }
}

impl Default for Intensity {
    /// 3 restarts in 5 seconds, as Elixir's `Supervisor` (OTP's own default is 1 in 5).
    fn default() -> Self {
        Self::new(3, Duration::from_secs(5))
    }
}

/// The times of a supervisor's recent restarts, oldest first (OTP `#state.restarts`).
///
/// Bounded: it never keeps more than `restarts_max + 1` timestamps, since one more than the
/// intensity allows is all it takes to decide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RestartLog {
    /// Restart times within the window, in the order they were recorded.
    restarts: VecDeque<Duration>,
}

impl RestartLog {
    /// An empty log: no restart yet.
    #[must_use]
    pub(crate) const fn new() -> Self {
        Self { restarts: VecDeque::new() }
    }

    /// How many restart times the log holds.
    #[must_use]
    pub(crate) fn len(&self) -> usize {
        self.restarts.len()
    }

    /// Whether the log holds no restart time.
    #[must_use]
    #[allow(dead_code, reason = "clippy wants it beside len")]
    pub(crate) fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }

    /// Records a restart at `now`, first dropping entries older than `now - window` (an entry
    /// exactly `window` old still counts, as OTP keeps `R >= Now - Period`). Returns true while
    /// the count within the window is at most `restarts_max` (OTP `add_restart/1`).
    #[must_use = "false means the intensity is exceeded and the supervisor must escalate"]
    pub(crate) fn record(&mut self, intensity: Intensity, now: Duration) -> bool {
        if let Some(threshold) = now.checked_sub(intensity.window) {
            self.restarts.retain(|&at| at >= threshold);
        }
        self.restarts.push_back(now);
        let allowed = usize::try_from(intensity.restarts_max).unwrap_or(usize::MAX);
        let within = self.restarts.len() <= allowed;
        // One entry past the allowance is enough to know the budget is spent.
        while self.restarts.len() > allowed.saturating_add(1) {
            self.restarts.pop_front();
        }
        within
    }

    /// Forgets every recorded restart.
    #[allow(dead_code, reason = "kept for a supervisor that resets its log")]
    pub(crate) fn clear(&mut self) {
        self.restarts.clear();
    }
}

/// What a supervisor does about a child that ended. Indices are positions in the children
/// slice given to [`decide`], in start order, before any removal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The child is not restarted and leaves the supervisor: a temporary child, a transient
    /// child that exited cleanly, never a permanent one (OTP deletes the child spec).
    Remove {
        /// The child that ended.
        child: usize,
    },
    /// Stop `stop`, remove `remove`, then start `start` (OTP `restart/2` per strategy).
    Restart {
        /// Running siblings to stop, in the order to stop them: reverse start order. Never
        /// the failed child, which has already ended.
        stop: Vec<usize>,
        /// Temporary children among `stop`: they leave the supervisor instead of being started
        /// again (OTP never restarts a temporary child), in start order.
        remove: Vec<usize>,
        /// Children to start, in start order. Always includes the failed child.
        start: Vec<usize>,
    },
    /// The restart budget is spent: stop every child and fail the supervisor so its parent
    /// decides (OTP `reached_max_restart_intensity`).
    Escalate {
        /// Every child in reverse start order, the failed one included (it has already ended,
        /// so stopping it is a no-op).
        stop: Vec<usize>,
    },
}

/// Decides what a supervisor does when `children[failed]` ended with `exit` at `now`.
///
/// `children` are the restart types of the current children in start order. The restart type
/// decides first (OTP `restart_child/3`); only a due restart is recorded in `log` and may
/// escalate (OTP `add_restart/1`); then the strategy picks the siblings (OTP `restart/2`). An
/// index outside `children` is not a child of this supervisor: it gets `Remove` and the log is
/// not touched.
#[must_use]
pub(crate) fn decide(
    strategy: Strategy,
    children: &[RestartType],
    failed: usize,
    exit: Exit,
    log: &mut RestartLog,
    intensity: Intensity,
    now: Duration,
) -> Decision {
    let Some(&restart_type) = children.get(failed) else {
        return Decision::Remove { child: failed };
    };
    if !restart_type.restarts_after(exit) {
        return Decision::Remove { child: failed };
    }
    if !log.record(intensity, now) {
        return Decision::Escalate { stop: shutdown_order(children.len()).collect() };
    }
    match strategy {
        Strategy::OneForOne => {
            Decision::Restart { stop: Vec::new(), remove: Vec::new(), start: vec![failed] }
        }
        Strategy::OneForAll => restart_range(children, failed, 0),
        Strategy::RestForOne => restart_range(children, failed, failed),
    }
}

/// Restarts `children[first..]` around `failed` (which is in that range and already ended):
/// every other child in the range is stopped, temporaries are removed, the rest started again.
fn restart_range(children: &[RestartType], failed: usize, first: usize) -> Decision {
    let range = children.iter().enumerate().skip(first);
    let stop = range.clone().rev().filter(|&(i, _)| i != failed).map(|(i, _)| i).collect();
    let (removed, started): (Vec<_>, Vec<_>) =
        range.partition(|&(i, &t)| i != failed && t == RestartType::Temporary);
    Decision::Restart {
        stop,
        remove: removed.into_iter().map(|(i, _)| i).collect(),
        start: started.into_iter().map(|(i, _)| i).collect(),
    }
}

/// The order in which a supervisor of `children` children stops them on shutdown: reverse
/// start order (OTP `terminate_children/2`).
pub(crate) fn shutdown_order(children: usize) -> std::iter::Rev<std::ops::Range<usize>> {
    (0..children).rev()
}

#[cfg(test)]
mod tests;

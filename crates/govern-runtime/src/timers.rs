//! The armed state timeouts of one governor kind, typed (the command each will send); their
//! order across kinds is the runtime's [`Schedule`]. A governor arms and cancels its own
//! through this narrow piece of its domain; the delivery takes them from here.

use std::sync::Arc;

use govern_governors::{CommandSpec, Governor, StateTimeout, Timestamp};

use crate::FastMap;
use crate::hosted::Hosted;
use crate::registry::Key;
use crate::schedule::{Due, Schedule};

/// An armed state timeout.
pub(crate) struct Timer<C> {
    /// When it is due.
    pub(crate) at: Timestamp,
    /// The command's name, to recognise an identical re-arm.
    name: &'static str,
    /// The command to send.
    pub(crate) command: C,
    /// Distinguishes incarnations: only the current one may be delivered.
    generation: u64,
}

/// The armed timeouts of kind `G`; they outlive passivation.
pub(crate) struct Timers<G: Governor> {
    timers: FastMap<Key, Timer<G::Command>>,
    schedule: Arc<Schedule>,
}

impl<G: Hosted> Timers<G> {
    pub(crate) fn new(schedule: Arc<Schedule>) -> Self {
        Self { timers: FastMap::default(), schedule }
    }

    /// `key`'s place in the schedule for a deadline `at`.
    fn due(key: &Key, at: Timestamp) -> Due {
        Due { at, tenant: key.tenant.clone(), kind: G::KIND, resource: key.resource.clone() }
    }

    /// Arms (or cancels, with `None`) the state timeout of `key`. An identical armed timeout
    /// is kept; any other is replaced: a state change cancels the old one.
    pub(crate) fn arm(&self, key: &Key, timeout: Option<StateTimeout<G::Command>>) {
        let Some(t) = timeout else {
            if let Some((_, old)) = self.timers.remove(key) {
                self.schedule.remove(&Self::due(key, old.at), old.generation);
            }
            return;
        };
        if self.timers.get(key).is_some_and(|old| old.at == t.at && old.name == t.command.name()) {
            return;
        }
        let generation = self.schedule.next_generation();
        let at = t.at;
        let timer = Timer { at, name: t.command.name(), command: t.command, generation };
        if let Some(old) = self.timers.insert(key.clone(), timer) {
            self.schedule.remove(&Self::due(key, old.at), old.generation);
        }
        self.schedule.insert(Self::due(key, at), generation);
    }

    /// Takes the timeout armed for `key` as `generation`, if it is still that one.
    pub(crate) fn take(&self, key: &Key, generation: u64) -> Option<Timer<G::Command>> {
        self.timers.remove_if(key, |_, t| t.generation == generation).map(|(_, t)| t)
    }

    /// Forgets every timeout (the runtime is down).
    pub(crate) fn clear(&self) {
        self.timers.clear();
    }
}

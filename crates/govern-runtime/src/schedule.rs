//! The state-timeout schedule: every armed state timeout of every governor kind in one order,
//! (deadline, tenant, kind, resource), delivered one at a time through tenant admission.
//!
//! Each domain keeps the armed command of each of its governors (typed, by key); this
//! schedule keeps their order. Three callers deliver: the delivery task, which sleeps until
//! the earliest deadline; `RuntimeHandle::fire_due_timeouts`; and a tenant governor's command
//! answered while timeouts are due (a resumption releases the held ones). All three deliver
//! through [`Schedule::pop_due`] under one lock, so due timeouts are decided in order whoever
//! delivers them, and each exactly once. A timeout whose tenant does not admit it for now
//! (suspended, still provisioning) is *held* here, out of the order, until the tenant's state
//! changes ([`Schedule::release`]); one whose tenant is deprovisioned is dropped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use tokio::sync::Notify;

/// One armed timeout's place in the order: its deadline, then a stable key (tenant, kind,
/// resource) that is the same in every run and after a restart, so that timeouts due at the
/// same moment are always decided in the same order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub(crate) at: Timestamp,
    pub(crate) tenant: TenantId,
    pub(crate) kind: GovernorKind,
    pub(crate) resource: ResourceId,
}

/// The order, and what is held.
#[derive(Default)]
struct Order {
    /// Armed timeouts in delivery order, each with the generation of the domain's timer it
    /// stands for (a re-armed timer has a new one, so a stale entry delivers nothing).
    queue: BTreeMap<Due, u64>,
    /// Timeouts that fell due while their tenant did not admit them, by tenant.
    held: BTreeMap<TenantId, Vec<(Due, u64)>>,
}

/// Every armed state timeout of a runtime, in delivery order.
pub(crate) struct Schedule {
    order: Mutex<Order>,
    /// Distinguishes timer incarnations.
    generation: AtomicU64,
    /// Serialises delivery: due timeouts are decided one at a time, in order.
    pub(crate) delivering: tokio::sync::Mutex<()>,
    /// Wakes the delivery task: an earlier deadline was armed, or held timeouts released.
    pub(crate) wake: Notify,
}

impl Schedule {
    pub(crate) fn new() -> Self {
        Self {
            order: Mutex::new(Order::default()),
            generation: AtomicU64::new(0),
            delivering: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        }
    }

    fn order(&self) -> MutexGuard<'_, Order> {
        // Every update below leaves the order consistent; a panic elsewhere cannot break it.
        self.order.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh generation for a timer being armed.
    pub(crate) fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds an armed timeout; wakes the delivery task if it is now the earliest.
    pub(crate) fn insert(&self, due: Due, generation: u64) {
        let earliest = {
            let mut order = self.order();
            let earliest = order.queue.first_key_value().is_none_or(|(first, _)| due < *first);
            order.queue.insert(due, generation);
            earliest
        };
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Removes an armed timeout (cancelled or replaced), if that generation is still there,
    /// in the order or held.
    pub(crate) fn remove(&self, due: &Due, generation: u64) {
        let mut order = self.order();
        if order.queue.get(due) == Some(&generation) {
            order.queue.remove(due);
        }
        if let Some(held) = order.held.get_mut(&due.tenant) {
            held.retain(|(d, g)| (d, *g) != (due, generation));
            if held.is_empty() {
                order.held.remove(&due.tenant);
            }
        }
    }

    /// The earliest deadline armed.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.order().queue.first_key_value().map(|(due, _)| due.at)
    }

    /// Takes the first timeout due at `now`, if any.
    pub(crate) fn pop_due(&self, now: Timestamp) -> Option<(Due, u64)> {
        let mut order = self.order();
        if order.queue.first_key_value()?.0.at > now {
            return None;
        }
        order.queue.pop_first()
    }

    /// Keeps a due timeout aside until its tenant's state changes.
    pub(crate) fn hold(&self, due: Due, generation: u64) {
        let mut order = self.order();
        order.held.entry(due.tenant.clone()).or_default().push((due, generation));
    }

    /// Puts `tenant`'s held timeouts back in the order (they are due: the next delivery
    /// decides them, or holds them again, or drops them, by the tenant's state then). A
    /// timeout armed for the same place since it was held is newer and stays. Returns how
    /// many were put back.
    pub(crate) fn release(&self, tenant: &TenantId) -> usize {
        let released = {
            let mut order = self.order();
            let Some(held) = order.held.remove(tenant) else { return 0 };
            let mut n = 0;
            for (due, generation) in held {
                if let std::collections::btree_map::Entry::Vacant(e) = order.queue.entry(due) {
                    e.insert(generation);
                    n += 1;
                }
            }
            n
        };
        self.wake.notify_one();
        released
    }

    #[cfg(test)]
    /// Every armed timeout, in order, then the held ones (tests compare starts).
    pub(crate) fn armed(&self) -> Vec<Due> {
        let order = self.order();
        order
            .queue
            .keys()
            .cloned()
            .chain(order.held.values().flatten().map(|(d, _)| d.clone()))
            .collect()
    }

    /// Forgets everything (the runtime is down).
    pub(crate) fn clear(&self) {
        let mut order = self.order();
        order.queue.clear();
        order.held.clear();
    }
}

#[cfg(test)]
mod tests;

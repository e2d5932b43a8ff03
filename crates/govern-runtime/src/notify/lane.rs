//! One endpoint's lane: its bounded queue of events (new ones and those waiting for their
//! next attempt, in the order they are due). Its worker (`notifier/worker.rs`) takes one
//! event at a time from it, and after each attempt schedules the next one or finishes it.
//!
//! Deduplication while running: an event is `known` to a lane from the moment it is queued
//! until it is finished, then remembered in `done` (bounded); an offer of either is ignored.
//! Both are changed under the lane's lock, after the attempt's receipt is durable, so that a
//! recovery scan racing a delivery never queues an event twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify as Wake;
use tokio::time::Instant;

use super::{Endpoint, Event};
use crate::limits::NOTIFY_DONE_REMEMBERED_MAX;

/// One queued event, and the attempt it is at.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) event: Arc<Event>,
    /// The next attempt's number (1 for the first).
    pub(crate) attempt: u32,
}

/// A lane's queue and its dedup sets.
#[derive(Debug, Default)]
struct Queue {
    /// By (when due, order of arrival).
    items: BTreeMap<(Instant, u64), Pending>,
    arrivals: u64,
    /// Event seqs queued or in flight.
    known: BTreeSet<u64>,
    /// The event in flight, if any (taken from `items`, still `known`).
    in_flight: Option<u64>,
    /// Event seqs finished here (delivered, given up, dropped), the most recent
    /// [`NOTIFY_DONE_REMEMBERED_MAX`].
    done: BTreeSet<u64>,
}

/// What an offer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offered {
    Queued,
    /// Queued, in flight or finished here already.
    Known,
    /// The queue is full.
    Full,
}

/// One endpoint's lane.
pub(crate) struct Lane {
    pub(crate) endpoint: Endpoint,
    queue_max: usize,
    queue: Mutex<Queue>,
    wake: Wake,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane").field("endpoint", &self.endpoint.id).finish_non_exhaustive()
    }
}

impl Lane {
    pub(crate) fn new(endpoint: Endpoint, queue_max: usize) -> Self {
        Self { endpoint, queue_max, queue: Mutex::new(Queue::default()), wake: Wake::new() }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn wants(&self, event: &Event) -> bool {
        self.endpoint.wants(event.kind)
    }

    /// Queues `pending`, due now, unless known or the queue is full.
    pub(crate) fn offer(&self, pending: Pending) -> Offered {
        let mut q = self.queue();
        let seq = pending.event.seq;
        if q.known.contains(&seq) || q.done.contains(&seq) {
            return Offered::Known;
        }
        if q.known.len() >= self.queue_max {
            remember(&mut q, seq);
            return Offered::Full;
        }
        q.known.insert(seq);
        q.arrivals += 1;
        let key = (Instant::now(), q.arrivals);
        q.items.insert(key, pending);
        drop(q);
        self.wake.notify_one();
        Offered::Queued
    }

    /// After a restart of the notifier: the event that was in flight is forgotten (its
    /// attempt was cut short and not receipted; the recovery scan queues it again at that
    /// attempt).
    pub(crate) fn forget_in_flight(&self) {
        let mut q = self.queue();
        if let Some(seq) = q.in_flight.take() {
            q.known.remove(&seq);
        }
    }

    /// Events queued (not the one in flight).
    pub(crate) fn queued(&self) -> usize {
        self.queue().items.len()
    }

    /// Takes the next event once it is due (waiting for one to arrive or fall due).
    pub(crate) async fn next(&self) -> Pending {
        loop {
            let first = {
                let mut q = self.queue();
                match q.items.first_key_value().map(|(k, _)| *k) {
                    Some(key) if key.0 <= Instant::now() => {
                        let pending = q.items.remove(&key);
                        if let Some(p) = pending {
                            q.in_flight = Some(p.event.seq);
                            return p;
                        }
                        continue;
                    }
                    other => other.map(|k| k.0),
                }
            };
            match first {
                Some(due) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// The event in flight failed and is retried at `due`.
    pub(crate) fn retry_at(&self, mut pending: Pending, due: Instant) {
        let mut q = self.queue();
        q.in_flight = None;
        pending.attempt += 1;
        q.arrivals += 1;
        let key = (due, q.arrivals);
        q.items.insert(key, pending);
    }

    /// The event in flight is finished here.
    pub(crate) fn finish(&self, seq: u64) {
        let mut q = self.queue();
        q.in_flight = None;
        q.known.remove(&seq);
        remember(&mut q, seq);
    }

    /// The event in flight could not be receipted: forgotten (a recovery scan finds it again).
    pub(crate) fn abandon(&self, seq: u64) {
        let mut q = self.queue();
        q.in_flight = None;
        q.known.remove(&seq);
    }
}

fn remember(q: &mut Queue, seq: u64) {
    q.done.insert(seq);
    while q.done.len() > NOTIFY_DONE_REMEMBERED_MAX {
        q.done.pop_first();
    }
}

//! One endpoint's lane: its bounded queue of events (new ones and those waiting for their
//! next attempt, in the order they are due), and its worker, which delivers one event at a
//! time, receipts each attempt, and schedules the next one or finishes the event.
//!
//! Deduplication while running: an event is `known` to a lane from the moment it is queued
//! until it is finished, then remembered in `done` (bounded); an offer of either is ignored.
//! Both are changed under the lane's lock, after the attempt's receipt is durable, so that a
//! recovery scan racing a delivery never queues an event twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use govern_governors::audit::{self, NotificationOutcome};
use govern_governors::{Metadata, Reason, Request};
use tokio::sync::Notify as Wake;
use tokio::time::Instant;

use super::{
    ATTEMPT_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, Endpoint, Event, Notify, Outbound,
    SIGNATURE_HEADER, delivered,
};
use crate::error::{CommandError, Refusal};
use crate::limits::{
    NOTIFY_DONE_REMEMBERED_MAX, NOTIFY_RECORD_ATTEMPTS_MAX, NOTIFY_RECORD_RETRY_WAIT,
};
use crate::runtime::RuntimeHandle;

/// One queued event, and the attempt it is at.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) event: Arc<Event>,
    /// The next attempt's number (1 for the first).
    pub(super) attempt: u32,
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
pub(super) enum Offered {
    Queued,
    /// Queued, in flight or finished here already.
    Known,
    /// The queue is full.
    Full,
}

/// One endpoint's lane.
pub(super) struct Lane {
    pub(super) endpoint: Endpoint,
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
    pub(super) fn new(endpoint: Endpoint, queue_max: usize) -> Self {
        Self { endpoint, queue_max, queue: Mutex::new(Queue::default()), wake: Wake::new() }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn wants(&self, event: &Event) -> bool {
        self.endpoint.wants(event.kind)
    }

    /// Queues `pending`, due now, unless known or the queue is full.
    pub(super) fn offer(&self, pending: Pending) -> Offered {
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
    pub(super) fn forget_in_flight(&self) {
        let mut q = self.queue();
        if let Some(seq) = q.in_flight.take() {
            q.known.remove(&seq);
        }
    }

    /// Events queued (not the one in flight).
    pub(super) fn queued(&self) -> usize {
        self.queue().items.len()
    }

    /// Takes the next event once it is due (waiting for one to arrive or fall due).
    async fn next(&self) -> Pending {
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
    fn retry_at(&self, mut pending: Pending, due: Instant) {
        let mut q = self.queue();
        q.in_flight = None;
        pending.attempt += 1;
        q.arrivals += 1;
        let key = (due, q.arrivals);
        q.items.insert(key, pending);
    }

    /// The event in flight is finished here.
    fn finish(&self, seq: u64) {
        let mut q = self.queue();
        q.in_flight = None;
        q.known.remove(&seq);
        remember(&mut q, seq);
    }

    /// The event in flight could not be receipted: forgotten (a recovery scan finds it again).
    fn abandon(&self, seq: u64) {
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

/// The lane's worker: delivers one event at a time until aborted (the notifier's stop).
pub(super) async fn run(lane: Arc<Lane>, notify: Arc<Notify>, handle: RuntimeHandle) {
    loop {
        let pending = lane.next().await;
        let seq = pending.event.seq;
        let retry = notify.retry;
        let attempt = pending.attempt;
        let id = pending.event.id();
        if attempt > retry.attempts_max.max(1) {
            // Receipts from before a restart already used every attempt.
            let detail = "no attempts left".to_owned();
            notify.counts.given_up.fetch_add(1, Ordering::Relaxed);
            let last = attempt - 1;
            finish(&lane, &notify, &handle, &pending, last, NotificationOutcome::GivenUp, detail)
                .await;
            continue;
        }
        let (ok, detail) = attempt_once(&lane.endpoint, &notify, &handle, &pending).await;
        if ok {
            notify.counts.delivered.fetch_add(1, Ordering::Relaxed);
            finish(
                &lane,
                &notify,
                &handle,
                &pending,
                attempt,
                NotificationOutcome::Delivered,
                detail,
            )
            .await;
        } else if retry.retries_after(attempt) {
            notify.counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
            match record(
                &handle,
                &lane.endpoint,
                &pending.event,
                attempt,
                NotificationOutcome::Failed,
                detail,
            )
            .await
            {
                Ok(()) => {
                    let due = Instant::now() + retry.delay(attempt, &id);
                    lane.retry_at(pending, due);
                }
                Err(stop) => {
                    lane.abandon(seq);
                    notify.done(1);
                    if stop {
                        return;
                    }
                }
            }
        } else {
            notify.counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
            notify.counts.given_up.fetch_add(1, Ordering::Relaxed);
            finish(
                &lane,
                &notify,
                &handle,
                &pending,
                attempt,
                NotificationOutcome::GivenUp,
                detail,
            )
            .await;
        }
    }
}

/// Receipts a final outcome and finishes the event here.
async fn finish(
    lane: &Lane,
    notify: &Notify,
    handle: &RuntimeHandle,
    pending: &Pending,
    attempt: u32,
    outcome: NotificationOutcome,
    detail: String,
) {
    let seq = pending.event.seq;
    match record(handle, &lane.endpoint, &pending.event, attempt, outcome, detail).await {
        Ok(()) => lane.finish(seq),
        Err(_) => lane.abandon(seq),
    }
    notify.done(1);
}

/// One attempt: the request, bounded by the attempt timeout. `(delivered, detail)`.
async fn attempt_once(
    endpoint: &Endpoint,
    notify: &Notify,
    handle: &RuntimeHandle,
    pending: &Pending,
) -> (bool, String) {
    let event = &pending.event;
    let body = Bytes::from(event.body());
    let t = handle.now().as_ms() / 1000;
    let mut signature = format!("t={t}");
    for secret in &endpoint.secrets {
        let mac = govern_webhooks::signature(secret, t, &body);
        signature.push_str(",v1=");
        signature.push_str(&hex_lower(&mac));
    }
    let request = Outbound {
        url: Arc::clone(&endpoint.url),
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("user-agent", concat!("govern/", env!("CARGO_PKG_VERSION")).to_owned()),
            (EVENT_ID_HEADER, event.id()),
            (EVENT_TYPE_HEADER, event.kind.name().to_owned()),
            (ATTEMPT_HEADER, pending.attempt.to_string()),
            (SIGNATURE_HEADER, signature),
        ],
        body,
    };
    let timeout = notify.retry.attempt_timeout;
    match tokio::time::timeout(timeout, notify.transport.send(request)).await {
        Ok(Ok(status)) => (delivered(status), format!("status {status}")),
        Ok(Err(e)) => (false, e.0),
        Err(_) => (false, format!("timeout after {} ms", timeout.as_millis())),
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Receipts one attempt in the tenant's audit trail and waits until it is durable. `Err(true)`:
/// the runtime is stopping (the worker ends); `Err(false)`: not receipted for another reason
/// (logged; the event is left to a recovery scan).
pub(super) async fn record(
    handle: &RuntimeHandle,
    endpoint: &Endpoint,
    event: &Event,
    attempt: u32,
    outcome: NotificationOutcome,
    detail: String,
) -> Result<(), bool> {
    let command = audit::Command::RecordNotification {
        event_id: event.id(),
        event_type: event.kind.name().to_owned(),
        endpoint: endpoint.id.clone(),
        attempt: u64::from(attempt),
        outcome,
        detail: audit::check_text(if detail.is_empty() { "-" } else { &detail }),
    };
    let mut metadata = Metadata::new();
    let (Ok(()), Ok(reason)) =
        (metadata.insert("source", "notifier"), Reason::new("outbound notification"))
    else {
        return Err(false);
    };
    let request = Request { command, reason, metadata };
    let mut tries = 0;
    loop {
        tries += 1;
        match handle.record_waiting(&endpoint.tenant, request.clone()).await {
            Ok(_) => return Ok(()),
            Err(CommandError::Refused(Refusal::ShuttingDown)) => return Err(true),
            Err(CommandError::Refused(r))
                if r.is_transient() && tries < NOTIFY_RECORD_ATTEMPTS_MAX =>
            {
                tracing::debug!(refusal = %r, "notification attempt not receipted yet; again");
                tokio::time::sleep(NOTIFY_RECORD_RETRY_WAIT * tries).await;
            }
            Err(e) => {
                tracing::warn!(tenant_id = %endpoint.tenant, endpoint = %endpoint.id, event = %event.id(), error = %e, "notification attempt not receipted");
                return Err(false);
            }
        }
    }
}

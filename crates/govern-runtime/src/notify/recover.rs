//! Recovery scans: the pending deliveries, rebuilt from receipts. For each tenant with
//! endpoints, its receipts in the ledger's last `recovery_window` sequence numbers (durable
//! ones only) are read a page at a time; each that maps to an event no older than `max_age`
//! is a candidate, and its `record_notification` receipts say, per endpoint, whether it is
//! finished there (delivered, given up, dropped) or at which attempt it stands. What is not
//! finished is queued again at its next attempt. Bounded: the window, at most
//! [`NOTIFY_RECOVERY_EVENTS_MAX`] candidates per tenant per scan (the oldest first; the rest
//! are counted in the log and found by a later scan), and each lane's queue bound.
//!
//! A scan runs when the notifier starts (after a restart of the runtime or of the notifier
//! alone) and after the feed overflowed. It runs on tokio's blocking pool (it reads the
//! ledger).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use govern_governors::audit::NotificationOutcome;
use govern_governors::{GovernorKind, TenantId};
use govern_ledger::{Ledger, TENANT_PAGE_MAX};

use super::{Event, Lane, Notify, Pending, event_seq};
use crate::limits::NOTIFY_RECOVERY_EVENTS_MAX;

/// One candidate: the event and, per endpoint id, the last attempt receipted and whether it
/// was final.
struct Candidate {
    event: Arc<Event>,
    attempts: BTreeMap<String, (u32, bool)>,
}

/// What one tenant's scan found: events not finished at some endpoint, with the attempt
/// each endpoint is at (endpoint id → next attempt).
pub(crate) type Found = Vec<(Arc<Event>, BTreeMap<String, u32>)>;

/// Scans one tenant's receipts in `[from, below)`; `now_ms` and the notifier's `max_age`
/// decide which events are too old to deliver.
fn scan_tenant(
    notify: &Notify,
    ledger: &Ledger,
    tenant: &TenantId,
    from: u64,
    below: u64,
    now_ms: u64,
) -> Found {
    let oldest_ms =
        now_ms.saturating_sub(u64::try_from(notify.max_age.as_millis()).unwrap_or(u64::MAX));
    let mut candidates: BTreeMap<u64, Candidate> = BTreeMap::new();
    let mut skipped = 0u64;
    let mut cursor = from.checked_sub(1);
    loop {
        let page = ledger.tenant_receipts_page_below(tenant, cursor, TENANT_PAGE_MAX, below);
        let (receipts, next) = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(tenant_id = %tenant, error = %e, "notification recovery: receipts not read");
                break;
            }
        };
        for r in &receipts {
            if r.seq < from {
                continue;
            }
            let body = &r.body;
            if body.governor == GovernorKind::Audit && body.command == "record_notification" {
                let arg = |k: &str| body.args.get(k).map(String::as_str);
                let (Some(id), Some(endpoint), Some(attempt), Some(outcome)) =
                    (arg("event_id"), arg("endpoint"), arg("attempt"), arg("outcome"))
                else {
                    continue;
                };
                let Some(c) = event_seq(id).and_then(|seq| candidates.get_mut(&seq)) else {
                    continue;
                };
                let attempt: u32 = attempt.parse().unwrap_or(0);
                let last = outcome.parse::<NotificationOutcome>().map_or(true, |o| o.is_final());
                let entry = c.attempts.entry(endpoint.to_owned()).or_insert((0, false));
                entry.0 = entry.0.max(attempt);
                entry.1 |= last;
                continue;
            }
            if body.timestamp.as_ms() < oldest_ms {
                continue;
            }
            let Some(event) = Event::of(&notify.rules, body, r.seq, r.hash.to_string()) else {
                continue;
            };
            if candidates.len() >= NOTIFY_RECOVERY_EVENTS_MAX {
                skipped += 1;
                continue;
            }
            candidates
                .insert(r.seq, Candidate { event: Arc::new(event), attempts: BTreeMap::new() });
        }
        match next {
            Some(c) if !receipts.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    if skipped > 0 {
        tracing::warn!(tenant_id = %tenant, skipped, "notification recovery: more candidates than one scan takes; a later scan finds them");
    }
    candidates
        .into_values()
        .map(|c| {
            let next = c
                .attempts
                .into_iter()
                .map(|(endpoint, (attempt, last))| (endpoint, if last { 0 } else { attempt + 1 }))
                .collect();
            (c.event, next)
        })
        .collect()
}

/// Runs a scan over every tenant with endpoints and queues what is not finished. Returns how
/// many (event, endpoint) pairs it queued.
pub(crate) fn scan(
    notify: &Notify,
    ledger: &Ledger,
    below: u64,
    now_ms: u64,
) -> Vec<(Arc<Lane>, Pending)> {
    notify.counts.recovery_scans.fetch_add(1, Ordering::Relaxed);
    let from = below.saturating_sub(notify.recovery_window);
    let mut out = Vec::new();
    for (tenant, lanes) in &notify.lanes {
        for (event, next) in scan_tenant(notify, ledger, tenant, from, below, now_ms) {
            for lane in lanes.iter().filter(|l| l.wants(&event)) {
                // 0: finished there; absent: never attempted there.
                let attempt = next.get(lane.endpoint.id()).copied().unwrap_or(1);
                if attempt == 0 {
                    continue;
                }
                out.push((Arc::clone(lane), Pending { event: Arc::clone(&event), attempt }));
            }
        }
    }
    out
}

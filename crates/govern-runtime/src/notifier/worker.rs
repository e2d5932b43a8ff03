//! A lane's worker: delivers one event at a time (`notify/lane.rs` is its queue), bounds each
//! attempt by the attempt timeout, receipts each attempt in the tenant's audit trail
//! (`record_notification`, durable before anything else happens), then schedules the next
//! attempt after the policy's backoff or finishes the event there.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use govern_governors::audit::{self, NotificationOutcome};
use govern_governors::{Metadata, Reason, Request};
use tokio::time::Instant;

use super::Env;
use crate::error::{CommandError, Refusal};
use crate::limits::{NOTIFY_RECORD_ATTEMPTS_MAX, NOTIFY_RECORD_RETRY_WAIT};
use crate::notify::{
    ATTEMPT_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, Endpoint, Event, Lane, Notify, Outbound,
    Pending, SIGNATURE_HEADER, delivered,
};

/// The lane's worker: delivers one event at a time until aborted (the notifier's stop).
pub(crate) async fn run(lane: Arc<Lane>, notify: Arc<Notify>, env: Env) {
    loop {
        let pending = lane.next().await;
        if (env.stopping)() {
            // Shutdown drains the commands in flight: no new attempt (and record) joins them.
            // The event stays unfinished in the receipts; the next start sends it.
            return;
        }
        let seq = pending.event.seq;
        let retry = notify.retry;
        let attempt = pending.attempt;
        let id = pending.event.id();
        if attempt > retry.attempts_max.max(1) {
            // Receipts from before a restart already used every attempt.
            let detail = "no attempts left".to_owned();
            notify.counts.given_up.fetch_add(1, Ordering::Relaxed);
            let last = attempt - 1;
            finish(&lane, &notify, &env, &pending, last, NotificationOutcome::GivenUp, detail)
                .await;
            continue;
        }
        let (ok, detail) = attempt_once(&lane.endpoint, &notify, &env, &pending).await;
        if ok {
            notify.counts.delivered.fetch_add(1, Ordering::Relaxed);
            finish(&lane, &notify, &env, &pending, attempt, NotificationOutcome::Delivered, detail)
                .await;
        } else if retry.retries_after(attempt) {
            notify.counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
            match record(
                &env,
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
            finish(&lane, &notify, &env, &pending, attempt, NotificationOutcome::GivenUp, detail)
                .await;
        }
    }
}

/// Receipts a final outcome and finishes the event here.
async fn finish(
    lane: &Lane,
    notify: &Notify,
    env: &Env,
    pending: &Pending,
    attempt: u32,
    outcome: NotificationOutcome,
    detail: String,
) {
    let seq = pending.event.seq;
    match record(env, &lane.endpoint, &pending.event, attempt, outcome, detail).await {
        Ok(()) => lane.finish(seq),
        Err(_) => lane.abandon(seq),
    }
    notify.done(1);
}

/// One attempt: the request, bounded by the attempt timeout. `(delivered, detail)`.
async fn attempt_once(
    endpoint: &Endpoint,
    notify: &Notify,
    env: &Env,
    pending: &Pending,
) -> (bool, String) {
    let event = &pending.event;
    let body = Bytes::from(event.body());
    let t = env.clock.now().as_ms() / 1000;
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
pub(crate) async fn record(
    env: &Env,
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
        match (env.record)(endpoint.tenant.clone(), request.clone()).await {
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

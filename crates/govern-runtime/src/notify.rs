//! Outbound notifications (`docs/notifications.md`): events from durable receipts (quota
//! threshold crossings, payment failures, suspensions, closed invoices; `event.rs`) are
//! delivered to the tenant's configured endpoints, signed as inbound webhooks are
//! (`govern_webhooks::sign`), retried with backoff and jitter (`retry.rs`), deduplicated by
//! event id, bounded per endpoint, every attempt receipted in the tenant's audit trail
//! (`record_notification`), and rebuilt from those receipts after a restart (`recover.rs`).
//!
//! The receipt actor feeds events after commit through a bounded channel and never waits on
//! it: when the channel is full it counts the event dropped from the feed and asks for a
//! recovery scan, which finds it again in the ledger. The notifier actor (`notifier.rs`, a
//! child of the root supervisor) routes the feed to one lane per endpoint (`lane.rs`), each
//! with a bounded queue and one delivery at a time (`notifier/worker.rs`). This module is what
//! the receipt actor and the notifier share; it knows nothing of the runtime's handle.

mod event;
mod http;
mod lane;
pub(crate) mod recover;
mod retry;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use govern_governors::TenantId;
use govern_receipt::ReceiptBody;
use tokio::sync::{mpsc, watch};

pub use event::{EVENT_ID_PREFIX, Event, EventKind, RULES, Rule, event_id, event_seq, kind_of};
pub use http::{HttpTransport, Outbound, Sent, Transport, TransportError};
pub use retry::{RetryPolicy, delivered};

use crate::limits::{
    NOTIFY_ENDPOINT_ID_LEN_MAX, NOTIFY_ENDPOINT_QUEUE_MAX, NOTIFY_ENDPOINTS_PER_TENANT_MAX,
    NOTIFY_EVENT_MAX_AGE, NOTIFY_FEED_MAX, NOTIFY_RECOVERY_WINDOW,
};
pub(crate) use lane::{Lane, Offered, Pending};

/// The header carrying the event id (`evt_<seq>`): a receiver that got an event twice (its
/// answer was lost, the attempt timed out) drops the repeat by it.
pub const EVENT_ID_HEADER: &str = "govern-event-id";
/// The header carrying the event type (`quota.warning`, ...).
pub const EVENT_TYPE_HEADER: &str = "govern-event-type";
/// The header carrying the attempt number (1 for the first).
pub const ATTEMPT_HEADER: &str = "govern-delivery-attempt";
/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, one `v1` per
/// secret of the endpoint (rotation), as `govern_webhooks::Verifier` checks.
pub const SIGNATURE_HEADER: &str = "govern-signature";

/// One endpoint of a tenant: where its events go, which ones, and the secrets they are signed
/// with. The secrets are the host's: they are never receipted or logged (`Debug` shows how
/// many there are).
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) tenant: TenantId,
    pub(crate) id: String,
    pub(crate) url: Arc<str>,
    events: Vec<EventKind>,
    /// Never logged, never receipted.
    pub(crate) secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("tenant", &self.tenant)
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Endpoint {
    /// Endpoint `id` of `tenant` at `url`, signing with `secret`, for every event kind.
    #[must_use]
    pub fn new(tenant: TenantId, id: &str, url: &str, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            tenant,
            id: id.to_owned(),
            url: Arc::from(url),
            events: Vec::new(),
            secrets: vec![secret.into()],
        }
    }

    /// Only these kinds (default: all).
    #[must_use]
    pub fn events(mut self, kinds: impl IntoIterator<Item = EventKind>) -> Self {
        self.events = kinds.into_iter().collect();
        self
    }

    /// One more secret to sign with (rotation: each delivery carries a `v1` per secret, the
    /// receiver accepts either while it moves from one to the next).
    #[must_use]
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn wants(&self, kind: EventKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }

    fn check(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= NOTIFY_ENDPOINT_ID_LEN_MAX
            && self.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !id_ok {
            return Err(format!(
                "endpoint id {:?}: 1 to {NOTIFY_ENDPOINT_ID_LEN_MAX} of a-z A-Z 0-9 - _ .",
                self.id
            ));
        }
        let n = self.secrets.len();
        if n == 0 || n > govern_webhooks::signature::SECRETS_MAX {
            return Err(format!(
                "endpoint {}: 1 to {} secrets, not {n}",
                self.id,
                govern_webhooks::signature::SECRETS_MAX
            ));
        }
        if self
            .secrets
            .iter()
            .any(|s| s.is_empty() || s.len() > govern_webhooks::signature::SECRET_LEN_MAX)
        {
            return Err(format!(
                "endpoint {}: a secret is empty or longer than {} bytes",
                self.id,
                govern_webhooks::signature::SECRET_LEN_MAX
            ));
        }
        Ok(())
    }
}

/// The notifications a runtime delivers (`RuntimeBuilder::notifications`): endpoints,
/// extra rules, the retry policy, the bound per endpoint and the transport.
#[derive(Debug)]
pub struct Notifications {
    endpoints: Vec<Endpoint>,
    rules: Vec<Rule>,
    retry: RetryPolicy,
    queue_max: usize,
    feed_max: usize,
    transport: Arc<dyn Transport>,
    recovery_window: u64,
    max_age: Duration,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            rules: RULES.to_vec(),
            retry: RetryPolicy::default(),
            queue_max: NOTIFY_ENDPOINT_QUEUE_MAX,
            feed_max: NOTIFY_FEED_MAX,
            transport: Arc::new(HttpTransport::new()),
            recovery_window: NOTIFY_RECOVERY_WINDOW,
            max_age: NOTIFY_EVENT_MAX_AGE,
        }
    }
}

impl Notifications {
    /// No endpoints, the shipped [`RULES`], the defaults of [`crate::limits`], the built-in
    /// HTTP transport.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an endpoint (at most [`NOTIFY_ENDPOINTS_PER_TENANT_MAX`] per tenant, ids unique
    /// per tenant).
    #[must_use]
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Adds a rule, looked at before the shipped ones (the hook for new event sources).
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.insert(0, rule);
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Events queued per endpoint, waiting or between attempts (default
    /// [`NOTIFY_ENDPOINT_QUEUE_MAX`]); one more is dropped, counted and receipted `dropped`.
    #[must_use]
    pub fn queue_max(mut self, max: usize) -> Self {
        self.queue_max = max.max(1);
        self
    }

    /// Events the feed from the receipt actor holds (default [`NOTIFY_FEED_MAX`]); past it an
    /// event is counted and left to a recovery scan.
    #[must_use]
    pub fn feed_max(mut self, max: usize) -> Self {
        self.feed_max = max.max(1);
        self
    }

    /// The transport (default [`HttpTransport`]).
    #[must_use]
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// How far back a recovery scan looks, in receipts of the ledger (default
    /// [`NOTIFY_RECOVERY_WINDOW`]), and how old an event it still delivers may be (default
    /// [`NOTIFY_EVENT_MAX_AGE`], by the runtime's clock).
    #[must_use]
    pub fn recovery(mut self, window: u64, max_age: Duration) -> Self {
        self.recovery_window = window;
        self.max_age = max_age;
        self
    }
}

/// Counts since start ([`crate::RuntimeHandle::notify_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotifyStats {
    /// Events the receipt actor fed (durable receipts that map to an event of a tenant with
    /// endpoints).
    pub fed: u64,
    /// Events the feed had no room for (found again by a recovery scan).
    pub feed_overflows: u64,
    /// Attempts that delivered.
    pub delivered: u64,
    /// Attempts that failed (retried, or the last one).
    pub failed_attempts: u64,
    /// (Event, endpoint) pairs given up after the last attempt.
    pub given_up: u64,
    /// (Event, endpoint) pairs dropped because the endpoint's queue was full.
    pub dropped: u64,
    /// Recovery scans run (at start, after a restart of the notifier, after feed overflows).
    pub recovery_scans: u64,
    /// (Event, endpoint) pairs queued by recovery scans.
    pub recovered: u64,
}

/// The counters behind [`NotifyStats`].
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) fed: AtomicU64,
    pub(crate) feed_overflows: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) given_up: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) recovery_scans: AtomicU64,
    pub(crate) recovered: AtomicU64,
}

/// What the receipt actor, the notifier actor, its lanes and the handle share.
pub(crate) struct Notify {
    pub(crate) rules: Vec<Rule>,
    pub(crate) retry: RetryPolicy,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) recovery_window: u64,
    pub(crate) max_age: Duration,
    /// Each tenant's lanes (one per endpoint).
    pub(crate) lanes: BTreeMap<TenantId, Vec<Arc<Lane>>>,
    /// The feed: the receipt actor's sending side, and the receiving side the notifier's
    /// router task holds (kept here so that a restarted notifier takes it up again).
    tx: mpsc::Sender<Event>,
    pub(crate) rx: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    /// A feed overflow since the last recovery scan began.
    pub(crate) lagging: AtomicBool,
    /// Events fed, queued or in flight, plus one while a recovery is due or running:
    /// [`crate::RuntimeHandle::notifications_settled`] waits for zero.
    outstanding: watch::Sender<u64>,
    /// `dropped` records being written (each also outstanding).
    pub(crate) recording: AtomicU64,
    pub(crate) counts: Counts,
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notify").field("tenants", &self.lanes.len()).finish_non_exhaustive()
    }
}

impl Notify {
    /// The shared part of `config`, checked.
    pub(crate) fn new(config: Notifications) -> Result<Arc<Self>, String> {
        let mut lanes: BTreeMap<TenantId, Vec<Arc<Lane>>> = BTreeMap::new();
        for endpoint in config.endpoints {
            endpoint.check()?;
            config
                .transport
                .accepts(&endpoint.url)
                .map_err(|e| format!("endpoint {} ({}): {e}", endpoint.id, endpoint.url))?;
            let list = lanes.entry(endpoint.tenant.clone()).or_default();
            if list.iter().any(|l| l.endpoint.id == endpoint.id) {
                return Err(format!(
                    "endpoint {} of tenant {} is configured twice",
                    endpoint.id, endpoint.tenant
                ));
            }
            if list.len() >= NOTIFY_ENDPOINTS_PER_TENANT_MAX {
                return Err(format!(
                    "tenant {}: more than {NOTIFY_ENDPOINTS_PER_TENANT_MAX} endpoints",
                    endpoint.tenant
                ));
            }
            list.push(Arc::new(Lane::new(endpoint, config.queue_max)));
        }
        let (tx, rx) = mpsc::channel(config.feed_max);
        Ok(Arc::new(Self {
            rules: config.rules,
            retry: config.retry,
            transport: config.transport,
            recovery_window: config.recovery_window,
            max_age: config.max_age,
            lanes,
            tx,
            rx: tokio::sync::Mutex::new(rx),
            lagging: AtomicBool::new(false),
            outstanding: watch::Sender::new(0),
            recording: AtomicU64::new(0),
            counts: Counts::default(),
        }))
    }

    /// The event a receipt about to be appended is worth feeding, if its tenant has endpoints
    /// and a rule maps it; its `seq` and `receipt_hash` are the caller's to fill in once the
    /// receipt is appended. Cheap when not: on the receipt actor's path for every receipt.
    pub(crate) fn event_of(&self, body: &ReceiptBody) -> Option<Event> {
        if !self.lanes.contains_key(&body.tenant) {
            return None;
        }
        Event::of(&self.rules, body, 0, String::new())
    }

    /// Feeds a durable event, never waiting: with the feed full, the event is counted and
    /// left to a recovery scan (which the router asks for).
    pub(crate) fn feed(&self, event: Event) {
        self.outstanding.send_modify(|n| *n += 1);
        match self.tx.try_send(event) {
            Ok(()) => {
                self.counts.fed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counts.feed_overflows.fetch_add(1, Ordering::Relaxed);
                // One outstanding unit stands for the recovery due, until it has run.
                let first = !self.lagging.swap(true, Ordering::AcqRel);
                self.outstanding.send_modify(|n| *n -= u64::from(!first));
                if first {
                    tracing::warn!("notification feed full: a recovery scan will find the rest");
                }
            }
        }
    }

    pub(crate) fn done(&self, n: u64) {
        if n > 0 {
            self.outstanding.send_modify(|o| *o = o.saturating_sub(n));
        }
    }

    pub(crate) fn queued(&self, n: u64) {
        if n > 0 {
            self.outstanding.send_modify(|o| *o += n);
        }
    }

    /// Sets the outstanding count from what is there: queued events, the feed's, a scan due
    /// for an overflow, `dropped` records being written, and `more`.
    pub(crate) fn recount(&self, more: u64) {
        let queued: usize = self.all_lanes().map(|l| l.queued()).sum();
        let feed = self.tx.max_capacity() - self.tx.capacity();
        let lagging = u64::from(self.lagging.load(Ordering::Acquire));
        let recording = self.recording.load(Ordering::Acquire);
        self.outstanding.send_replace(queued as u64 + feed as u64 + lagging + recording + more);
    }

    /// The lanes of `tenant`.
    pub(crate) fn lanes_of(&self, tenant: &TenantId) -> &[Arc<Lane>] {
        self.lanes.get(tenant).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn all_lanes(&self) -> impl Iterator<Item = &Arc<Lane>> {
        self.lanes.values().flatten()
    }

    /// Counts since start.
    pub(crate) fn stats(&self) -> NotifyStats {
        let c = &self.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NotifyStats {
            fed: get(&c.fed),
            feed_overflows: get(&c.feed_overflows),
            delivered: get(&c.delivered),
            failed_attempts: get(&c.failed_attempts),
            given_up: get(&c.given_up),
            dropped: get(&c.dropped),
            recovery_scans: get(&c.recovery_scans),
            recovered: get(&c.recovered),
        }
    }

    /// Waits until nothing is fed, queued, in flight or due for recovery.
    pub(crate) async fn settled(&self) {
        let mut rx = self.outstanding.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[cfg(test)]
mod tests;

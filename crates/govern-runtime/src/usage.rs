//! `RuntimeHandle::record_usage`: metered usage counted per tenant and meter, deduplicated by
//! event id, batched into the meter's quota governor (one `record_usage` receipt per meter per
//! flush, however many events), acknowledged once that receipt is durable.
//!
//! Each tenant has one set of counters ([`govern_usage::Meters`], configured from its plans'
//! limits). A call counts its events at once (so a duplicate of an event still in flight is a
//! duplicate), queues them in per-meter batches, and waits; one flusher task per tenant sends
//! what is queued, one command per batch, and answers every waiter whose events it carried.
//! While it waits for a commit, new events queue behind it: the next flush carries all of
//! them (group commit). The counters are rebuilt from the `record_usage` receipts at start
//! (and after a failed flush, whose counts may be partly written), so an acknowledged event is
//! never lost and never counted twice.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;
use govern_governors::quota;
use govern_governors::{GovernorKind, TenantId, Timestamp};
use govern_receipt::Receipt;
use govern_usage::{
    BatchEvent, EventId, MeterConfig, MeterId, Meters, PeriodKey, Reset, UsageBatch, UsageError,
};
use tokio::sync::oneshot;

use crate::error::Refusal;

/// What recording one usage event did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageRecorded {
    /// Counted, and durable.
    Counted {
        /// The meter's value in its current period after the event.
        value: u64,
        /// The plan's limit on the meter (`None`: unlimited).
        limit: Option<u64>,
        /// The meter's period key (days or months since the epoch, rolling buckets).
        period: u64,
        /// The thresholds this event crossed upwards (`warning`, `throttle`, `exceeded`).
        crossed: Vec<&'static str>,
        /// The meter's quota governor's state after the flush that carried the event.
        quota: &'static str,
    },
    /// The event's id was already counted inside the deduplication window: nothing changed.
    Duplicate,
}

/// One meter a tenant's plans limit, as usage counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MeterLimit {
    pub(crate) meter: String,
    /// `None`: unlimited.
    pub(crate) limit: Option<u64>,
    pub(crate) reset: Reset,
}

/// The meters a tenant's plans limit, and the version they were derived at (a change of
/// plan, quota or catalog gives a new version).
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub(crate) version: u64,
    pub(crate) meters: Arc<BTreeMap<String, MeterLimit>>,
}

/// A batch of one meter waiting for its flush, with the meter's value after it.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) batch: UsageBatch,
    pub(crate) usage: u64,
    pub(crate) limit: Option<u64>,
}

/// The quota states after a flush, by meter.
pub(crate) type Report = Arc<BTreeMap<String, &'static str>>;

/// One tenant's counters and queue.
#[derive(Debug, Default)]
pub(crate) struct TenantUsage {
    pub(crate) meters: Meters,
    /// The limits version the meters were defined from.
    pub(crate) version: Option<u64>,
    /// Whether the counters are what the ledger says (plus what is queued); when not, they
    /// are rebuilt before the next event is counted.
    pub(crate) rebuilt: bool,
    pub(crate) pending: Vec<Pending>,
    pub(crate) waiters: Vec<oneshot::Sender<Result<Report, Refusal>>>,
    /// A flusher task is running.
    pub(crate) flushing: bool,
    /// The counters were dropped while the tenant was idle ([`UsageDesk::evict_idle`]): they
    /// are rebuilt from the ledger before anything reads or counts them.
    pub(crate) evicted: bool,
    /// When events were last counted here, ms on the runtime's clock.
    pub(crate) last_used_ms: u64,
}

/// Reads a tenant's usage receipts from the ledger (to rebuild evicted counters on a path
/// that cannot wait: a check, a usage view); the error says why it could not.
pub(crate) type UsageSource<'a> = &'a dyn Fn(&TenantId) -> Result<Vec<Receipt>, String>;

/// The value of `meter` in `counters` at `now`, the counters first rebuilt from `source`
/// against `limits` if they were evicted (under their lock: nothing counts meanwhile).
///
/// # Errors
/// `source`'s, when the counters were evicted and could not be read back.
pub(crate) fn value_restored(
    tenant: &TenantId,
    counters: &Mutex<TenantUsage>,
    limits: &Limits,
    meter: &str,
    now: Timestamp,
    source: UsageSource<'_>,
) -> Result<u64, String> {
    let mut u = lock(counters);
    if u.evicted {
        let receipts = source(tenant)?;
        refill(tenant, &mut u, limits, &receipts);
    }
    Ok(u.meters.value_of(meter, now).map_or(0, |v| v.value))
}

/// Refills `u` from `tenant`'s `record_usage` receipts against `limits`, as at a restart:
/// emptied (when it was last used stays), its meters defined, the receipts replayed (values
/// and deduplicated ids); then it is what the ledger says.
pub(crate) fn refill(
    tenant: &TenantId,
    u: &mut TenantUsage,
    limits: &Limits,
    receipts: &[Receipt],
) {
    *u = TenantUsage { last_used_ms: u.last_used_ms, ..TenantUsage::default() };
    if let Err(e) = define(u, limits) {
        tracing::warn!(tenant_id = %tenant, error = %e, "usage meters not defined");
    }
    replay(tenant, u, receipts.iter());
    u.rebuilt = true;
}

/// Every tenant's usage counters.
#[derive(Debug, Default)]
pub(crate) struct UsageDesk {
    tenants: DashMap<TenantId, Arc<Mutex<TenantUsage>>, foldhash::fast::RandomState>,
}

pub(crate) fn lock(entry: &Mutex<TenantUsage>) -> MutexGuard<'_, TenantUsage> {
    entry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Defines (or redefines) the meters of `limits`, once per limits version.
pub(crate) fn define(u: &mut TenantUsage, limits: &Limits) -> Result<(), UsageError> {
    if u.version == Some(limits.version) {
        return Ok(());
    }
    for m in limits.meters.values() {
        let config = MeterConfig::new(m.reset, m.limit.filter(|l| *l > 0));
        u.meters.define(MeterId::new(m.meter.as_str())?, config)?;
    }
    u.version = Some(limits.version);
    Ok(())
}

/// A receipted batch, as the usage crate replays it.
fn usage_batch(b: &quota::UsageBatch) -> Result<UsageBatch, UsageError> {
    let events = b
        .events
        .iter()
        .map(|(at, id)| Ok(BatchEvent { id: EventId::new(id.as_str())?, at: Timestamp(*at) }))
        .collect::<Result<Vec<_>, UsageError>>()?;
    Ok(UsageBatch {
        meter: MeterId::new(b.meter.as_str())?,
        period: PeriodKey(b.period),
        total: b.total,
        count: u32::try_from(events.len()).unwrap_or(u32::MAX),
        events,
    })
}

/// Applies the `record_usage` receipts among `receipts` (in sequence order) to `u`.
pub(crate) fn replay<'r>(
    tenant: &TenantId,
    u: &mut TenantUsage,
    receipts: impl Iterator<Item = &'r Receipt>,
) {
    use govern_governors::CommandSpec;
    for r in receipts {
        if r.body.governor != GovernorKind::Quota || r.body.command != "record_usage" {
            continue;
        }
        let applied = quota::Command::parse("record_usage", &r.body.args)
            .map_err(|e| e.to_string())
            .and_then(|c| match c {
                quota::Command::RecordUsage(b) => usage_batch(&b).map_err(|e| e.to_string()),
                _ => Err("not a usage batch".to_owned()),
            })
            .and_then(|b| u.meters.apply_batch(&b).map_err(|e| e.to_string()));
        if let Err(reason) = applied {
            // A meter the plans no longer limit, or a period already over: not counted now.
            tracing::debug!(tenant_id = %tenant, seq = r.seq, %reason, "usage batch not replayed");
        }
    }
}

impl UsageDesk {
    pub(crate) fn entry(&self, tenant: &TenantId) -> Arc<Mutex<TenantUsage>> {
        if let Some(e) = self.tenants.get(tenant) {
            return Arc::clone(e.value());
        }
        Arc::clone(self.tenants.entry(tenant.clone()).or_default().value())
    }

    /// `tenant`'s counters, to hold on to (an entry is never replaced: a rebuild refills it,
    /// an eviction empties it).
    pub(crate) fn counters(&self, tenant: &TenantId) -> Arc<Mutex<TenantUsage>> {
        self.entry(tenant)
    }

    /// Empties the counters of every tenant idle since `since_ms` (nothing counted after it,
    /// ms on the runtime's clock) with nothing in flight (no flusher, nothing queued, no one
    /// waiting) and counters that are what the ledger says: marked evicted, they are rebuilt
    /// from the tenant's `record_usage` receipts (values and deduplicated ids) at their next
    /// use, as at a restart. Returns how many were emptied.
    pub(crate) fn evict_idle(&self, since_ms: u64) -> usize {
        let mut n = 0;
        for e in &self.tenants {
            let mut u = lock(e.value());
            if u.rebuilt
                && !u.evicted
                && !u.flushing
                && u.pending.is_empty()
                && u.waiters.is_empty()
                && u.last_used_ms <= since_ms
            {
                let last_used_ms = u.last_used_ms;
                *u = TenantUsage { evicted: true, last_used_ms, ..TenantUsage::default() };
                n += 1;
            }
        }
        n
    }

    /// How many tenants' counters are resident (not evicted, not empty).
    pub(crate) fn resident(&self) -> usize {
        self.tenants.iter().filter(|e| !lock(e.value()).evicted).count()
    }
}

impl UsageDesk {
    #[cfg(test)]
    /// Every tenant's meter values at `now`, sorted (tests compare starts).
    pub(crate) fn values(&self, now: Timestamp) -> BTreeMap<TenantId, String> {
        self.tenants
            .iter()
            .map(|e| (e.key().clone(), format!("{:?}", lock(e.value()).meters.snapshot(now))))
            .filter(|(_, v)| v != "[]")
            .collect()
    }

    /// Rebuilds `tenant`'s counters from its receipts (at start, with every receipt read).
    pub(crate) fn rebuild(&self, tenant: &TenantId, limits: &Limits, receipts: &[Receipt]) {
        let entry = self.entry(tenant);
        refill(tenant, &mut lock(&entry), limits, receipts);
    }
}

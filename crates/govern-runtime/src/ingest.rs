//! `RuntimeHandle::record_usage` and the per-tenant flusher: the host-facing half of
//! [`crate::usage`] (which keeps the counters), on the governors' command path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use govern_governors::quota::{self, Quota};
use govern_governors::{GovernorKind, Reason, Request, ResourceId, TenantId, Timestamp};
use govern_usage::{Outcome, UsageBatch, UsageError, UsageEvent};
use tokio::sync::oneshot;

use crate::error::{CommandError, Refusal};
use crate::limits::USAGE_CALL_EVENTS_MAX;
use crate::runtime::RuntimeHandle;
use crate::usage::{Pending, Report, TenantUsage, UsageRecorded, define, lock, refill};

impl RuntimeHandle {
    /// Records `quantity` units of `meter` used by `tenant` at `at`, identified by
    /// `event_id`: counted in the meter's current period unless that id was counted within
    /// the deduplication window ([`govern_usage::DEDUP_WINDOW_MS`]), and acknowledged once the
    /// batch that carries it is durable. The meter must be one the tenant's live plans limit
    /// (or `storage_gb`, `compute_units`, `bandwidth_mbps`, which its provisioned quota
    /// limits). Crossing 75, 90 or 100 % of the limit moves the meter's quota governor
    /// (resource id: the meter), receipted.
    ///
    /// # Errors
    /// [`Refusal::Usage`] for a bad event (zero quantity, an id too long, dated too far in
    /// the future or before the window, a meter not limited); [`Refusal::NoCatalog`],
    /// [`Refusal::UnknownTenant`], [`Refusal::ShuttingDown`], or the refusal that failed the
    /// flush (then nothing of the call is acknowledged; a retry with the same ids is safe).
    pub async fn record_usage(
        &self,
        tenant: &TenantId,
        meter: &str,
        quantity: u64,
        event_id: &str,
        at: Timestamp,
    ) -> Result<UsageRecorded, Refusal> {
        let event = UsageEvent::new(meter, quantity, event_id, at)?;
        let mut results = self.record_usage_batch(tenant, vec![event]).await?;
        results.pop().unwrap_or(Err(UsageError::ZeroQuantity)).map_err(Refusal::Usage)
    }

    /// Records several usage events of one tenant (at most
    /// [`crate::limits::USAGE_CALL_EVENTS_MAX`]), each as [`Self::record_usage`] does; one
    /// result per event, in order. Events that fail change nothing; the others are counted.
    ///
    /// # Errors
    /// As [`Self::record_usage`] for the call as a whole.
    pub async fn record_usage_batch(
        &self,
        tenant: &TenantId,
        events: Vec<UsageEvent>,
    ) -> Result<Vec<Result<UsageRecorded, UsageError>>, Refusal> {
        let shared = &self.shared;
        if shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        if !shared.catalog {
            return Err(Refusal::NoCatalog);
        }
        if events.len() > USAGE_CALL_EVENTS_MAX {
            return Err(Refusal::Usage(UsageError::BadBatch {
                meter: String::new(),
                problem: "more events in one call than USAGE_CALL_EVENTS_MAX",
            }));
        }
        // A tenant whose commands are refused (unknown, not active yet, suspended,
        // deprovisioned, at its in-flight bound) has its usage refused before it is counted.
        drop(shared.registry.admit(tenant, false)?);
        let limits = shared.commercial.limits(tenant, shared.clock.now());
        let desk = &shared.commercial.usage;
        let entry = desk.entry(tenant);
        let u = loop {
            if !lock(&entry).rebuilt {
                // Whatever a failed flush may have written is durable before it is read back.
                shared.durable().await;
                let receipts = shared
                    .ledger
                    .tenant_receipts_below(
                        tenant,
                        Some(GovernorKind::Quota),
                        None,
                        shared.visible(),
                    )
                    .map_err(|e| Refusal::LedgerUnavailable(e.to_string()))?;
                let mut u = lock(&entry);
                if !u.rebuilt && !u.flushing {
                    refill(tenant, &mut u, &limits, &receipts);
                }
            }
            let u = lock(&entry);
            // Evicted meanwhile (idle since it was rebuilt): rebuilt again before counting.
            if !u.evicted {
                break u;
            }
        };
        let now = shared.clock.now();
        let mut results = Vec::with_capacity(events.len());
        let rx = {
            // The guard goes at the block's end, before the wait.
            let mut u = u;
            u.last_used_ms = u.last_used_ms.max(now.as_ms());
            define(&mut u, &limits)?;
            let mut counted = false;
            for event in events {
                let Some(limit) = limits.meters.get(event.meter.as_str()) else {
                    results.push(Err(UsageError::UnknownMeter(event.meter.to_string())));
                    continue;
                };
                if ResourceId::new(event.meter.as_str()).is_err() {
                    results.push(Err(UsageError::UnknownMeter(event.meter.to_string())));
                    continue;
                }
                let meter = event.meter.clone();
                let probe = event.clone();
                match u.meters.record(event, now) {
                    Ok(Outcome::Duplicate) => results.push(Ok(None)),
                    Err(e) => results.push(Err(e)),
                    Ok(Outcome::Counted(rec)) => {
                        let slot = match u.pending.iter().rposition(|p| p.batch.meter == meter) {
                            Some(i) if u.pending[i].batch.accepts(&meter, &rec) => i,
                            _ => {
                                u.pending.push(Pending {
                                    batch: UsageBatch::new(meter.clone(), rec.period),
                                    usage: 0,
                                    limit: limit.limit,
                                });
                                u.pending.len() - 1
                            }
                        };
                        let p = &mut u.pending[slot];
                        // Counted already, so the batch has room and the total fits.
                        if p.batch.push(&probe).is_ok() {
                            p.usage = rec.value;
                            p.limit = limit.limit;
                        }
                        counted = true;
                        let crossed = rec.crossed.iter().map(|t| t.name()).collect();
                        results.push(Ok(Some((meter, rec.value, rec.period, crossed))));
                    }
                }
            }
            if counted {
                let (tx, rx) = oneshot::channel();
                u.waiters.push(tx);
                if !u.flushing {
                    u.flushing = true;
                    tokio::spawn(flush(self.clone(), tenant.clone(), Arc::clone(&entry)));
                }
                Some(rx)
            } else {
                None
            }
        };
        let report = match rx {
            Some(rx) => rx.await.map_err(|_| Refusal::ShuttingDown)??,
            None => Report::default(),
        };
        Ok(results
            .into_iter()
            .map(|r| {
                r.map(|counted| match counted {
                    None => UsageRecorded::Duplicate,
                    Some((meter, value, period, crossed)) => UsageRecorded::Counted {
                        value,
                        limit: limits.meters.get(meter.as_str()).and_then(|m| m.limit),
                        period: period.0,
                        crossed,
                        quota: report.get(meter.as_str()).copied().unwrap_or("normal"),
                    },
                })
            })
            .collect())
    }
}

/// Sends one meter's batches, in order; the quota's state after the last.
async fn send_meter(
    handle: &RuntimeHandle,
    tenant: &TenantId,
    meter: String,
    batches: Vec<Pending>,
) -> Result<(String, &'static str), Refusal> {
    let resource = ResourceId::new(&meter)
        .map_err(|_| Refusal::Usage(UsageError::UnknownMeter(meter.clone())))?;
    let governor = handle.governor::<Quota>(tenant, &resource);
    let mut state = "normal";
    for p in batches {
        let batch = quota::UsageBatch {
            meter: meter.clone(),
            period: p.batch.period.0,
            total: p.batch.total,
            usage: p.usage,
            limit: p.limit,
            events: p
                .batch
                .events
                .iter()
                .map(|e| (e.at.as_ms(), e.id.as_str().to_owned()))
                .collect(),
        };
        let reason = Reason::new("metered usage").map_err(|e| Refusal::GovernorUnavailable {
            kind: GovernorKind::Quota,
            reason: e.to_string(),
            retry_after_ms: None,
        })?;
        let request = Request::new(quota::Command::RecordUsage(batch), reason);
        match governor.send_runtime(request).await {
            Ok(accepted) => state = accepted.to,
            Err(CommandError::Refused(r)) => return Err(r),
            Err(CommandError::Rejected(r)) => {
                return Err(Refusal::GovernorUnavailable {
                    kind: GovernorKind::Quota,
                    reason: r.to_string(),
                    retry_after_ms: None,
                });
            }
        }
    }
    Ok((meter, state))
}

/// A tenant's flusher: sends what is queued, answers its waiters, again until nothing is
/// queued. A failed flush fails every waiter and has the counters rebuilt from the ledger.
async fn flush(handle: RuntimeHandle, tenant: TenantId, entry: Arc<Mutex<TenantUsage>>) {
    loop {
        let (pending, waiters) = {
            let mut u = lock(&entry);
            if u.pending.is_empty() {
                u.flushing = false;
                return;
            }
            (std::mem::take(&mut u.pending), std::mem::take(&mut u.waiters))
        };
        let mut by_meter: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        for p in pending {
            by_meter.entry(p.batch.meter.as_str().to_owned()).or_default().push(p);
        }
        let sends = by_meter
            .into_iter()
            .map(|(meter, batches)| send_meter(&handle, &tenant, meter, batches));
        let outcomes = futures::future::join_all(sends).await;
        match outcomes.into_iter().collect::<Result<BTreeMap<String, &'static str>, Refusal>>() {
            Ok(report) => {
                let report: Report = Arc::new(report);
                for w in waiters {
                    let _ = w.send(Ok(Arc::clone(&report)));
                }
            }
            Err(refusal) => {
                tracing::warn!(tenant_id = %tenant, code = refusal.code(), "usage flush failed; counters are rebuilt from the ledger");
                let rest = {
                    let mut u = lock(&entry);
                    u.rebuilt = false;
                    u.pending.clear();
                    u.flushing = false;
                    std::mem::take(&mut u.waiters)
                };
                for w in waiters.into_iter().chain(rest) {
                    let _ = w.send(Err(refusal.clone()));
                }
                return;
            }
        }
    }
}

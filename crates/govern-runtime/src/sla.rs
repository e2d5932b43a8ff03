//! `RuntimeHandle::sla_record`, `sla_report`, `sla_status`: each tenant's requests judged
//! against its plans' envelope by a pure monitor (`govern_plans::sla`) on the runtime's clock,
//! its violations and recoveries receipted on the tenant's audit trail (`record_sla_violation`,
//! `record_sla_recovery`).
//!
//! One monitor per tenant, created at its first sample or status read, at most
//! [`SLA_TENANTS_MAX`](crate::limits::SLA_TENANTS_MAX). A monitor's buckets live in memory
//! only: after a restart its window starts empty, but its open violations are restored from
//! the tenant's `record_sla_*` receipts when it is created, so that their recoveries are
//! receipted too. Buckets are judged when the monitor is next touched (a sample, a report or
//! a status read); the edges they make are queued at the audit trail in order, and
//! `sla_status` returns once every edge queued for the tenant is durable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use govern_governors::audit::{self, SlaDimension, SlaEvent};
use govern_governors::{CommandSpec, GovernorKind, TenantId};
use govern_plans::sla::{
    Aggregate, Dimension, Edge, EdgeEvent, Monitor, Promise, Status, Violation,
};

use crate::error::Refusal;
use crate::limits::SLA_TENANTS_MAX;
use crate::{FastMap, RuntimeHandle};

/// Why an SLA sample, report or status was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlaError {
    /// Refused as a command would be: an unknown tenant, no catalog, shutting down.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// None of the tenant's live plans has an envelope: there is no promise to hold it to.
    #[error("tenant `{0}` has no plan with an envelope")]
    NoEnvelope(TenantId),
    /// The runtime monitors [`SLA_TENANTS_MAX`] tenants already.
    #[error("the runtime monitors {max} tenants already")]
    TenantsFull {
        /// The bound.
        max: usize,
    },
    /// The monitor refused the sample or report (late, or more errors than requests).
    #[error(transparent)]
    Sample(#[from] govern_plans::sla::SlaError),
}

/// One tenant's monitor.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    monitor: Monitor,
    /// Whether its open violations were read back from the tenant's receipts.
    restored: bool,
    /// Edges queued at the audit trail that no status read has waited for yet.
    queued: bool,
}

/// Every monitored tenant's monitor.
#[derive(Debug, Default)]
pub(crate) struct SlaDesk {
    tenants: FastMap<TenantId, Arc<Mutex<Entry>>>,
    /// How many entries `tenants` holds (entries are never removed): the bound's count.
    count: AtomicUsize,
}

fn lock(entry: &Mutex<Entry>) -> MutexGuard<'_, Entry> {
    entry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SlaDesk {
    fn entry(&self, tenant: &TenantId) -> Result<Arc<Mutex<Entry>>, SlaError> {
        if let Some(e) = self.tenants.get(tenant) {
            return Ok(Arc::clone(e.value()));
        }
        match self.tenants.entry(tenant.clone()) {
            dashmap::Entry::Occupied(e) => Ok(Arc::clone(e.get())),
            dashmap::Entry::Vacant(v) => {
                self.count
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < SLA_TENANTS_MAX).then_some(n + 1)
                    })
                    .map_err(|_| SlaError::TenantsFull { max: SLA_TENANTS_MAX })?;
                Ok(Arc::clone(v.insert(Arc::default()).value()))
            }
        }
    }
}

/// The receipt of an edge.
fn record(edge: &Edge) -> audit::Command {
    audit::Command::RecordSla {
        event: match edge.event {
            EdgeEvent::Violated => SlaEvent::Violated,
            EdgeEvent::Recovered => SlaEvent::Recovered,
        },
        dimension: match edge.dimension {
            Dimension::Throughput => SlaDimension::Throughput,
            Dimension::P99Latency => SlaDimension::P99Latency,
            Dimension::ErrorRate => SlaDimension::ErrorRate,
        },
        measured: edge.measured,
        promised: edge.promised,
        window_start_ms: edge.window_start_ms,
        window_ms: edge.window_ms,
    }
}

impl RuntimeHandle {
    /// Counts one request of `tenant` that took `latency` and succeeded or failed (a host
    /// counts a server error as failed), at the runtime's clock. Buckets it closes are judged
    /// first; a violation or recovery they make is queued at the tenant's audit trail
    /// (`record_sla_violation`, `record_sla_recovery`), not waited for. No I/O but, at a tenant's first sample since start,
    /// reading its trail's `record_sla_*` receipts.
    ///
    /// # Errors
    /// [`SlaError`]: an unknown tenant, no catalog or envelope, too many tenants monitored.
    pub fn sla_record(
        &self,
        tenant: &TenantId,
        latency: Duration,
        ok: bool,
    ) -> Result<(), SlaError> {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sla_with(tenant, |m, now, promise| m.record(now, us, ok, promise))
    }

    /// Counts a host's aggregate of `tenant`'s requests (errors and a latency histogram,
    /// [`govern_plans::sla::Aggregate`]) into the bucket of the runtime's clock now, as
    /// [`Self::sla_record`] counts one.
    ///
    /// # Errors
    /// As [`Self::sla_record`], and [`govern_plans::sla::SlaError::ErrorsExceedRequests`].
    pub fn sla_report(&self, tenant: &TenantId, aggregate: &Aggregate) -> Result<(), SlaError> {
        self.sla_with(tenant, |m, now, promise| m.report(now, aggregate, promise))
    }

    /// `tenant`'s SLA status at the runtime's clock: compliant, violating (each open
    /// violation's dimension, measured and promised figures) or no data; the last minute's
    /// figures and the trend. Judges the buckets that closed since the monitor was last
    /// touched, and returns once every `record_sla_*` queued for the tenant is durable.
    ///
    /// # Errors
    /// As [`Self::sla_record`].
    pub async fn sla_status(&self, tenant: &TenantId) -> Result<Status, SlaError> {
        let mut status = None;
        let mut wait = false;
        self.sla_with(tenant, |m, now, promise| {
            let edges = m.advance(now, promise);
            status = Some(m.status(promise));
            Ok(edges)
        })?;
        if let Ok(entry) = self.shared.commercial.sla.entry(tenant) {
            wait = std::mem::take(&mut lock(&entry).queued);
        }
        if wait {
            // Records are queued at the audit governor: a snapshot is answered after them.
            let _ = self.audit(tenant).snapshot().await;
            self.shared.durable().await;
        }
        status.ok_or_else(|| SlaError::NoEnvelope(tenant.clone()))
    }

    /// Runs `f` on `tenant`'s monitor with the clock's time in ms and its promise, under the
    /// monitor's lock (so that times reach it in order); queues the edges it returns.
    fn sla_with(
        &self,
        tenant: &TenantId,
        f: impl FnOnce(&mut Monitor, u64, &Promise) -> Result<Vec<Edge>, govern_plans::sla::SlaError>,
    ) -> Result<(), SlaError> {
        if self.shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown.into());
        }
        if !self.shared.catalog {
            return Err(Refusal::NoCatalog.into());
        }
        if self.shared.registry.state(tenant).is_none() {
            return Err(Refusal::UnknownTenant(tenant.clone()).into());
        }
        let promise = self.promise(tenant).ok_or_else(|| SlaError::NoEnvelope(tenant.clone()))?;
        let entry = self.shared.commercial.sla.entry(tenant)?;
        let mut e = lock(&entry);
        if !e.restored {
            self.restore(tenant, &mut e.monitor);
            e.restored = true;
        }
        let now = self.shared.clock.now().as_ms();
        let edges = f(&mut e.monitor, now, &promise)?;
        if !edges.is_empty() {
            e.queued = true;
            // Queued under the monitor's lock: a tenant's edges reach its trail in order.
            for edge in &edges {
                tracing::info!(tenant_id = %tenant, event = edge.event.name(), dimension = edge.dimension.name(), "sla edge");
                self.record_audit(tenant, record(edge));
            }
        }
        Ok(())
    }

    /// The promise of `tenant`'s live plans' envelopes, if any has one.
    fn promise(&self, tenant: &TenantId) -> Option<Promise> {
        let commercial = &self.shared.commercial;
        let catalog = commercial.catalog()?;
        let plans = commercial.plans(tenant);
        Promise::of(plans.iter().filter_map(|p| catalog.plan(p)?.envelope.as_ref()))
    }

    /// Reopens in `monitor` the violations `tenant`'s trail left open (a
    /// `record_sla_violation` with no `record_sla_recovery` of its dimension after it).
    fn restore(&self, tenant: &TenantId, monitor: &mut Monitor) {
        let resource = crate::registry::tenant_resource(tenant);
        let receipts = match self.receipts(tenant, Some(GovernorKind::Audit), Some(&resource)) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(tenant_id = %tenant, error = %e, "open SLA violations not restored");
                return;
            }
        };
        let mut open: [Option<Violation>; 3] = Default::default();
        for r in receipts.iter().filter(|r| r.body.command.starts_with("record_sla_")) {
            let Ok(audit::Command::RecordSla {
                event,
                dimension,
                measured,
                promised,
                window_start_ms,
                window_ms,
            }) = audit::Command::parse(&r.body.command, &r.body.args)
            else {
                continue;
            };
            let (slot, dimension) = match dimension {
                SlaDimension::Throughput => (0, Dimension::Throughput),
                SlaDimension::P99Latency => (1, Dimension::P99Latency),
                SlaDimension::ErrorRate => (2, Dimension::ErrorRate),
            };
            open[slot] = (event == SlaEvent::Violated).then_some(Violation {
                dimension,
                measured,
                promised,
                since_ms: window_start_ms.saturating_add(window_ms),
            });
        }
        for violation in open.into_iter().flatten() {
            monitor.restore(violation);
        }
    }
}

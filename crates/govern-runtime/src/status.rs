//! Read-only views for a status display (`govern-http`'s status page): a tenant's plans and
//! the usage of each meter they limit, and the last signed checkpoint. Nothing here
//! changes what the runtime decides.

use govern_governors::TenantId;
use govern_ledger::{CheckpointError, SignedCheckpoint};
use govern_usage::Reset;

use crate::RuntimeHandle;

/// One meter a tenant's plans (or provisioned quota) limit, and its usage now
/// ([`RuntimeHandle::meter_usage`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MeterUsage {
    /// The meter (`reports`, `storage_gb`, ...).
    pub meter: String,
    /// Its value in the current period, as usage counts it (what `check` holds a request to).
    pub value: u64,
    /// The limit (the largest of the tenant's live plans'); `None`: unlimited.
    pub limit: Option<u64>,
    /// When it starts again: `never`, `daily`, `monthly` or `rolling`.
    pub reset: &'static str,
}

/// What a tenant is metered against now ([`RuntimeHandle::meter_usage`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TenantUsageView {
    /// The plans of its live subscriptions, sorted, each once.
    pub plans: Vec<String>,
    /// Every meter they limit or price, by meter name.
    pub meters: Vec<MeterUsage>,
}

fn reset_name(reset: Reset) -> &'static str {
    match reset {
        Reset::Never => "never",
        Reset::Daily => "daily",
        Reset::Monthly => "monthly",
        Reset::Rolling { .. } => "rolling",
    }
}

impl RuntimeHandle {
    /// `tenant`'s live plans and, for every meter they limit or price (and its provisioned
    /// resource quota's meters), the value counted in the current period at the runtime's
    /// clock against the limit: the numbers `check` decides metered features with. Bounded by
    /// the catalog (a plan's meters). Empty for a runtime without a catalog or an unknown
    /// tenant.
    #[must_use]
    pub fn meter_usage(&self, tenant: &TenantId) -> TenantUsageView {
        if !self.shared.catalog || self.shared.registry.state(tenant).is_none() {
            return TenantUsageView::default();
        }
        let commercial = &self.shared.commercial;
        let now = self.shared.clock.now();
        let limits = commercial.limits(tenant, now);
        let counters = commercial.usage.counters(tenant);
        let source = |t: &TenantId| self.usage_receipts(t);
        let meters = limits
            .meters
            .values()
            .map(|m| MeterUsage {
                meter: m.meter.clone(),
                // Evicted counters that cannot be read back read as nothing counted (a log
                // line says why); the next record or check reads them again.
                value: crate::usage::value_restored(
                    tenant, &counters, &limits, &m.meter, now, &source,
                )
                .unwrap_or_else(|e| {
                    tracing::warn!(tenant_id = %tenant, error = %e, "usage counters not read back");
                    0
                }),
                limit: m.limit,
                reset: reset_name(m.reset),
            })
            .collect();
        TenantUsageView { plans: commercial.plans(tenant), meters }
    }

    /// The last checkpoint signed into the data directory (`checkpoint.json`) or the sink of
    /// `RuntimeBuilder::checkpoints` (a database's latest row), verified with the runtime's
    /// checkpoint key. `Ok(None)` when the runtime keeps no checkpoints (neither) or has not
    /// signed one yet (one is signed every `CommitOptions::checkpoint_every` once the ledger
    /// grew, and at shutdown).
    ///
    /// Reads one small file (bounded: `CHECKPOINT_FILE_MAX`) or runs one query: call it off
    /// the async executor's hot path.
    ///
    /// # Errors
    /// [`CheckpointError`] when the file cannot be read, does not parse or does not verify.
    pub fn last_checkpoint(&self) -> Result<Option<SignedCheckpoint>, CheckpointError> {
        let Some((sink, key)) = &self.shared.checkpoints else { return Ok(None) };
        let Some(text) = sink.latest()? else { return Ok(None) };
        let signed = SignedCheckpoint::from_json(&text)?;
        signed.verify(key)?;
        Ok(Some(signed))
    }
}

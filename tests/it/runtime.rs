//! The runtime through its public API: lifecycle, crash recovery, supervision, tenants,
//! timeouts, passivation and shutdown. Time is tokio's paused clock; tests wait on replies,
//! never on sleeps.

mod basics;
mod crash_recovery;
mod passivation;
mod shutdown;
mod supervision;
mod tenants;
mod timeouts;

use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_runtime::{Runtime, RuntimeBuilder};

/// 2026-01-01T00:00:00Z.
pub(crate) const T0: Timestamp = Timestamp(1_767_225_600_000);

pub(crate) fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

pub(crate) fn resource(id: &str) -> ResourceId {
    ResourceId::new(id).unwrap()
}

pub(crate) fn quota() -> ResourceQuota {
    ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 }
}

pub(crate) fn builder() -> RuntimeBuilder {
    Runtime::builder().epoch(T0)
}

/// A runtime with tenants provisioned and active.
pub(crate) async fn started(tenants: &[&str]) -> Runtime {
    let rt = builder().start().await.unwrap();
    for t in tenants {
        rt.handle().provision_tenant(&tenant(t), quota(), "onboarding").await.unwrap();
    }
    rt
}

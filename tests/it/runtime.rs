//! The runtime through its public API: lifecycle, crash recovery, supervision, tenants,
//! timeouts, passivation and shutdown. Time is tokio's paused clock; tests wait on replies,
//! never on sleeps.

mod archival;
mod basics;
mod billing;
mod billing_run;
mod crash_recovery;
mod durable;
mod feed;
mod idempotency;
mod isolation;
mod notify;
mod passivation;
mod plan_change;
mod plans;
mod restart;
mod sagas;
mod shipped_sagas;
mod shutdown;
mod sla;
mod supervision;
mod telemetry;
mod tenants;
mod timeouts;
mod usage;
mod webhooks;

use std::time::Duration;

use govern_governors::tenant::ResourceQuota;
use govern_governors::{DAY_MS, MINUTE_MS, ResourceId, TenantId, Timestamp};
use govern_runtime::{Runtime, RuntimeBuilder, RuntimeHandle};

/// 2026-01-01T00:00:00Z.
pub(crate) const T0: Timestamp = Timestamp(1_767_225_600_000);
/// A day of the runtime clock, to sleep or advance by.
pub(crate) const DAY: Duration = Duration::from_millis(DAY_MS);
/// A minute of the runtime clock.
pub(crate) const MINUTE: Duration = Duration::from_millis(MINUTE_MS);

pub(crate) fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

pub(crate) fn resource(id: &str) -> ResourceId {
    ResourceId::new(id).unwrap()
}

pub(crate) fn quota() -> ResourceQuota {
    ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 }
}

/// A host's raw command (`RuntimeHandle::command`) with string arguments.
pub(crate) fn raw_command(
    tenant: &TenantId,
    kind: govern_governors::GovernorKind,
    resource_id: &str,
    name: &str,
    args: &[(&str, &str)],
) -> govern_runtime::RawCommand {
    govern_runtime::RawCommand {
        tenant: tenant.clone(),
        kind,
        resource: resource(resource_id),
        name: name.to_owned(),
        args: args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        reason: "host".into(),
        metadata: Vec::new(),
    }
}

pub(crate) fn builder() -> RuntimeBuilder {
    quiet_injected_panics();
    Runtime::builder().epoch(T0)
}

/// Injected crashes panic on purpose; keep them out of the test output (every other panic
/// still goes to the default hook).
pub(crate) fn quiet_injected_panics() {
    govern_runtime::quiet_injected_panics();
}

/// Provisions `acme` with a subscription `sub-1` on the catalog's `starter`, trial then paid,
/// from the runtime's clock now.
pub(crate) async fn acme_paying_for_starter(h: &RuntimeHandle) -> TenantId {
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("starter", 14, "signed up").await.unwrap();
    sub.activate(None, "paid").await.unwrap();
    acme
}

/// A runtime with tenants provisioned and active.
pub(crate) async fn started(tenants: &[&str]) -> Runtime {
    let rt = builder().start().await.unwrap();
    for t in tenants {
        rt.handle().provision_tenant(&tenant(t), quota(), "onboarding").await.unwrap();
    }
    rt
}

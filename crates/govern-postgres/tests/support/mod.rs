//! What the PostgreSQL tests share.

#![allow(dead_code, reason = "each test binary uses some of these")]

use govern_governors::{Args, GovernorKind, ResourceId, TenantId};
use govern_runtime::RawCommand;

/// `provision_tenant` of `tenant` (a small quota), as a raw command.
pub(crate) fn provision(tenant: &TenantId) -> RawCommand {
    let args: Args = [("storage_gb", "10"), ("compute_units", "2"), ("bandwidth_mbps", "100")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    RawCommand {
        tenant: tenant.clone(),
        kind: GovernorKind::Tenant,
        resource: ResourceId::new(tenant.as_str()).expect("id"),
        name: "provision_tenant".into(),
        args,
        reason: "test".into(),
        metadata: Vec::new(),
    }
}

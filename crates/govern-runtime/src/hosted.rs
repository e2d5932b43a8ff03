//! How each governor kind plugs into the runtime: its domain, and what happens after a
//! commit beyond the receipt (the tenant governor updates the registry and releases the
//! state timeouts held while the tenant did not admit them).

// The trait is public (hosts name it in bounds) but its methods are the runtime's internal
// wiring, typed with crate-private types; only this module implements it.
#![allow(private_interfaces, reason = "sealed wiring: implemented here only, hidden from docs")]

use std::sync::Arc;

use govern_governors::{
    Governor, account, billing, catalog, compliance, entitlement, quota, subscription, tenant,
};

use crate::domain::Domain;
use crate::governor::Key;
use crate::runtime::{Domains, Shared};

/// A governor the runtime can host: each of the eight governor types. Its methods are the
/// runtime's internal wiring (hidden); hosts only name it in bounds.
pub trait Hosted: Governor {
    /// This kind's domain among a runtime's domains.
    #[doc(hidden)]
    fn domain(domains: &Domains) -> &Arc<Domain<Self>>;

    /// Runs after an accepted command is committed.
    #[doc(hidden)]
    fn after_commit(_machine: &Self, _key: &Key, _shared: &Shared) {}
}

macro_rules! hosted {
    ($($ty:ty => $field:ident),+ $(,)?) => {
        $(
            impl Hosted for $ty {
                fn domain(domains: &Domains) -> &Arc<Domain<Self>> {
                    &domains.$field
                }
            }
        )+
    };
}

hosted! {
    entitlement::Entitlement => entitlement,
    billing::Billing => billing,
    catalog::Product => catalog,
    subscription::Subscription => subscription,
    account::Account => account,
    quota::Quota => quota,
    compliance::Audit => compliance,
}

impl Hosted for tenant::Tenant {
    fn domain(domains: &Domains) -> &Arc<Domain<Self>> {
        &domains.tenant
    }

    fn after_commit(machine: &Self, key: &Key, shared: &Shared) {
        // The registry admits commands by the tenant governor's committed state.
        let state = machine.state();
        shared.registry.set_state(&key.tenant, state);
        // Timeouts held while the tenant did not admit them go back in the schedule, which
        // delivers or drops them by the new state.
        if !crate::registry::holds(Some(state)) {
            shared.schedule.release(&key.tenant);
        }
    }
}

//! State the runtime keeps for its billing runs and webhook deliveries (in `Shared`), apart
//! from the modules that use it (`billing_run.rs`, `webhook.rs`), which build on the runtime.

use std::sync::atomic::AtomicU64;

use govern_governors::TenantId;

/// Deliveries refused before any receipt, counted since start.
#[derive(Debug, Default)]
pub(crate) struct WebhookCounts {
    pub(crate) signature: AtomicU64,
    pub(crate) event: AtomicU64,
    pub(crate) no_tenant: AtomicU64,
    pub(crate) receipted: AtomicU64,
}

/// Billing runs of one tenant are serialised: two closes of the same period must not both
/// find it open. Sharded by tenant (a fixed number of locks, not one per tenant).
#[derive(Debug)]
pub(crate) struct BillingLocks(Vec<std::sync::Arc<tokio::sync::Mutex<()>>>);

impl Default for BillingLocks {
    fn default() -> Self {
        Self((0..crate::limits::BILLING_RUN_LOCKS).map(|_| std::sync::Arc::default()).collect())
    }
}

impl BillingLocks {
    pub(crate) fn lock(&self, tenant: &TenantId) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        use std::hash::BuildHasher as _;
        let hash = foldhash::fast::FixedState::with_seed(0).hash_one(tenant);
        let i = usize::try_from(hash % self.0.len() as u64).unwrap_or(0);
        std::sync::Arc::clone(&self.0[i])
    }
}

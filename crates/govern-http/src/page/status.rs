//! `GET /v1/status`'s body, built from the runtime's read API, every list bounded.

use std::collections::BTreeMap;

use govern_governors::{StateSpec as _, TenantId};
use govern_runtime::{MeterUsage, RuntimeHandle};
use serde::Serialize;

use crate::ApiError;

/// At most this many tenants are shown (the first, by id); `tenants_total` says how many
/// there are.
pub const STATUS_TENANTS_MAX: usize = 100;

/// At most this many governors are shown per tenant (those that moved last).
pub const STATUS_GOVERNORS_PER_TENANT_MAX: usize = 50;

/// The last receipts shown, newest first.
pub const STATUS_RECEIPTS_MAX: usize = 20;

/// At most this many of a tenant's receipts are read to find its governors and their states
/// (one page of the ledger's change feed). A tenant with more has its governors read from
/// its receipts among the ledger's last this many, and `governors_partial` is set.
pub const STATUS_TENANT_RECEIPTS_SCANNED_MAX: usize = govern_runtime::ledger::TENANT_PAGE_MAX;

const _: () = assert!(STATUS_GOVERNORS_PER_TENANT_MAX <= STATUS_TENANT_RECEIPTS_SCANNED_MAX);
const _: () = assert!(STATUS_RECEIPTS_MAX <= govern_runtime::ledger::TENANT_PAGE_MAX);

/// The runtime's state, for an operator.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The runtime clock's time, ms since the Unix epoch.
    pub now_ms: u64,
    /// The ledger's head and progress.
    pub ledger: LedgerView,
    /// The last signed checkpoint (`None`: none yet, or the runtime keeps none).
    pub checkpoint: Option<CheckpointView>,
    /// Why the checkpoint file could not be shown, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_error: Option<String>,
    /// How many tenants were ever provisioned.
    pub tenants_total: usize,
    /// The first [`STATUS_TENANTS_MAX`] of them, by id.
    pub tenants: Vec<TenantView>,
    /// The ledger's last receipts, newest first (at most [`STATUS_RECEIPTS_MAX`], of the
    /// tenants shown).
    pub receipts: Vec<ReceiptView>,
    /// The bounds this answer was built with.
    pub bounds: Bounds,
}

/// The ledger's head.
#[derive(Clone, Debug, Serialize)]
pub struct LedgerView {
    /// Receipts written: the next sequence number.
    pub next_seq: u64,
    /// The last receipt's hash (hex; zeros for an empty ledger).
    pub head_hash: String,
    /// Receipts durable.
    pub durable: u64,
    /// A store failure stopped the ledger.
    pub poisoned: bool,
}

/// A signed checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointView {
    /// The receipts it covers.
    pub size: u64,
    /// Their Merkle root (hex).
    pub root: String,
    /// When it was signed, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The signing key's id (hex).
    pub key_id: String,
}

/// A tenant.
#[derive(Clone, Debug, Serialize)]
pub struct TenantView {
    /// Its id.
    pub tenant: String,
    /// Its lifecycle state.
    pub state: &'static str,
    /// Its receipts in the ledger.
    pub receipts: u64,
    /// Its live subscriptions' plans.
    pub plans: Vec<String>,
    /// Its governors (at most [`STATUS_GOVERNORS_PER_TENANT_MAX`]), by kind and resource.
    pub governors: Vec<GovernorView>,
    /// How many governors its receipts read named.
    pub governors_total: usize,
    /// Its governors were read from its recent receipts only
    /// ([`STATUS_TENANT_RECEIPTS_SCANNED_MAX`]).
    pub governors_partial: bool,
    /// Each meter its plans limit or price, with its usage now.
    pub meters: Vec<MeterUsage>,
}

/// A governor and its state, from its last receipt.
#[derive(Clone, Debug, Serialize)]
pub struct GovernorView {
    /// Its kind.
    pub kind: &'static str,
    /// Its resource.
    pub resource: String,
    /// Its state after its last receipt.
    pub state: String,
    /// That receipt's sequence number.
    pub seq: u64,
}

/// A receipt, as a person reads it.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptView {
    /// Its sequence number.
    pub seq: u64,
    /// Its tenant.
    pub tenant: String,
    /// Its governor's kind.
    pub kind: &'static str,
    /// Its governor's resource.
    pub resource: String,
    /// The command.
    pub command: String,
    /// The state before.
    pub from: String,
    /// The state after.
    pub to: String,
    /// Its hash (hex).
    pub hash: String,
}

/// The bounds of every list.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Bounds {
    /// [`STATUS_TENANTS_MAX`].
    pub tenants_max: usize,
    /// [`STATUS_GOVERNORS_PER_TENANT_MAX`].
    pub governors_per_tenant_max: usize,
    /// [`STATUS_RECEIPTS_MAX`].
    pub receipts_max: usize,
    /// [`STATUS_TENANT_RECEIPTS_SCANNED_MAX`].
    pub tenant_receipts_scanned_max: usize,
}

fn ledger_error(e: &impl std::fmt::Display) -> ApiError {
    ApiError::unavailable("ledger_unavailable", format!("the ledger could not be read: {e}"))
}

/// Builds the status (blocking: it reads receipts and the checkpoint file).
pub(super) fn build(runtime: &RuntimeHandle) -> Result<Status, ApiError> {
    let head = runtime.head();
    let ledger = runtime.ledger_status();
    let (checkpoint, checkpoint_error) = match runtime.last_checkpoint() {
        Ok(c) => (
            c.map(|c| CheckpointView {
                size: c.checkpoint.size,
                root: c.checkpoint.root.to_string(),
                timestamp_ms: c.checkpoint.timestamp.as_ms(),
                key_id: hex::encode(c.key_id),
            }),
            None,
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    let all = runtime.tenants();
    let counts: BTreeMap<TenantId, u64> = runtime.receipt_counts().into_iter().collect();
    let mut tenants = Vec::with_capacity(all.len().min(STATUS_TENANTS_MAX));
    let mut receipts = Vec::new();
    for (tenant, state) in all.iter().take(STATUS_TENANTS_MAX) {
        let count = counts.get(tenant).copied().unwrap_or(0);
        let (governors, governors_total, governors_partial) =
            governors(runtime, tenant, count, head.next_seq)?;
        let usage = runtime.meter_usage(tenant);
        tenants.push(TenantView {
            tenant: tenant.to_string(),
            state: state.name(),
            receipts: count,
            plans: usage.plans,
            governors,
            governors_total,
            governors_partial,
            meters: usage.meters,
        });
        // This tenant's receipts among the ledger's last STATUS_RECEIPTS_MAX.
        let after = after_last(head.next_seq, STATUS_RECEIPTS_MAX);
        let page = runtime
            .receipts_since(tenant, after, STATUS_RECEIPTS_MAX)
            .map_err(|e| ledger_error(&e))?;
        receipts.extend(page.receipts.iter().map(|r| ReceiptView {
            seq: r.seq,
            tenant: r.body.tenant.to_string(),
            kind: r.body.governor.name(),
            resource: r.body.resource.to_string(),
            command: r.body.command.to_string(),
            from: r.body.state_from.to_string(),
            to: r.body.state_to.to_string(),
            hash: r.hash.to_string(),
        }));
    }
    receipts.sort_unstable_by_key(|r| std::cmp::Reverse(r.seq));
    receipts.truncate(STATUS_RECEIPTS_MAX);
    Ok(Status {
        now_ms: runtime.now().as_ms(),
        ledger: LedgerView {
            next_seq: head.next_seq,
            head_hash: head.last_hash.to_string(),
            durable: ledger.durable,
            poisoned: ledger.poisoned,
        },
        checkpoint,
        checkpoint_error,
        tenants_total: all.len(),
        tenants,
        receipts,
        bounds: Bounds {
            tenants_max: STATUS_TENANTS_MAX,
            governors_per_tenant_max: STATUS_GOVERNORS_PER_TENANT_MAX,
            receipts_max: STATUS_RECEIPTS_MAX,
            tenant_receipts_scanned_max: STATUS_TENANT_RECEIPTS_SCANNED_MAX,
        },
    })
}

/// The change-feed cursor after which the ledger's last `n` receipts (of `next_seq`) start.
pub(super) fn after_last(next_seq: u64, n: usize) -> Option<u64> {
    next_seq.checked_sub(u64::try_from(n).unwrap_or(u64::MAX))?.checked_sub(1)
}

/// A tenant's governors with their states after their last receipt read, those that moved
/// last first kept, sorted by kind and resource; how many were found; whether only the
/// tenant's recent receipts were read.
fn governors(
    runtime: &RuntimeHandle,
    tenant: &TenantId,
    count: u64,
    next_seq: u64,
) -> Result<(Vec<GovernorView>, usize, bool), ApiError> {
    let scanned = STATUS_TENANT_RECEIPTS_SCANNED_MAX;
    let partial = count > u64::try_from(scanned).unwrap_or(u64::MAX);
    let after = if partial { after_last(next_seq, scanned) } else { None };
    let page = runtime.receipts_since(tenant, after, scanned).map_err(|e| ledger_error(&e))?;
    let mut last: BTreeMap<(&'static str, String), GovernorView> = BTreeMap::new();
    for r in &page.receipts {
        let kind = r.body.governor.name();
        let resource = r.body.resource.to_string();
        let view = GovernorView {
            kind,
            resource: resource.clone(),
            state: r.body.state_to.to_string(),
            seq: r.seq,
        };
        last.insert((kind, resource), view);
    }
    let total = last.len();
    let mut shown: Vec<GovernorView> = last.into_values().collect();
    if shown.len() > STATUS_GOVERNORS_PER_TENANT_MAX {
        shown.sort_unstable_by_key(|g| std::cmp::Reverse(g.seq));
        shown.truncate(STATUS_GOVERNORS_PER_TENANT_MAX);
        shown.sort_by(|a, b| (a.kind, &a.resource).cmp(&(b.kind, &b.resource)));
    }
    Ok((shown, total, partial))
}

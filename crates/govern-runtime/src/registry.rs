//! The tenant registry: each tenant's lifecycle state (as its tenant governor last committed
//! it) and its in-flight command count. Every command is admitted here first, lock-free, so a
//! command for an unknown, inactive, suspended or deprovisioned tenant never reaches a
//! governor, and a tenant cannot queue unbounded work. State timeouts are admitted by the
//! same rule ([`timeout_rule`]): held while the tenant is suspended, dropped once it is
//! deprovisioned.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use govern_governors::tenant::State as TenantState;
use govern_governors::{StateSpec, TenantId};

use crate::FastMap;
use crate::error::Refusal;

/// The entry of a tenant whose tenant governor has committed nothing yet: its first
/// lifecycle command is in flight (and may be rejected).
const UNPROVISIONED: u8 = u8::MAX;

/// One tenant's entry.
#[derive(Debug)]
pub(crate) struct TenantEntry {
    /// Index of the tenant governor's state in `TenantState::ALL`, or `UNPROVISIONED`.
    state: AtomicU8,
    /// Commands admitted and not yet answered.
    in_flight: AtomicUsize,
}

impl TenantEntry {
    /// The committed state; `None` before the tenant governor's first commit.
    fn state(&self) -> Option<TenantState> {
        TenantState::ALL.get(usize::from(self.state.load(Ordering::Acquire))).copied()
    }
}

/// Holds one unit of a tenant's in-flight budget; returns it when dropped.
#[derive(Debug)]
pub(crate) struct Admission {
    entry: Arc<TenantEntry>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.entry.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a due state timeout does, by its tenant's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeoutRule {
    /// It is delivered now, as a command the tenant admits.
    Deliver,
    /// It is kept, neither fired nor lost, until the tenant's state changes: a command
    /// would be refused now (`tenant_suspended`, `tenant_not_active`) but may be later.
    Hold,
    /// It never fires: the tenant is deprovisioned, which is final.
    Drop,
}

/// The admission rule for a due state timeout: a command to the same governor's, except that
/// a refusal that may pass later holds the timeout instead of losing it.
pub(crate) fn timeout_rule(state: Option<TenantState>, lifecycle: bool) -> TimeoutRule {
    match (state, lifecycle) {
        (Some(TenantState::Deprovisioned), _) => TimeoutRule::Drop,
        (Some(_), true)
        | (Some(TenantState::Active | TenantState::Degraded | TenantState::Maintenance), false) => {
            TimeoutRule::Deliver
        }
        (None, _) | (Some(TenantState::Provisioning | TenantState::Suspended), false) => {
            TimeoutRule::Hold
        }
    }
}

/// Whether a tenant governor's transition `from` → `to` (state names) ends a period in
/// which its governors' timeouts were held.
pub(crate) fn ends_hold(from: &str, to: &str) -> bool {
    let rule = |name| timeout_rule(TenantState::from_name(name), false);
    rule(from) == TimeoutRule::Hold && rule(to) != TimeoutRule::Hold
}

/// A due state timeout's admission.
#[derive(Debug)]
pub(crate) enum TimeoutAdmission {
    /// Deliver it, holding one unit of the tenant's in-flight count.
    Deliver(Admission),
    /// Keep it until the tenant's state changes.
    Hold,
    /// Forget it.
    Drop,
}

/// All tenants of a runtime.
#[derive(Debug)]
pub(crate) struct Registry {
    tenants: FastMap<TenantId, Arc<TenantEntry>>,
    /// The per-tenant in-flight bound.
    in_flight_max: usize,
}

impl Registry {
    pub(crate) fn new(in_flight_max: usize) -> Self {
        Self { tenants: FastMap::default(), in_flight_max }
    }

    /// Records that `tenant`'s governor is now in `state` (creating the entry).
    pub(crate) fn set_state(&self, tenant: &TenantId, state: TenantState) {
        let i = TenantState::ALL.iter().position(|s| *s == state).unwrap_or(0);
        let i = u8::try_from(i).unwrap_or(0);
        match self.tenants.get(tenant) {
            Some(e) => e.state.store(i, Ordering::Release),
            None => {
                let entry = TenantEntry { state: AtomicU8::new(i), in_flight: AtomicUsize::new(0) };
                self.tenants
                    .entry(tenant.clone())
                    .or_insert_with(|| Arc::new(entry))
                    .state
                    .store(i, Ordering::Release);
            }
        }
    }

    /// The tenant's state, if it was ever provisioned.
    pub(crate) fn state(&self, tenant: &TenantId) -> Option<TenantState> {
        self.tenants.get(tenant).and_then(|e| e.state())
    }

    /// Admits one command for `tenant`'s governors.
    ///
    /// `lifecycle` is true for commands to the tenant governor itself, which are admitted in
    /// every state but `deprovisioned` (a suspended tenant must be re-activatable), and for a
    /// tenant not yet provisioned.
    pub(crate) fn admit(&self, tenant: &TenantId, lifecycle: bool) -> Result<Admission, Refusal> {
        let entry = match self.tenants.get(tenant) {
            Some(e) => Arc::clone(e.value()),
            // A tenant's first lifecycle command is admitted on an entry of its own; the tenant
            // joins the registry only when its governor commits (`set_state`), so a rejected
            // command or a made-up id leaves nothing behind.
            None if lifecycle => Arc::new(TenantEntry {
                state: AtomicU8::new(UNPROVISIONED),
                in_flight: AtomicUsize::new(0),
            }),
            None => return Err(Refusal::UnknownTenant(tenant.clone())),
        };
        match (entry.state(), lifecycle) {
            (Some(TenantState::Deprovisioned), _) => {
                return Err(Refusal::TenantDeprovisioned(tenant.clone()));
            }
            (_, true)
            | (
                Some(TenantState::Active | TenantState::Degraded | TenantState::Maintenance),
                false,
            ) => {}
            (None, false) => return Err(Refusal::UnknownTenant(tenant.clone())),
            (Some(TenantState::Provisioning), false) => {
                return Err(Refusal::TenantNotActive(tenant.clone()));
            }
            (Some(TenantState::Suspended), false) => {
                return Err(Refusal::TenantSuspended(tenant.clone()));
            }
        }
        let before = entry.in_flight.fetch_add(1, Ordering::AcqRel);
        let admission = Admission { entry };
        if before >= self.in_flight_max {
            return Err(Refusal::Busy {
                what: "tenant in-flight commands",
                max: self.in_flight_max,
            });
        }
        Ok(admission)
    }

    /// Admits one due state timeout of `tenant`'s governors by [`timeout_rule`]. A delivered
    /// timeout counts in the tenant's in-flight commands (shutdown waits for it) but is never
    /// refused `busy`: a governor has at most one timeout.
    pub(crate) fn admit_timeout(&self, tenant: &TenantId, lifecycle: bool) -> TimeoutAdmission {
        let entry = self.tenants.get(tenant).map(|e| Arc::clone(e.value()));
        let state = entry.as_ref().and_then(|e| e.state());
        match (timeout_rule(state, lifecycle), entry) {
            (TimeoutRule::Deliver, Some(entry)) => {
                entry.in_flight.fetch_add(1, Ordering::AcqRel);
                TimeoutAdmission::Deliver(Admission { entry })
            }
            (TimeoutRule::Drop, _) => TimeoutAdmission::Drop,
            (TimeoutRule::Hold | TimeoutRule::Deliver, _) => TimeoutAdmission::Hold,
        }
    }

    /// Commands admitted and not yet answered, over all tenants.
    pub(crate) fn in_flight(&self) -> usize {
        self.tenants.iter().map(|e| e.in_flight.load(Ordering::Acquire)).sum()
    }

    /// Every tenant ever provisioned, sorted.
    pub(crate) fn tenants(&self) -> Vec<(TenantId, TenantState)> {
        let mut out: Vec<_> =
            self.tenants.iter().filter_map(|e| Some((e.key().clone(), e.state()?))).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

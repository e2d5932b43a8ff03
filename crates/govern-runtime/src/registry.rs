//! The tenant registry: each tenant's lifecycle state (as its tenant governor last committed
//! it) and its in-flight command count. Every command is admitted here first, lock-free, so a
//! command for an unknown, inactive, suspended or deprovisioned tenant never reaches a
//! governor, and a tenant cannot queue unbounded work. Why a tenant bars a command is one
//! rule ([`bar`]); due state timeouts are admitted by it too ([`timeout_rule`]): held while
//! the tenant does not admit them for now (suspended, still provisioning, or without a
//! committed state), dropped once it is deprovisioned.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use govern_governors::tenant::State as TenantState;
use govern_governors::{GovernorKind, ResourceId, StateSpec, TenantId};
use tokio::sync::oneshot;

use crate::FastMap;
use crate::error::{Accepted, Outcome, Refusal};

/// Which governor of a kind: the tenant and the resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) tenant: TenantId,
    pub(crate) resource: ResourceId,
}

/// The resource id of a tenant's own governors (tenant, audit): the tenant id.
pub(crate) fn tenant_resource(tenant: &TenantId) -> govern_governors::ResourceId {
    govern_governors::ResourceId::new(tenant.as_str()).unwrap_or_else(|_| unreachable_id())
}

#[cold]
fn unreachable_id() -> govern_governors::ResourceId {
    // A valid tenant id is a valid resource id: same alphabet, same length bound.
    govern_governors::ResourceId::new("tenant").expect("a literal id is valid")
}

/// The registry actor's messages (the actor is `crate::router`; the table it owns is
/// [`Registry`]).
pub(crate) enum RegistryMsg {
    /// A command (or query) for a governor that has no open route: the first command to a
    /// governor, or one whose route was passivated or quarantined meanwhile. `envelope` is
    /// the domain's typed envelope.
    Route { kind: GovernorKind, key: Key, envelope: Box<dyn std::any::Any + Send> },
    /// A tenant governor's receipt is durable: record the tenant's new state, release the
    /// timeouts it held, then answer the caller.
    TenantCommitted {
        tenant: TenantId,
        state: TenantState,
        reply: Option<(oneshot::Sender<Outcome>, Accepted)>,
        admission: Admission,
    },
    /// Governors passivated by their supervisor: drop their routes (the domain's typed list).
    Forget { kind: GovernorKind, slots: Box<dyn std::any::Any + Send> },
    /// Something the runtime decided about a tenant (a quarantine): the registry actor sends
    /// it to the tenant's audit governor, which receipts it.
    Audit { tenant: TenantId, command: govern_governors::audit::Command },
}

impl std::fmt::Debug for RegistryMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Route { kind, key, .. } => write!(f, "Route({kind} {key:?})"),
            Self::TenantCommitted { tenant, state, .. } => {
                write!(f, "TenantCommitted({tenant} {})", state.name())
            }
            Self::Forget { kind, .. } => write!(f, "Forget({kind})"),
            Self::Audit { tenant, command } => {
                write!(f, "Audit({tenant} {})", govern_governors::CommandSpec::name(command))
            }
        }
    }
}

impl RegistryMsg {
    /// Answers a [`Self::TenantCommitted`]'s caller without the registry (it has stopped).
    pub(crate) fn answer(self) {
        if let Self::TenantCommitted { reply: Some((tx, accepted)), .. } = self {
            let _ = tx.send(Ok(accepted));
        }
    }
}

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

/// Why a tenant's state bars a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bar {
    /// The tenant has no committed state (never provisioned).
    Unknown,
    /// The tenant is still being provisioned.
    NotActive,
    /// The tenant is suspended.
    Suspended,
    /// The tenant is deprovisioned, which is final.
    Deprovisioned,
}

/// Why a tenant in `state` bars a command to one of its governors, if it does. Commands to
/// the tenant governor itself (`lifecycle`) pass in every state but `deprovisioned` (a
/// suspended tenant must be re-activatable), and before the tenant has a state (its first
/// command provisions it).
pub(crate) fn bar(state: Option<TenantState>, lifecycle: bool) -> Option<Bar> {
    match (state, lifecycle) {
        (Some(TenantState::Deprovisioned), _) => Some(Bar::Deprovisioned),
        (_, true)
        | (Some(TenantState::Active | TenantState::Degraded | TenantState::Maintenance), false) => {
            None
        }
        (None, false) => Some(Bar::Unknown),
        (Some(TenantState::Provisioning), false) => Some(Bar::NotActive),
        (Some(TenantState::Suspended), false) => Some(Bar::Suspended),
    }
}

impl Bar {
    /// The refusal of a command barred for this reason.
    fn refusal(self, tenant: &TenantId) -> Refusal {
        let tenant = tenant.clone();
        match self {
            Self::Unknown => Refusal::UnknownTenant(tenant),
            Self::NotActive => Refusal::TenantNotActive(tenant),
            Self::Suspended => Refusal::TenantSuspended(tenant),
            Self::Deprovisioned => Refusal::TenantDeprovisioned(tenant),
        }
    }
}

/// What a due state timeout does, by its tenant's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeoutRule {
    /// It is delivered now, as a command the tenant admits.
    Deliver,
    /// It is kept, neither fired nor lost, until the tenant's state changes: a command
    /// would be refused now but may be admitted later.
    Hold,
    /// It never fires: the tenant is deprovisioned, which is final.
    Drop,
}

/// The admission rule for a due state timeout: a command's ([`bar`]), except that a bar that
/// may lift later holds the timeout instead of losing it, and so does a tenant without a
/// committed state.
pub(crate) fn timeout_rule(state: Option<TenantState>, lifecycle: bool) -> TimeoutRule {
    match (state, bar(state, lifecycle)) {
        (None, _) => TimeoutRule::Hold,
        (_, Some(Bar::Deprovisioned)) => TimeoutRule::Drop,
        (_, Some(Bar::Unknown | Bar::NotActive | Bar::Suspended)) => TimeoutRule::Hold,
        (_, None) => TimeoutRule::Deliver,
    }
}

/// Whether a tenant in `state` holds its governors' due timeouts.
pub(crate) fn holds(state: Option<TenantState>) -> bool {
    timeout_rule(state, false) == TimeoutRule::Hold
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

    /// Admits one command for `tenant`'s governors (`lifecycle`: for its tenant governor) by
    /// [`bar`], within the tenant's in-flight bound.
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
            None => return Err(Bar::Unknown.refusal(tenant)),
        };
        if let Some(bar) = bar(entry.state(), lifecycle) {
            return Err(bar.refusal(tenant));
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
        let Some(entry) = self.tenants.get(tenant).map(|e| Arc::clone(e.value())) else {
            // No entry, no state: held, as `timeout_rule(None, _)` says.
            return TimeoutAdmission::Hold;
        };
        match timeout_rule(entry.state(), lifecycle) {
            TimeoutRule::Deliver => {
                entry.in_flight.fetch_add(1, Ordering::AcqRel);
                TimeoutAdmission::Deliver(Admission { entry })
            }
            TimeoutRule::Hold => TimeoutAdmission::Hold,
            TimeoutRule::Drop => TimeoutAdmission::Drop,
        }
    }

    /// Admits a record the runtime itself sends to a known tenant's audit governor: never
    /// refused by the tenant's state or its in-flight bound (a record follows a decision the
    /// runtime has already taken), but counted in flight so that shutdown waits for it.
    /// `None` for a tenant the registry does not know.
    pub(crate) fn admit_record(&self, tenant: &TenantId) -> Option<Admission> {
        let entry = self.tenants.get(tenant).map(|e| Arc::clone(e.value()))?;
        entry.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(Admission { entry })
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

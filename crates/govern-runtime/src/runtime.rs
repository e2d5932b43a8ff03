//! Starting, driving and stopping a runtime: the supervision tree, the shared parts every
//! actor reaches, and the cheap cloneable handle hosts hold.
//!
//! ```text
//! root (one_for_one) ── domain supervisor × 8 (dynamic one_for_one) ── governor actors
//! ```
//!
//! The ledger and the tenant registry live in [`Shared`], not in actors of their own.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use govern_governors::{
    GovernorKind, Timestamp, account, billing, catalog, compliance, entitlement, quota,
    subscription, tenant,
};
use govern_ledger::{
    CheckpointSigner, Checkpointer, CommitOptions, Durability, OpenDirError, SegmentOptions,
};
use govern_receipt::{ChainError, Head, Receipt, ReplayError};
use ractor::{Actor, ActorCell, ActorRef};

use crate::clock::{Clock, wall_now};
use crate::commit::Committer;
use crate::domain::{Domain, DomainSupervisor};
use crate::error::RuntimeError;
use crate::governor::Key;
use crate::hosted::Hosted;
use crate::ledger::{Ledger, LedgerError, LedgerStore};
use crate::limits;
use crate::registry::{Admission, Registry, TimeoutAdmission};
use crate::schedule::Schedule;
use crate::supervisor::policy::{Intensity, RestartType, Strategy};
use crate::supervisor::{ChildSpec, StartFn, Supervisor, SupervisorMsg};

/// What every actor of a runtime shares.
pub(crate) struct Shared {
    pub(crate) ledger: Arc<Ledger>,
    /// Makes receipts durable in batches and holds replies until theirs is.
    pub(crate) commit: Arc<Committer>,
    pub(crate) clock: Clock,
    pub(crate) registry: Registry,
    /// Every armed state timeout, in delivery order.
    pub(crate) schedule: Schedule,
    pub(crate) reply_timeout: Duration,
    pub(crate) idle_after: Duration,
    pub(crate) child_shutdown: Duration,
    /// The clock's reading at start.
    clock_start: Timestamp,
    /// Set when shutdown begins or the supervision tree has failed: new commands are refused.
    shutting_down: AtomicBool,
}

impl Shared {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Monotonic time since the runtime started, for restart intensity windows.
    pub(crate) fn clock_elapsed(&self) -> Duration {
        Duration::from_millis(self.clock.now().as_ms().saturating_sub(self.clock_start.as_ms()))
    }
}

/// The eight domains of a runtime.
#[doc(hidden)]
pub struct Domains {
    pub(crate) entitlement: Arc<Domain<entitlement::Entitlement>>,
    pub(crate) billing: Arc<Domain<billing::Billing>>,
    pub(crate) catalog: Arc<Domain<catalog::Product>>,
    pub(crate) subscription: Arc<Domain<subscription::Subscription>>,
    pub(crate) account: Arc<Domain<account::Account>>,
    pub(crate) quota: Arc<Domain<quota::Quota>>,
    pub(crate) compliance: Arc<Domain<compliance::Audit>>,
    pub(crate) tenant: Arc<Domain<tenant::Tenant>>,
}

impl std::fmt::Debug for Domains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Domains")
    }
}

/// Configures and starts a [`Runtime`].
#[derive(Debug)]
pub struct RuntimeBuilder {
    epoch: Option<Timestamp>,
    idle_after: Duration,
    reply_timeout: Duration,
    tenant_in_flight_max: usize,
    governor_intensity: Intensity,
    root_intensity: Intensity,
    child_shutdown: Duration,
    store: Option<Box<dyn LedgerStore>>,
    data_dir: Option<PathBuf>,
    commit: CommitOptions,
    signer: Option<CheckpointSigner>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        Self {
            epoch: None,
            idle_after: limits::IDLE_AFTER,
            reply_timeout: limits::REPLY_TIMEOUT,
            tenant_in_flight_max: limits::TENANT_IN_FLIGHT_MAX,
            governor_intensity: Intensity::new(10, Duration::from_secs(10)),
            root_intensity: Intensity::new(3, Duration::from_secs(10)),
            child_shutdown: limits::CHILD_SHUTDOWN_TIMEOUT,
            store: None,
            data_dir: None,
            commit: CommitOptions::default(),
            signer: None,
        }
    }
}

impl RuntimeBuilder {
    /// What the runtime clock reads at start (default: the wall clock). Scenarios and tests
    /// fix it, and with tokio's paused time every decision time is then deterministic.
    #[must_use]
    pub fn epoch(mut self, epoch: Timestamp) -> Self {
        self.epoch = Some(epoch);
        self
    }

    /// How long a governor stays resident without commands before it is passivated.
    #[must_use]
    pub fn idle_after(mut self, idle: Duration) -> Self {
        self.idle_after = idle;
        self
    }

    /// How long a caller waits for a reply before a `timeout` refusal.
    #[must_use]
    pub fn reply_timeout(mut self, timeout: Duration) -> Self {
        self.reply_timeout = timeout;
        self
    }

    /// Most commands in flight per tenant before `busy` refusals.
    #[must_use]
    pub fn tenant_in_flight_max(mut self, max: usize) -> Self {
        self.tenant_in_flight_max = max;
        self
    }

    /// Restart intensity of each domain supervisor (governor crashes per window) before it
    /// escalates to the root.
    #[must_use]
    pub fn governor_restarts(mut self, restarts_max: u32, window: Duration) -> Self {
        self.governor_intensity = Intensity::new(restarts_max, window);
        self
    }

    /// Restart intensity of the root supervisor; beyond it the runtime stops.
    #[must_use]
    pub fn root_restarts(mut self, restarts_max: u32, window: Duration) -> Self {
        self.root_intensity = Intensity::new(restarts_max, window);
        self
    }

    /// Keeps the ledger in data directory `dir` with the embedded durable store (segment
    /// files in `dir/segments`), the production default. A directory with receipts is
    /// continued: the chain goes on and governors rehydrate from their receipts on first
    /// use. Checkpoints are signed into `dir/checkpoint.json` with the key pair in `dir`
    /// (generated on first start) unless [`Self::checkpoint_signer`] gives one.
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Another store for the ledger (default, without [`Self::data_dir`]: in memory, for
    /// tests and benchmarks). A store with records is continued. A durable store (one whose
    /// `is_durable` is true) gets group commit as [`Self::data_dir`] does, but no
    /// checkpoints (there is no directory for them).
    #[must_use]
    pub fn store(mut self, store: Box<dyn LedgerStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// When callers are acknowledged (default [`Durability::Durable`]: once their receipt is
    /// durable). [`Durability::Buffered`] acknowledges right after the write and flushes
    /// every [`CommitOptions::flush_every`]: a crash can lose what was acknowledged since.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.commit.durability = durability;
        self
    }

    /// How the group commit batches and how often it flushes and checkpoints (its
    /// durability is kept from [`Self::durability`]).
    #[must_use]
    pub fn group_commit(mut self, options: CommitOptions) -> Self {
        self.commit = CommitOptions { durability: self.commit.durability, ..options };
        self
    }

    /// The key that signs checkpoints (default: the key pair in the data directory).
    #[must_use]
    pub fn checkpoint_signer(mut self, signer: CheckpointSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The ledger and its checkpointer, as configured.
    fn open_ledger(&mut self) -> Result<(Ledger, Option<Checkpointer>), RuntimeError> {
        let fail = |reason: String| RuntimeError::Start { what: "ledger", reason };
        let Some(dir) = self.data_dir.clone() else {
            let ledger = match self.store.take() {
                Some(store) => Ledger::open(store).map_err(|e| fail(e.to_string()))?,
                None => Ledger::in_memory(),
            };
            return Ok((ledger, None));
        };
        if self.store.is_some() {
            return Err(fail("both a store and a data directory are configured".into()));
        }
        // The store's open scan and the ledger's rebuild in one read of each segment.
        let (ledger, report) =
            Ledger::open_dir(&dir, SegmentOptions::default()).map_err(|e| match e {
                OpenDirError::Store(e) => fail(format!("{}: {e}", dir.display())),
                other => fail(other.to_string()),
            })?;
        if let Some(torn) = &report.torn {
            tracing::warn!(segment = %torn.segment, offset = torn.offset, seq = torn.seq, bytes = torn.bytes, "ledger reopened after a torn final write; the unacknowledged tail was cut");
        }
        tracing::info!(dir = %dir.display(), receipts = report.records, segments = report.segments, "ledger opened");
        let checkpointer = match self.signer.take() {
            Some(signer) => Checkpointer { dir, signer, clock: Checkpointer::wall_clock },
            None => Checkpointer::in_dir(dir).map_err(|e| fail(e.to_string()))?,
        };
        Ok((ledger, Some(checkpointer)))
    }

    /// Starts the supervision tree.
    ///
    /// # Errors
    /// [`RuntimeError`] when the store does not verify or an actor cannot start.
    pub async fn start(mut self) -> Result<Runtime, RuntimeError> {
        let (ledger, checkpointer) = self.open_ledger()?;
        let ledger = Arc::new(ledger);
        let commit = Arc::new(Committer::new(Arc::clone(&ledger), self.commit, checkpointer));
        let clock = Clock::starting_at(self.epoch.unwrap_or_else(wall_now));
        let shared = Arc::new(Shared {
            ledger,
            commit,
            clock_start: clock.now(),
            clock,
            registry: Registry::new(self.tenant_in_flight_max),
            schedule: Schedule::new(),
            reply_timeout: self.reply_timeout,
            idle_after: self.idle_after,
            child_shutdown: self.child_shutdown,
            shutting_down: AtomicBool::new(false),
        });
        restore_tenant_states(&shared)?;
        let domains = Arc::new(Domains {
            entitlement: Arc::new(Domain::new(Arc::clone(&shared))),
            billing: Arc::new(Domain::new(Arc::clone(&shared))),
            catalog: Arc::new(Domain::new(Arc::clone(&shared))),
            subscription: Arc::new(Domain::new(Arc::clone(&shared))),
            account: Arc::new(Domain::new(Arc::clone(&shared))),
            quota: Arc::new(Domain::new(Arc::clone(&shared))),
            compliance: Arc::new(Domain::new(Arc::clone(&shared))),
            tenant: Arc::new(Domain::new(Arc::clone(&shared))),
        });
        // The root's children are the eight domain supervisors. The ledger and the tenant
        // registry are shared structures (`Shared`), not actors: an actor that holds one
        // without a message to handle would be a name in the tree that does nothing.
        // Issue 10 gives them actors with a job (the receipt actor as the ledger's single
        // writer, the registry actor owning routing).
        let mut children = Vec::with_capacity(GovernorKind::ALL.len());
        children.push(domain_child(
            &domains.entitlement,
            self.governor_intensity,
            self.child_shutdown,
        ));
        children.push(domain_child(&domains.billing, self.governor_intensity, self.child_shutdown));
        children.push(domain_child(&domains.catalog, self.governor_intensity, self.child_shutdown));
        children.push(domain_child(
            &domains.subscription,
            self.governor_intensity,
            self.child_shutdown,
        ));
        children.push(domain_child(&domains.account, self.governor_intensity, self.child_shutdown));
        children.push(domain_child(&domains.quota, self.governor_intensity, self.child_shutdown));
        children.push(domain_child(
            &domains.compliance,
            self.governor_intensity,
            self.child_shutdown,
        ));
        children.push(domain_child(&domains.tenant, self.governor_intensity, self.child_shutdown));
        let elapsed = {
            let shared = Arc::clone(&shared);
            Arc::new(move || shared.clock_elapsed())
        };
        let root = Supervisor {
            name: "root",
            strategy: Strategy::OneForOne,
            intensity: self.root_intensity,
            children,
            elapsed,
        };
        let (root, join) = Actor::spawn(None, root, ())
            .await
            .map_err(|e| RuntimeError::Start { what: "root supervisor", reason: e.to_string() })?;
        // If the root itself gives up, the runtime is down: refuse every further command and
        // answer every queued one, rather than let callers wait for their timeout.
        let watcher = {
            let (shared, domains) = (Arc::clone(&shared), Arc::clone(&domains));
            tokio::spawn(async move {
                let _ = join.await;
                if !shared.shutting_down.swap(true, Ordering::AcqRel) {
                    tracing::error!("root supervisor stopped: the runtime is down");
                    let reason = "the supervision tree has stopped";
                    for kind in GovernorKind::ALL {
                        domains.by_kind(kind).fail_resident(reason);
                    }
                    shared.schedule.clear();
                    shared.schedule.wake.notify_one();
                }
            })
        };
        rearm_timeouts(&shared, &domains)?;
        let delivery = tokio::spawn(deliver_timeouts(Arc::clone(&shared), Arc::clone(&domains)));
        let handle = RuntimeHandle { shared, domains };
        Ok(Runtime { handle, root, watcher, delivery })
    }
}

/// A runtime continuing a store admits by the tenant states its receipts record: each
/// tenant governor's receipts are replayed into the registry before any command is taken.
fn restore_tenant_states(shared: &Shared) -> Result<(), RuntimeError> {
    let fail = |reason: String| RuntimeError::Start { what: "tenant registry", reason };
    for (tenant_id, _) in shared.ledger.receipt_counts() {
        let resource = govern_governors::ResourceId::new(tenant_id.as_str())
            .map_err(|e| fail(e.to_string()))?;
        let receipts = shared
            .ledger
            .resource_receipts(&tenant_id, GovernorKind::Tenant, &resource)
            .map_err(|e| fail(e.to_string()))?;
        if !receipts.is_empty() {
            let machine: tenant::Tenant =
                govern_receipt::replay(&receipts).map_err(|e| fail(e.to_string()))?;
            shared.registry.set_state(&tenant_id, govern_governors::Governor::state(&machine));
        }
    }
    Ok(())
}

/// The states of each governor kind that arm a state timeout (found by exploring the pure
/// machine once per process).
fn timed_states(kind: GovernorKind) -> &'static [&'static str] {
    static TIMED: std::sync::OnceLock<Vec<(GovernorKind, Vec<&'static str>)>> =
        std::sync::OnceLock::new();
    let all = TIMED.get_or_init(|| {
        GovernorKind::ALL
            .into_iter()
            .map(|k| {
                let graph = govern_governors::graph::Graph::of_kind(k);
                (k, graph.timeouts.iter().map(|(state, _)| *state).collect())
            })
            .collect()
    });
    all.iter().find(|(k, _)| *k == kind).map_or(&[], |(_, states)| states.as_slice())
}

/// A runtime continuing a store arms the state timeouts its governors were waiting on (a
/// trial's end, a maintenance window's close) before it takes commands, so that they fire
/// when the clock passes them (at once if they fell due while the runtime was down), whether
/// or not the governor is used meanwhile; a suspended tenant's are held when due, as in a
/// running runtime, and a deprovisioned tenant's are not armed at all. It reads each
/// tenant's receipts once and replays only the governors whose last receipt left them in a
/// state with a timeout.
fn rearm_timeouts(shared: &Shared, domains: &Arc<Domains>) -> Result<(), RuntimeError> {
    use std::collections::BTreeMap;
    let fail = |reason: String| RuntimeError::Start { what: "state timeouts", reason };
    let mut armed = 0usize;
    for (tenant_id, _) in shared.ledger.receipt_counts() {
        if shared.registry.state(&tenant_id) == Some(tenant::State::Deprovisioned) {
            continue;
        }
        let receipts = shared
            .ledger
            .tenant_receipts(&tenant_id, None, None)
            .map_err(|e| fail(e.to_string()))?;
        let mut by_resource: BTreeMap<(GovernorKind, govern_governors::ResourceId), Vec<Receipt>> =
            BTreeMap::new();
        for r in receipts {
            by_resource.entry((r.body.governor, r.body.resource.clone())).or_default().push(r);
        }
        for ((kind, resource), receipts) in by_resource {
            let Some(last) = receipts.last() else { continue };
            if !timed_states(kind).contains(&last.body.state_to.as_ref()) {
                continue;
            }
            let key = Key { tenant: tenant_id.clone(), resource };
            let rearmed = domains
                .by_kind(kind)
                .rearm_from(&key, &receipts)
                .map_err(|e| fail(e.to_string()))?;
            armed += usize::from(rearmed);
        }
    }
    if armed > 0 {
        tracing::info!(armed, "state timeouts re-armed from the ledger");
    }
    Ok(())
}

/// The delivery task: sleeps until the earliest armed deadline (or until woken by an earlier
/// one, or by held timeouts released), then delivers everything due.
async fn deliver_timeouts(shared: Arc<Shared>, domains: Arc<Domains>) {
    while !shared.is_shutting_down() {
        let schedule = &shared.schedule;
        match schedule.next_deadline() {
            Some(at) if at <= shared.clock.now() => {
                domains.deliver_due(&shared, None).await;
            }
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(shared.clock.deadline(at)) => {}
                    () = schedule.wake.notified() => {}
                }
            }
            None => schedule.wake.notified().await,
        }
    }
}

impl Domains {
    /// Delivers every state timeout due now, one at a time, in (deadline, tenant, kind,
    /// resource) order, each admitted by its tenant's state (delivered, held or dropped), and
    /// waits until each delivered one is decided. Returns how many were delivered. The
    /// delivery task, [`RuntimeHandle::fire_due_timeouts`] and a lifecycle command answered
    /// while timeouts are due (see [`crate::GovernorHandle::send_request`]) all come here, one
    /// at a time. With `until`, it starts no delivery after that instant (nor waits for its
    /// turn past it): what is left stays due, for the next delivery.
    pub(crate) async fn deliver_due(
        &self,
        shared: &Shared,
        until: Option<tokio::time::Instant>,
    ) -> usize {
        let turn = shared.schedule.delivering.lock();
        let _turn = match until {
            None => turn.await,
            Some(until) => match tokio::time::timeout_at(until, turn).await {
                Ok(turn) => turn,
                Err(_) => return 0,
            },
        };
        let now = shared.clock.now();
        let mut delivered = 0;
        while !shared.is_shutting_down()
            && until.is_none_or(|until| tokio::time::Instant::now() < until)
        {
            let Some((due, generation)) = shared.schedule.pop_due(now) else { break };
            let key = Key { tenant: due.tenant.clone(), resource: due.resource.clone() };
            let lifecycle = due.kind == GovernorKind::Tenant;
            match shared.registry.admit_timeout(&due.tenant, lifecycle) {
                TimeoutAdmission::Deliver(admission) => {
                    let domain = self.by_kind(due.kind);
                    let d = domain.deliver_timeout(key, generation, admission).await;
                    delivered += usize::from(d);
                }
                TimeoutAdmission::Hold => {
                    let tenant = due.tenant.clone();
                    shared.schedule.hold(due, generation);
                    // A resumption committed between the admission and the hold found
                    // nothing to release: look again now that the timeout is held (the
                    // tenant governor sets the state before it releases, so one of the two
                    // sees the other).
                    if !crate::registry::holds(shared.registry.state(&tenant)) {
                        shared.schedule.release(&tenant);
                    }
                }
                TimeoutAdmission::Drop => self.by_kind(due.kind).drop_timeout(&key, generation),
            }
        }
        delivered
    }

    /// The domain of `kind`, kind-erased.
    fn by_kind(&self, kind: GovernorKind) -> &dyn AnyDomain {
        match kind {
            GovernorKind::Entitlement => &self.entitlement,
            GovernorKind::Billing => &self.billing,
            GovernorKind::Catalog => &self.catalog,
            GovernorKind::Subscription => &self.subscription,
            GovernorKind::Account => &self.account,
            GovernorKind::Quota => &self.quota,
            GovernorKind::Compliance => &self.compliance,
            GovernorKind::Tenant => &self.tenant,
        }
    }
}

fn child(name: &'static str, shutdown: Duration, start: StartFn) -> ChildSpec {
    ChildSpec { name, restart: RestartType::Permanent, shutdown, start }
}

fn domain_child<G: Hosted>(
    domain: &Arc<Domain<G>>,
    intensity: Intensity,
    shutdown: Duration,
) -> ChildSpec {
    let domain = Arc::clone(domain);
    // A domain supervisor stops its governors before itself: give it room for theirs.
    child(
        G::KIND.name(),
        shutdown * 2,
        Arc::new(move |sup: ActorCell| {
            let domain = Arc::clone(&domain);
            Box::pin(async move {
                Actor::spawn_linked(None, DomainSupervisor { domain, intensity }, (), sup)
                    .await
                    .map(|(a, _)| a.get_cell())
            })
        }),
    )
}

/// A running runtime. Drive it through [`Runtime::handle`]; stop it with
/// [`Runtime::shutdown`].
#[derive(Debug)]
pub struct Runtime {
    handle: RuntimeHandle,
    root: ActorRef<SupervisorMsg>,
    watcher: tokio::task::JoinHandle<()>,
    /// Delivers due state timeouts.
    delivery: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SupervisorMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SupervisorMsg")
    }
}

impl Runtime {
    /// A builder with the defaults of [`crate::limits`].
    #[must_use]
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A cheap, cloneable handle.
    #[must_use]
    pub fn handle(&self) -> RuntimeHandle {
        self.handle.clone()
    }

    /// Stops gracefully: refuses new commands, waits (up to a bound) for the commands in
    /// flight to be answered, stops the tree in reverse start order (governors finish the
    /// command in hand), then stops the group commit after a last commit and checkpoint.
    /// Returns the ledger's head.
    ///
    /// # Errors
    /// [`RuntimeError::Start`] (what: `final ledger commit`) when the last commit or
    /// checkpoint failed, or the ledger was poisoned earlier.
    pub async fn shutdown(self) -> Result<Head, RuntimeError> {
        let shared = &self.handle.shared;
        shared.shutting_down.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + limits::DRAIN_TIMEOUT;
        while shared.registry.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Timeouts not yet delivered are re-armed from the ledger at the next start.
        self.delivery.abort();
        let _ = ractor::call!(self.root, SupervisorMsg::Shutdown);
        self.root.stop(Some("shutdown".into()));
        self.watcher.abort();
        shared
            .commit
            .stop()
            .await
            .map_err(|reason| RuntimeError::Start { what: "final ledger commit", reason })?;
        // Lets go of the data directory's lock: a new runtime may open it while handles to
        // this one (which can still read) remain.
        shared.ledger.close();
        Ok(shared.ledger.head())
    }
}

/// The ledger's progress and health ([`RuntimeHandle::ledger_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerStatus {
    /// Receipts written (the next sequence number).
    pub receipts: u64,
    /// Receipts durable: every receipt below this survives a crash (with a store that is
    /// not durable, those the last commit covered).
    pub durable: u64,
    /// A store failure poisoned the ledger.
    pub poisoned: bool,
}

/// A cheap, cloneable handle to a running runtime. No ractor types cross it.
#[derive(Clone, Debug)]
pub struct RuntimeHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) domains: Arc<Domains>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("ledger", &self.ledger).finish_non_exhaustive()
    }
}

impl RuntimeHandle {
    /// The runtime clock's current time.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// The ledger's next sequence number and last hash.
    #[must_use]
    pub fn head(&self) -> Head {
        self.shared.ledger.head()
    }

    /// Re-reads and verifies the whole chain.
    ///
    /// # Errors
    /// The first bad receipt.
    pub fn verify(&self) -> Result<Head, ChainError> {
        self.shared.ledger.verify()
    }

    /// One tenant's receipts in sequence order, optionally narrowed to a governor kind and a
    /// resource. Never another tenant's.
    ///
    /// # Errors
    /// [`LedgerError`] when a record cannot be read.
    pub fn receipts(
        &self,
        tenant: &govern_governors::TenantId,
        kind: Option<GovernorKind>,
        resource: Option<&govern_governors::ResourceId>,
    ) -> Result<Vec<Receipt>, LedgerError> {
        self.shared.ledger.tenant_receipts(tenant, kind, resource)
    }

    /// Receipt counts per tenant, sorted by tenant.
    #[must_use]
    pub fn receipt_counts(&self) -> Vec<(govern_governors::TenantId, u64)> {
        self.shared.ledger.receipt_counts()
    }

    /// The state of a tenant as the registry admits by, if it was ever provisioned.
    #[must_use]
    pub fn tenant_state(&self, tenant: &govern_governors::TenantId) -> Option<tenant::State> {
        self.shared.registry.state(tenant)
    }

    /// Every tenant ever provisioned and its state, sorted.
    #[must_use]
    pub fn tenants(&self) -> Vec<(govern_governors::TenantId, tenant::State)> {
        self.shared.registry.tenants()
    }

    /// How many governors are resident (not passivated), over all kinds.
    #[must_use]
    pub fn resident_governors(&self) -> usize {
        self.sum(|d| d.resident())
    }

    /// How many governor actors are alive, over all kinds (a passivated governor's actor
    /// stops shortly after it is passivated).
    #[must_use]
    pub fn live_governor_actors(&self) -> usize {
        self.sum(|d| d.live_actors())
    }

    /// Passivates now every governor idle for at least `idle_for`, as the periodic sweep
    /// does with the configured idle time. Returns how many were passivated.
    #[must_use]
    pub fn passivate_idle(&self, idle_for: Duration) -> usize {
        self.sum(|d| d.passivate_idle(idle_for))
    }

    /// The ledger's progress and health: receipts written and durable, and whether a store
    /// failure has poisoned it (then every command is refused `ledger_unavailable` until the
    /// runtime is restarted on its data directory).
    #[must_use]
    pub fn ledger_status(&self) -> LedgerStatus {
        let ledger = &self.shared.ledger;
        LedgerStatus {
            receipts: ledger.head().next_seq,
            durable: ledger.durable_len(),
            poisoned: ledger.is_poisoned(),
        }
    }

    /// Heap bytes the ledger's store keeps in memory (the in-memory store's records).
    #[must_use]
    pub fn ledger_store_bytes(&self) -> usize {
        self.shared.ledger.store_heap_bytes()
    }

    /// Delivers every state timeout due now (trial ends, window closes, deadlines), across
    /// all kinds in (deadline, tenant, kind, resource) order, and waits until each is
    /// decided. A suspended tenant's stay held (they fire when it is resumed); a
    /// deprovisioned tenant's never fire. Returns how many this call delivered. Due timeouts
    /// are delivered anyway as the runtime's clock passes them (by the same ordered path, so
    /// whoever delivers, each is decided once and in order); this call makes the moment
    /// deterministic, for scenario scripts and tests on paused time.
    pub async fn fire_due_timeouts(&self) -> usize {
        self.domains.deliver_due(&self.shared, None).await
    }

    /// How many times the domain supervisor of `kind` was restarted after escalating.
    #[must_use]
    pub fn domain_restarts(&self, kind: GovernorKind) -> u64 {
        self.domains.by_kind(kind).incarnations().saturating_sub(1)
    }

    /// Whether the runtime has stopped taking commands (shutdown began, or the root
    /// supervisor gave up).
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.shared.is_shutting_down()
    }

    fn sum(&self, f: impl Fn(&dyn AnyDomain) -> usize) -> usize {
        GovernorKind::ALL.into_iter().map(|kind| f(self.domains.by_kind(kind))).sum()
    }
}

/// A domain of any kind: what the runtime does with a domain chosen by a kind at run time
/// (a due timeout's, a receipt's) or with each in turn.
trait AnyDomain: Send + Sync {
    fn resident(&self) -> usize;
    fn live_actors(&self) -> usize;
    fn passivate_idle(&self, idle_for: Duration) -> usize;
    fn incarnations(&self) -> u64;
    fn fail_resident(&self, reason: &str);
    fn rearm_from(&self, key: &Key, receipts: &[Receipt]) -> Result<bool, ReplayError>;
    fn deliver_timeout(
        &self,
        key: Key,
        generation: u64,
        admission: Admission,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
    fn drop_timeout(&self, key: &Key, generation: u64);
}

impl<G: Hosted> AnyDomain for Arc<Domain<G>> {
    fn resident(&self) -> usize {
        Domain::resident(self)
    }
    fn live_actors(&self) -> usize {
        Domain::live_actors(self)
    }
    fn passivate_idle(&self, idle_for: Duration) -> usize {
        Domain::passivate_idle(self, idle_for)
    }
    fn incarnations(&self) -> u64 {
        Domain::incarnations(self)
    }
    fn fail_resident(&self, reason: &str) {
        Domain::fail_resident(self, reason);
    }
    fn rearm_from(&self, key: &Key, receipts: &[Receipt]) -> Result<bool, ReplayError> {
        Domain::rearm_from(self, key, receipts)
    }
    fn deliver_timeout(
        &self,
        key: Key,
        generation: u64,
        admission: Admission,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(Domain::deliver_timeout(self, key, generation, admission))
    }
    fn drop_timeout(&self, key: &Key, generation: u64) {
        Domain::drop_timeout(self, key, generation);
    }
}

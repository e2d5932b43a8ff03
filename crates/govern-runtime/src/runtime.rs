//! Starting, driving and stopping a runtime: the supervision tree, the shared parts every
//! actor reaches, and the cheap cloneable handle hosts hold.
//!
//! ```text
//! root (one_for_one)
//!  ├── registry actor   routing misses, tenant lifecycle
//!  ├── receipt actor    the ledger's single writer and committer
//!  └── domain supervisor × 9 (one per kind) ── governor actors
//! ```
//!
//! Children start in that order and stop in reverse: governors first, then the receipt actor
//! (its last commit and checkpoint), then the registry.

use govern_plans::Catalog;
use govern_policy::RuleSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp, audit, tenant};
use govern_ledger::{
    CheckpointSigner, CheckpointSink, Checkpointer, CommitOptions, DirSink, Durability,
    OpenDirError, SegmentOptions,
};
use govern_receipt::{Head, Receipt};
use ractor::{Actor, ActorCell, ActorRef};
use std::collections::BTreeMap;

use crate::clock::{Clock, wall_now};
use crate::commercial::Commercial;
use crate::domain::{Domain, DomainConfig};
use crate::domains::{DomainFactory, Domains};
use crate::error::{Refusal, RuntimeError};
use crate::governor::Env;
use crate::hosted::Hosted;
use crate::ledger::{Ledger, LedgerError, LedgerStore};
use crate::limits;
use crate::receipts::{Receipts, Snapshots, receipt_actor};
use crate::registry::{Key, Registry, RegistryMsg, TimeoutAdmission};
use crate::router::RegistryActor;
use crate::schedule::Schedule;
use crate::supervisor::policy::{Intensity, RestartType, Strategy};
use crate::supervisor::{ChildSpec, StartFn, Supervisor, SupervisorMsg};
use crate::timers::Timers;

/// What the runtime's handles and its timeout delivery share. Actors get narrower parts.
pub(crate) struct Shared {
    /// For reads (queries, verification); only the receipt actor appends.
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) clock: Clock,
    /// The tenant table the registry actor writes and admission reads.
    pub(crate) registry: Arc<Registry>,
    /// Every armed state timeout, in delivery order.
    pub(crate) schedule: Arc<Schedule>,
    pub(crate) reply_timeout: Duration,
    /// The receipt actor's queue: hosts' reads wait behind it for durability.
    pub(crate) receipts: Receipts,
    /// Whether callers are acknowledged only once their receipt is durable.
    durable_acks: bool,
    /// Set when shutdown begins or the supervision tree has failed: new commands are refused.
    shutting_down: AtomicBool,
    /// The receipt actor's last commit, once it has stopped.
    final_commit: Arc<Mutex<Option<Result<(), String>>>>,
    /// Whether the host gave a plan catalog (the one in force is `commercial`'s: a reload
    /// replaces it).
    pub(crate) catalog: bool,
    /// What `RuntimeHandle::check` decides with.
    pub(crate) commercial: Arc<Commercial>,
    /// Idempotency keys and the first outcomes.
    pub(crate) idempotency: crate::idempotency::Idempotency,
    /// The saga definitions, by name.
    pub(crate) sagas: BTreeMap<String, Arc<crate::saga::SagaDef>>,
    /// Saga runs being run now (one coordinator per run).
    pub(crate) sagas_running: Mutex<std::collections::BTreeSet<(TenantId, ResourceId)>>,
    /// Unfinished saga runs found at start, to resume (taken by the first resumption; later
    /// ones, by a restarted coordinator, read the ledger).
    pub(crate) sagas_to_resume: Mutex<Option<Vec<(TenantId, ResourceId)>>>,
    /// Billing runs, serialised per tenant.
    pub(crate) billing_runs: crate::billing_state::BillingLocks,
    /// Webhook deliveries counted since start.
    pub(crate) webhooks: crate::billing_state::WebhookCounts,
    /// The saga coordinator actor's current incarnation.
    pub(crate) saga_coordinator: Arc<Mutex<Option<ActorRef<crate::saga_actor::SagaMsg>>>>,
    /// Where checkpoints are signed into and the key that verifies them (`None`: the runtime
    /// keeps no checkpoints); read by `RuntimeHandle::last_checkpoint`.
    pub(crate) checkpoints:
        Option<(Arc<dyn CheckpointSink>, govern_ledger::checkpoint::VerifyingKey)>,
    /// Outbound notifications (`None`: none configured).
    pub(crate) notify: Option<Arc<crate::notify::Notify>>,
    /// The notifier actor's current incarnation.
    pub(crate) notifier: Arc<Mutex<Option<ActorRef<crate::notifier::NotifyMsg>>>>,
    /// The metrics' instruments, registered at start.
    pub(crate) telemetry: Arc<crate::telemetry::Telemetry>,
    /// The capacity the host states it can give a tenant (`RuntimeBuilder::host_capacity`):
    /// the plan-change gate `infrastructure_headroom` compares a target's envelope with it.
    pub(crate) host_capacity: Option<govern_plans::Envelope>,
}

impl Shared {
    /// Whether callers are answered once their receipt is durable, after a group commit
    /// (else at the write: the buffered mode, or a store that is not durable).
    pub(crate) fn acks_after_commit(&self) -> bool {
        self.durable_acks && self.ledger.is_durable()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// The receipts a host may be shown: those below this sequence number. With durable
    /// acknowledgements on a durable store, the durable ones (no query shows a receipt a
    /// crash could take back); otherwise every written one.
    pub(crate) fn visible(&self) -> u64 {
        if self.acks_after_commit() {
            self.ledger.durable_len()
        } else {
            self.ledger.head().next_seq
        }
    }

    /// Waits until every receipt sent to the receipt actor so far is durable (at once if the
    /// store is not durable).
    pub(crate) async fn durable(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let after = crate::receipts::Entry::After(Box::new(move |_| {
            let _ = tx.send(());
        }));
        if self.receipts.send(after).await.is_ok() {
            let _ = tokio::time::timeout(self.reply_timeout, rx).await;
        }
    }
}

/// Configures and starts a [`Runtime`].
#[derive(Debug)]
pub struct RuntimeBuilder {
    epoch: Option<Timestamp>,
    idle_after: Duration,
    reply_timeout: Duration,
    tenant_in_flight_max: usize,
    governor_crashes: (u32, Duration),
    root_intensity: Intensity,
    child_shutdown: Duration,
    store: Option<Box<dyn LedgerStore>>,
    data_dir: Option<PathBuf>,
    commit: CommitOptions,
    snapshot_every: Option<u64>,
    index_budget: Option<usize>,
    retention: Option<crate::retention::Retention>,
    segments: SegmentOptions,
    signer: Option<CheckpointSigner>,
    checkpointer: Option<Checkpointer>,
    catalog: Option<Arc<Catalog>>,
    rules: Option<Arc<RuleSet>>,
    idempotency: (Duration, usize),
    sagas: Vec<crate::saga::SagaDef>,
    resume_sagas: bool,
    notifications: Option<crate::notify::Notifications>,
    metrics_tenant_labels: bool,
    host_capacity: Option<govern_plans::Envelope>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        Self {
            epoch: None,
            idle_after: limits::IDLE_AFTER,
            reply_timeout: limits::REPLY_TIMEOUT,
            tenant_in_flight_max: limits::TENANT_IN_FLIGHT_MAX,
            governor_crashes: (limits::GOVERNOR_CRASHES_MAX, limits::GOVERNOR_CRASH_WINDOW),
            root_intensity: Intensity::new(3, Duration::from_secs(10)),
            child_shutdown: limits::CHILD_SHUTDOWN_TIMEOUT,
            store: None,
            data_dir: None,
            commit: CommitOptions::default(),
            snapshot_every: None,
            index_budget: None,
            retention: None,
            segments: SegmentOptions::default(),
            signer: None,
            checkpointer: None,
            catalog: None,
            rules: None,
            idempotency: (limits::IDEMPOTENCY_WINDOW, limits::IDEMPOTENCY_KEYS_MAX),
            sagas: Vec::new(),
            resume_sagas: true,
            notifications: None,
            metrics_tenant_labels: false,
            host_capacity: None,
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

    /// How many times one governor may crash within `window` and be restarted at once;
    /// one more crash quarantines it (its commands are refused `governor_unavailable` with a
    /// retry-after, for 1 s, then twice as long at each further quarantine, up to 5 min).
    /// Other governors, of its tenant or any other, are not affected.
    #[must_use]
    pub fn governor_restarts(mut self, restarts_max: u32, window: Duration) -> Self {
        self.governor_crashes = (restarts_max, window);
        self
    }

    /// Restart intensity of the root supervisor (over the registry actor, the receipt actor
    /// and the domain supervisors); beyond it the runtime stops.
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
    /// `is_durable` is true) gets group commit as [`Self::data_dir`] does, and checkpoints
    /// only with [`Self::checkpoints`] (there is no directory for them).
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

    /// How many durable receipts make a ledger snapshot due in the data directory (default
    /// [`govern_ledger::SNAPSHOT_DUE_RECORDS`], or a fiftieth of the ledger if more; see
    /// [`Ledger::snapshot_due`]). A snapshot is also written at every clean stop. Without
    /// [`Self::data_dir`] there are no snapshots.
    #[must_use]
    pub fn ledger_snapshot_every(mut self, records: u64) -> Self {
        self.snapshot_every = Some(records);
        self
    }

    /// The bytes of resource lists read back from the ledger's snapshot that the ledger's
    /// index keeps (default [`govern_ledger::INDEX_BUDGET_BYTES`]; see
    /// [`Ledger::set_index_budget`]): beyond them a replay reads a governor's list from the
    /// snapshot file again (one block). Lists appended to since the snapshot and tenants'
    /// lists are held whatever the budget. Only a data directory's ledger pages.
    #[must_use]
    pub fn ledger_index_budget(mut self, bytes: usize) -> Self {
        self.index_budget = Some(bytes);
        self
    }

    /// The data directory's segment files hold at most `bytes` each (default and most: 64
    /// MiB): a segment is the unit archival moves ([`Self::retention`]).
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segments.segment_bytes = bytes;
        self
    }

    /// Archives the oldest sealed segments of the data directory by `policy` (by age, by
    /// the live segments' bytes, or both), checked every `policy.check_every` durable
    /// receipts on the receipt actor's background thread (the one that writes ledger
    /// snapshots): appends and commits go on meanwhile. See `govern archive` and
    /// docs/runtime-semantics.md, "Archival". Without [`Self::data_dir`] it does nothing.
    #[must_use]
    pub fn retention(mut self, policy: crate::retention::Retention) -> Self {
        self.retention = Some(policy);
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

    /// Signs checkpoints of a [`Self::store`]'s ledger with `checkpointer` (its key, into its
    /// sink: a database table, say), as a data directory's are: after a commit once
    /// [`CommitOptions::checkpoint_every`] has passed and the ledger grew, and at shutdown.
    /// Starting fails with a data directory (it keeps its own checkpoints: give a key with
    /// [`Self::checkpoint_signer`]) or a store that is not durable (it has no tree head to
    /// sign).
    #[must_use]
    pub fn checkpoints(mut self, checkpointer: Checkpointer) -> Self {
        self.checkpointer = Some(checkpointer);
        self
    }

    /// The plan catalog (validated: `govern_plans::load`). With one, a subscription's plan
    /// must be one of its plans (otherwise the command is refused `unknown_plan`); without
    /// one (the default), a plan is any id, as before catalogs.
    #[must_use]
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(Arc::new(catalog));
        self
    }

    /// The capacity this host states it can give one tenant (throughput, p99 latency,
    /// connections, queue depth): plan changes (`RuntimeHandle::simulate_plan_change`) pass
    /// the gate `infrastructure_headroom` only when it covers the target plan's envelope.
    /// Default: none stated (the gate is skipped).
    #[must_use]
    pub fn host_capacity(mut self, capacity: govern_plans::Envelope) -> Self {
        self.host_capacity = Some(capacity);
        self
    }

    /// How long idempotency keys are kept after their first use, and how many per tenant at
    /// most (the oldest is dropped first); default [`limits::IDEMPOTENCY_WINDOW`] (24 h) and
    /// [`limits::IDEMPOTENCY_KEYS_MAX`].
    #[must_use]
    pub fn idempotency(mut self, window: Duration, keys_max: usize) -> Self {
        self.idempotency = (window, keys_max.max(1));
        self
    }

    /// Registers a saga definition (`SagaDef::parse`), which `RuntimeHandle::run_saga` runs
    /// by name; one of the same name as a shipped saga replaces it.
    #[must_use]
    pub fn saga(mut self, def: crate::saga::SagaDef) -> Self {
        self.sagas.push(def);
        self
    }

    /// Whether unfinished saga runs are resumed in the background at start (default: yes);
    /// without, a host (or a test) resumes them with `RuntimeHandle::resume_sagas`.
    #[must_use]
    pub fn resume_sagas_at_start(mut self, resume: bool) -> Self {
        self.resume_sagas = resume;
        self
    }

    /// Whether the command counters (`govern_commands_total`, `govern_command_refusals_total`)
    /// carry a `tenant` label with the tenant's id (default: no; no metric ever carries one
    /// otherwise). Each command then costs the recorder a key lookup and a copy of the id,
    /// and the series grow with the tenants: opt in only with few tenants or a recorder that
    /// can take it. See `docs/metrics.md`.
    #[must_use]
    pub fn metrics_tenant_labels(mut self, on: bool) -> Self {
        self.metrics_tenant_labels = on;
        self
    }

    /// The policy rules `RuntimeHandle::check` consults after grants and plan features
    /// (`govern_policy::RuleSet::parse`, `docs/policy.md`); default: none.
    #[must_use]
    pub fn policy(mut self, rules: RuleSet) -> Self {
        self.rules = Some(Arc::new(rules));
        self
    }

    /// Delivers outbound notifications to tenants' endpoints (`docs/notifications.md`):
    /// events from durable receipts, signed, retried, deduplicated by event id, every attempt
    /// receipted in the tenant's audit trail. Without it (the default) nothing is sent and the
    /// receipt actor maps nothing.
    #[must_use]
    pub fn notifications(mut self, notifications: crate::notify::Notifications) -> Self {
        self.notifications = Some(notifications);
        self
    }

    /// The ledger and its checkpointer, as configured.
    fn open_ledger(
        &mut self,
    ) -> Result<(Ledger, Option<Checkpointer>, Option<Snapshots>), RuntimeError> {
        let fail = |reason: String| RuntimeError::Start { what: "ledger", reason };
        let Some(dir) = self.data_dir.clone() else {
            let ledger = match self.store.take() {
                Some(store) => Ledger::open(store).map_err(|e| fail(e.to_string()))?,
                None => Ledger::in_memory(),
            };
            if self.signer.is_some() {
                return Err(fail(
                    "checkpoint_signer signs a data directory's checkpoints; a store's are \
                     given with checkpoints (a Checkpointer with its sink)"
                        .into(),
                ));
            }
            let checkpointer = self.checkpointer.take();
            if checkpointer.is_some() && !ledger.is_durable() {
                return Err(fail(
                    "checkpoints are configured for a store that is not durable".into(),
                ));
            }
            return Ok((ledger, checkpointer, None));
        };
        if self.store.is_some() {
            return Err(fail("both a store and a data directory are configured".into()));
        }
        if self.checkpointer.is_some() {
            return Err(fail(
                "a data directory keeps its own checkpoints: give its key with checkpoint_signer"
                    .into(),
            ));
        }
        // The store's open scan and the ledger's rebuild in one read of each segment.
        let (ledger, report) = Ledger::open_dir(&dir, self.segments).map_err(|e| match e {
            OpenDirError::Store(e) => fail(format!("{}: {e}", dir.display())),
            other => fail(other.to_string()),
        })?;
        if let Some(torn) = &report.torn {
            tracing::warn!(segment = %torn.segment, offset = torn.offset, seq = torn.seq, bytes = torn.bytes, "ledger reopened after a torn final write; the unacknowledged tail was cut");
        }
        match report.snapshot {
            Some(covered) => {
                tracing::info!(dir = %dir.display(), receipts = report.records, segments = report.segments, snapshot = covered, read = report.records - covered, "ledger opened from its snapshot")
            }
            None => {
                tracing::info!(dir = %dir.display(), receipts = report.records, segments = report.segments, "ledger opened")
            }
        }
        let snapshots = Snapshots::new(dir.clone());
        let checkpointer = match self.signer.take() {
            Some(signer) => Checkpointer::new(Arc::new(DirSink::new(dir)), signer),
            None => Checkpointer::in_dir(dir).map_err(|e| fail(e.to_string()))?,
        };
        Ok((ledger, Some(checkpointer), Some(snapshots)))
    }

    /// Starts the supervision tree.
    ///
    /// # Errors
    /// [`RuntimeError`] when the store does not verify or an actor cannot start.
    pub async fn start(mut self) -> Result<Runtime, RuntimeError> {
        // Registered with the recorder in force now (a host installs it before it starts).
        let telemetry = Arc::new(crate::telemetry::Telemetry::new(self.metrics_tenant_labels));
        let (ledger, checkpointer, snapshots) = self.open_ledger()?;
        if let Some(every) = self.snapshot_every {
            ledger.set_snapshot_every(every);
        }
        if let Some(bytes) = self.index_budget {
            ledger.set_index_budget(bytes);
        }
        let idempotency_ms = u64::try_from(self.idempotency.0.as_millis()).unwrap_or(u64::MAX);
        let start_config = crate::start_state::Config::new(
            self.catalog.is_some(),
            (idempotency_ms, self.idempotency.1),
            self.catalog.as_deref(),
        );
        if let Some(checkpointer) = &checkpointer {
            check_latest_checkpoint(&ledger, checkpointer)?;
        }
        let checkpoints =
            checkpointer.as_ref().map(|c| (Arc::clone(&c.sink), c.signer.verifying_key()));
        let ledger = Arc::new(ledger);
        let clock = Clock::starting_at(self.epoch.unwrap_or_else(wall_now));
        let registry_ref: Arc<Mutex<Option<ActorRef<RegistryMsg>>>> = Arc::new(Mutex::new(None));
        let commercial = Arc::new(Commercial::new(
            self.catalog.clone(),
            self.rules.take().unwrap_or_else(|| Arc::new(RuleSet::empty())),
        ));
        // The runtime's start state rides on the ledger's snapshots: carried forward to the
        // durable receipts each time one is written while running, so that a start after a
        // crash reads only the receipts since then.
        let retention = self.retention.take();
        let snapshots = snapshots.map(|s| {
            let config = start_config.clone();
            let s = s.with_also(Box::new(move |ledger, dir| {
                crate::start_state::write_while_running(dir, ledger, &config, clock.now());
            }));
            match retention {
                Some(policy) => s.with_retention(policy, clock),
                None => s,
            }
        });
        let notify = match self.notifications.take() {
            Some(config) => Some(
                crate::notify::Notify::new(config)
                    .map_err(|reason| RuntimeError::Start { what: "notifications", reason })?,
            ),
            None => None,
        };
        let (receipt_actor, receipts) = receipt_actor(
            Arc::clone(&ledger),
            self.commit,
            checkpointer,
            Arc::clone(&registry_ref),
            Arc::clone(&commercial),
            snapshots,
            crate::receipts::Outlets { notify: notify.clone(), telemetry: Arc::clone(&telemetry) },
        );
        let durable_acks = self.commit.durability == Durability::Durable;
        let shared = Arc::new(Shared {
            ledger: Arc::clone(&ledger),
            receipts: receipts.clone(),
            durable_acks,
            clock,
            registry: Arc::new(Registry::new(self.tenant_in_flight_max)),
            schedule: Arc::new(Schedule::new()),
            reply_timeout: self.reply_timeout,
            shutting_down: AtomicBool::new(false),
            final_commit: Arc::clone(&receipt_actor.outcome),
            catalog: self.catalog.take().is_some(),
            commercial,
            idempotency: crate::idempotency::Idempotency::new(idempotency_ms, self.idempotency.1),
            sagas: crate::saga::SagaDef::shipped()
                .map_err(|e| RuntimeError::Start { what: "shipped sagas", reason: e.to_string() })?
                .into_iter()
                .chain(std::mem::take(&mut self.sagas))
                .map(|d| (d.name.clone(), Arc::new(d)))
                .collect(),
            sagas_running: Mutex::new(std::collections::BTreeSet::new()),
            sagas_to_resume: Mutex::new(None),
            webhooks: crate::billing_state::WebhookCounts::default(),
            billing_runs: crate::billing_state::BillingLocks::default(),
            saga_coordinator: Arc::new(Mutex::new(None)),
            checkpoints,
            notify,
            notifier: Arc::new(Mutex::new(None)),
            telemetry,
            host_capacity: self.host_capacity,
        });
        // What the receipts leave for a start (tenants' states, timeouts, views, keys, usage,
        // sagas): from `runtime.snap` and the receipts after it, or from every receipt.
        let (start_state, changed) = crate::start_state::compute(
            self.data_dir.as_deref(),
            &shared.ledger,
            &start_config,
            shared.clock.now(),
        )?;
        start_state.install_registry(&shared.registry);
        let covers = start_state.seq;
        let config = DomainConfig {
            reply_timeout: self.reply_timeout,
            idle_after: self.idle_after,
            child_shutdown: self.child_shutdown,
            crashes_max: self.governor_crashes.0,
            crash_window: self.governor_crashes.1,
        };
        let factory = Factory { receipts, shared: &shared, config, registry: &registry_ref };
        let domains = Arc::new(Domains::new(&factory));
        let registry_actor = RegistryActor {
            domains: Arc::clone(&domains),
            tenants: Arc::clone(&shared.registry),
            schedule: Arc::clone(&shared.schedule),
            me: registry_ref,
        };
        // Started in this order, stopped in reverse: governors stop before the receipt
        // actor's last commit, and the registry outlives both.
        let mut children = vec![
            actor_child("registry", self.child_shutdown, registry_actor),
            actor_child("receipts", self.child_shutdown, receipt_actor),
        ];
        children.extend(domains.all_shared().map(|d| d.child_spec(self.child_shutdown)));
        // Started last, stopped first: its runs stop before the governors they drive.
        children.push(actor_child(
            "sagas",
            self.child_shutdown,
            saga_coordinator(&shared, &domains),
        ));
        // Started after everything it records through, stopped before it.
        if let Some(notify) = &shared.notify {
            children.push(actor_child(
                "notifier",
                self.child_shutdown,
                notifier(&shared, &domains, notify),
            ));
        }
        let elapsed = {
            let clock = shared.clock;
            let start = clock.now();
            Arc::new(move || {
                Duration::from_millis(clock.now().as_ms().saturating_sub(start.as_ms()))
            })
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
                    for domain in domains.all() {
                        domain.fail_resident("the supervision tree has stopped");
                    }
                    shared.schedule.clear();
                    shared.schedule.wake.notify_one();
                }
            })
        };
        // Before any command is taken: state timeouts armed (they fire when the clock passes
        // them, at once if they fell due while the runtime was down, whether or not the
        // governor is used meanwhile; a suspended tenant's are held when due, a deprovisioned
        // tenant's are not armed), check views applied, idempotency keys and usage restored.
        let parts = crate::start_state::Parts {
            ledger: &shared.ledger,
            now: shared.clock.now(),
            catalog: shared.catalog,
            commercial: &shared.commercial,
            idempotency: &shared.idempotency,
            sagas_to_resume: &shared.sagas_to_resume,
        };
        let armed = start_state.install(&parts, &domains)?;
        if armed > 0 {
            tracing::info!(armed, "state timeouts re-armed from the ledger");
        }
        // Written in the background: a crash from now on costs the next start the receipts
        // after this state only.
        let writing = match (&self.data_dir, changed) {
            (Some(dir), true) => {
                let dir = dir.clone();
                Some(tokio::task::spawn_blocking(move || {
                    match crate::start_state::write(&dir, &start_state) {
                        Ok(()) => tracing::info!(
                            covers = start_state.seq,
                            "{} written",
                            crate::start_state::FILE
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "{} not written", crate::start_state::FILE)
                        }
                    }
                }))
            }
            _ => None,
        };
        let start_file = self.data_dir.take().map(|dir| StartFile {
            dir,
            config: start_config,
            covers,
            writing,
        });
        let delivery = tokio::spawn(deliver_timeouts(Arc::clone(&shared), Arc::clone(&domains)));
        let eviction = tokio::spawn(evict_commercial(
            Arc::downgrade(&shared),
            Arc::downgrade(&domains),
            self.idle_after,
        ));
        let handle = RuntimeHandle { shared, domains };
        if self.resume_sagas {
            // Unfinished saga runs continue (or compensate) from their receipts, in the
            // background; each run's steps carry idempotency keys, so none runs twice.
            let resuming = handle.clone();
            tokio::spawn(async move { drop(resuming.resume_sagas().await) });
        }
        Ok(Runtime { handle, root, watcher, delivery, eviction, start_file })
    }
}

/// The check layer's passivation sweep: every half idle time (as the domain supervisors'
/// sweeps), drops the check inputs and usage counters of the tenants idle for `idle_after`
/// ([`RuntimeHandle::evict_idle_tenant_states`]). Holds the runtime weakly: it ends with it.
async fn evict_commercial(shared: Weak<Shared>, domains: Weak<Domains>, idle_after: Duration) {
    let period = (idle_after / 2).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (Some(shared), Some(domains)) = (shared.upgrade(), domains.upgrade()) else { return };
        if shared.is_shutting_down() {
            return;
        }
        if shared.catalog {
            RuntimeHandle { shared, domains }.evict_idle_tenant_states(idle_after);
        }
    }
}

/// The saga coordinator actor: runs with a handle on this runtime; a restarted one (after a
/// crash) resumes the unfinished runs, found in the ledger.
fn saga_coordinator(
    shared: &Arc<Shared>,
    domains: &Arc<Domains>,
) -> crate::saga_actor::SagaCoordinator {
    let handle = RuntimeHandle { shared: Arc::clone(shared), domains: Arc::clone(domains) };
    let runner: crate::saga_actor::Runner = Arc::new(move |request| {
        let handle = handle.clone();
        Box::pin(async move { handle.run_saga_task(request).await })
    });
    let scan = Arc::clone(shared);
    let unfinished: crate::saga_actor::Unfinished = Arc::new(move || {
        // The start's list (read from the start state, even when empty), once; afterwards
        // runs may have begun since: the ledger says.
        let listed =
            scan.sagas_to_resume.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        listed.unwrap_or_else(|| unfinished_sagas(&scan))
    });
    crate::saga_actor::SagaCoordinator {
        runner,
        unfinished,
        starts: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        me: Arc::clone(&shared.saga_coordinator),
    }
}

/// The notifier actor, with what it reaches of this runtime: audit records (durable before
/// they are answered), the clock, the ledger and how far a host may read it.
fn notifier(
    shared: &Arc<Shared>,
    domains: &Arc<Domains>,
    notify: &Arc<crate::notify::Notify>,
) -> crate::notifier::NotifierActor {
    let handle = RuntimeHandle { shared: Arc::clone(shared), domains: Arc::clone(domains) };
    let record: crate::notifier::Record = Arc::new(move |tenant, request| {
        let handle = handle.clone();
        Box::pin(async move { handle.record_waiting(&tenant, request).await })
    });
    let (scan, down) = (Arc::clone(shared), Arc::clone(shared));
    let env = crate::notifier::Env {
        record,
        clock: shared.clock,
        ledger: Arc::clone(&shared.ledger),
        visible: Arc::new(move || scan.visible()),
        stopping: Arc::new(move || down.is_shutting_down()),
    };
    crate::notifier::NotifierActor {
        notify: Arc::clone(notify),
        env,
        me: Arc::clone(&shared.notifier),
        tasks: Arc::default(),
    }
}

/// Every saga run whose last receipt leaves it unfinished, read from the ledger.
fn unfinished_sagas(shared: &Shared) -> Vec<(TenantId, ResourceId)> {
    let mut out = Vec::new();
    for (tenant, _) in shared.ledger.receipt_counts() {
        let Ok(receipts) = shared.ledger.tenant_receipts(&tenant, Some(GovernorKind::Saga), None)
        else {
            continue;
        };
        let mut last: BTreeMap<ResourceId, String> = BTreeMap::new();
        for r in receipts {
            last.insert(r.body.resource.clone(), r.body.state_to.to_string());
        }
        out.extend(
            last.into_iter()
                .filter(|(_, state)| crate::saga::unfinished(state))
                .map(|(id, _)| (tenant.clone(), id)),
        );
    }
    out
}

/// Builds each kind's domain with its narrow environment.
struct Factory<'a> {
    receipts: Receipts,
    shared: &'a Arc<Shared>,
    config: DomainConfig,
    registry: &'a Arc<Mutex<Option<ActorRef<RegistryMsg>>>>,
}

impl DomainFactory for Factory<'_> {
    fn make<G: Hosted>(&self) -> Domain<G> {
        let env = Env {
            receipts: self.receipts.clone(),
            ledger: Arc::clone(&self.shared.ledger),
            clock: self.shared.clock,
            timers: Arc::new(Timers::new(Arc::clone(&self.shared.schedule))),
            views: self.shared.catalog,
        };
        let metrics = self.shared.telemetry.kind(G::KIND).clone();
        Domain::new(env, self.config, Arc::clone(self.registry), metrics)
    }
}

/// The root's child spec of a runtime actor that is restarted as it was configured.
fn actor_child<A>(name: &'static str, shutdown: Duration, actor: A) -> ChildSpec
where
    A: Actor<Arguments = ()> + Clone + Sync,
{
    let start: StartFn = Arc::new(move |sup: ActorCell| {
        let actor = actor.clone();
        Box::pin(async move {
            Actor::spawn_linked(None, actor, (), sup).await.map(|(a, _)| a.get_cell())
        })
    });
    ChildSpec { name, restart: RestartType::Permanent, shutdown, start }
}

/// Before a runtime continues a ledger, its own latest checkpoint (signed with its key) must
/// still hold: a ledger shorter than the checkpoint lost acknowledged history (a checkpoint
/// covers only durable receipts, which no torn-tail cut removes), and one of the same size
/// with another root was rewritten. Either refuses the start rather than signing over it. A
/// checkpoint of a smaller size is checked by `govern verify` (the open keeps only the tree's
/// right edge); one signed by another key (a key rotation) is not this runtime's to judge.
fn check_latest_checkpoint(
    ledger: &Ledger,
    checkpointer: &Checkpointer,
) -> Result<(), RuntimeError> {
    let fail = |reason: String| RuntimeError::Start { what: "ledger", reason };
    let Some(tree) = ledger.tree_head() else { return Ok(()) };
    let latest = match checkpointer.sink.latest() {
        Ok(Some(json)) => json,
        Ok(None) => return Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "the latest checkpoint could not be read: not checked at start");
            return Ok(());
        }
    };
    let signed = govern_ledger::checkpoint::SignedCheckpoint::from_json(&latest)
        .map_err(|e| fail(format!("the latest checkpoint does not parse: {e}")))?;
    if signed.verify(&checkpointer.signer.verifying_key()).is_err() {
        tracing::warn!("the latest checkpoint is signed with another key: not checked at start");
        return Ok(());
    }
    let checkpoint = signed.checkpoint;
    if checkpoint.size > tree.size {
        return Err(fail(format!(
            "the ledger holds {} receipts, but its checkpoint signed {}: acknowledged history is missing (history truncated); govern verify says more",
            tree.size, checkpoint.size
        )));
    }
    if checkpoint.size == tree.size && checkpoint.root != tree.root {
        return Err(fail(format!(
            "the ledger's root at size {} is {}, but its checkpoint of that size signed {}: the history was rewritten",
            tree.size, tree.root, checkpoint.root
        )));
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
    /// Evicts idle tenants' check inputs and usage counters.
    eviction: tokio::task::JoinHandle<()>,
    /// Where the start state is kept (with a data directory).
    start_file: Option<StartFile>,
}

/// A data directory's start state (`runtime.snap`): its configuration, and its write at
/// start while it runs.
#[derive(Debug)]
struct StartFile {
    dir: PathBuf,
    config: crate::start_state::Config,
    /// The ledger's length the start state covered at start: a runtime that wrote nothing
    /// since leaves the file as it is.
    covers: u64,
    writing: Option<tokio::task::JoinHandle<()>>,
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
        if shared.catalog && !shared.is_shutting_down() {
            // The last counting windows are receipted before the governors stop.
            self.handle.flush_check_counts().await;
        }
        shared.shutting_down.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + limits::DRAIN_TIMEOUT;
        while shared.registry.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Timeouts not yet delivered are re-armed from the ledger at the next start.
        self.delivery.abort();
        self.eviction.abort();
        // Governors stop, then the receipt actor makes its last commit and checkpoint and
        // closes the ledger (which lets go of the data directory's lock), then the registry.
        let _ = ractor::call!(self.root, SupervisorMsg::Shutdown);
        self.root.stop(Some("shutdown".into()));
        self.watcher.abort();
        let last = shared
            .final_commit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| Err("the receipt actor did not stop".into()));
        // Whatever happened, no more appends: a new runtime may open the directory while
        // handles to this one (which can still read) remain.
        shared.ledger.close();
        last.map_err(|reason| RuntimeError::Start { what: "final ledger commit", reason })?;
        // No receipt can come now: the start state is carried forward to the ledger's length.
        if let Some(StartFile { dir, config, covers, writing }) = self.start_file {
            if let Some(writing) = writing {
                let _ = writing.await;
            }
            let (ledger, now) = (Arc::clone(&shared.ledger), shared.clock.now());
            if ledger.head().next_seq == covers {
                return Ok(shared.ledger.head());
            }
            let _ = tokio::task::spawn_blocking(move || {
                crate::start_state::write_at_shutdown(&dir, &ledger, &config, now);
            })
            .await;
        }
        Ok(shared.ledger.head())
    }
}

/// One page of a tenant's receipts ([`RuntimeHandle::receipts_since`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ReceiptPage {
    /// The receipts, in sequence order.
    pub receipts: Vec<Receipt>,
    /// Where the next page starts: the last receipt's sequence number (the cursor given,
    /// when the page is empty).
    pub cursor: Option<u64>,
    /// No receipt the host may be shown follows this page (for now).
    pub caught_up: bool,
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

    /// Re-reads and verifies the whole chain (from the archive boundary when older receipts
    /// are archived: `Ledger::verify`).
    ///
    /// # Errors
    /// [`LedgerError::Chain`] naming the first bad receipt, or why it could not be read.
    pub fn verify(&self) -> Result<Head, LedgerError> {
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
        self.shared.ledger.tenant_receipts_below(tenant, kind, resource, self.shared.visible())
    }

    /// One page of a tenant's receipts, to follow the ledger as a change feed: those after
    /// `cursor` (the `cursor` of the previous page; `None` from the start), at most `limit`
    /// (between 1 and [`ledger::TENANT_PAGE_MAX`](crate::ledger::TENANT_PAGE_MAX)), in
    /// sequence order, only those a host may be shown (durable, with durable
    /// acknowledgements). Never another tenant's. Finding a page costs its size, not the
    /// tenant's history.
    ///
    /// ```text
    /// let mut cursor = None;
    /// loop {
    ///     let page = handle.receipts_since(&tenant, cursor, 500)?;
    ///     for r in &page.receipts { /* forward r */ }
    ///     cursor = page.cursor;
    ///     if page.caught_up { /* wait, then ask again from `cursor` */ }
    /// }
    /// ```
    ///
    /// # Errors
    /// [`LedgerError`] when a record cannot be read.
    pub fn receipts_since(
        &self,
        tenant: &govern_governors::TenantId,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<ReceiptPage, LedgerError> {
        let below = self.shared.visible();
        let (receipts, more) =
            self.shared.ledger.tenant_receipts_page_below(tenant, cursor, limit, below)?;
        let cursor = receipts.last().map(|r| r.seq).or(cursor);
        Ok(ReceiptPage { receipts, cursor, caught_up: more.is_none() })
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

    /// May `tenant` do `action` on `feature` (`quantity` units) now? Decided by
    /// [`govern_policy::decide`] in its order (the tenant's state, then its entitled grants,
    /// then the features of its live subscriptions' plans in the catalog, then the policy
    /// rules, else refused: `402 plan_upgrade_required` when some plan of the catalog has
    /// the feature, `403 not_entitled` otherwise), from what durable receipts say, through a
    /// per-tenant cache that every plan, grant or tenant-state change empties. No message, no
    /// I/O: a lock of the tenant's own (but for the first check of a metered feature after
    /// the tenant's usage counters were evicted as idle, which reads its usage receipts back
    /// from the ledger's index: [`Self::resident_tenant_states`]).
    ///
    /// Checks need a catalog ([`RuntimeBuilder::catalog`]): without one the runtime keeps no
    /// plans or grants for them (and its governors do no work for them).
    ///
    /// # Errors
    /// [`Refusal::UnknownTenant`] for a tenant never provisioned; [`Refusal::NoCatalog`];
    /// [`Refusal::ShuttingDown`]; [`Refusal::LedgerUnavailable`] once a store failure has
    /// poisoned the ledger.
    pub fn check(
        &self,
        tenant: &govern_governors::TenantId,
        feature: &str,
        action: &str,
        quantity: u64,
    ) -> Result<govern_policy::Decision, Refusal> {
        if self.shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        if !self.shared.catalog {
            return Err(Refusal::NoCatalog);
        }
        // A check decides nothing durable itself, but its refusals and counts are receipted and
        // what it decides from may be behind what was acknowledged: with the ledger poisoned,
        // it does not answer (every path to a decision says so alike).
        if self.shared.ledger.is_poisoned() {
            return Err(Refusal::LedgerUnavailable("the ledger's store failed".into()));
        }
        let state = self
            .shared
            .registry
            .state(tenant)
            .ok_or_else(|| Refusal::UnknownTenant(tenant.clone()))?;
        let request = govern_policy::Request { feature, action, quantity };
        let source = |t: &govern_governors::TenantId| self.usage_receipts(t);
        let (decision, records) = self
            .shared
            .commercial
            .check(tenant, state, &request, self.shared.clock.now(), &source)
            .map_err(Refusal::LedgerUnavailable)?;
        for command in records {
            self.record_audit(tenant, command);
        }
        Ok(decision)
    }

    /// `tenant`'s quota receipts as far as they are visible (acknowledged), to rebuild its
    /// evicted usage counters from (their `record_usage` receipts).
    pub(crate) fn usage_receipts(
        &self,
        tenant: &govern_governors::TenantId,
    ) -> Result<Vec<govern_receipt::Receipt>, String> {
        self.shared
            .ledger
            .tenant_receipts_below(
                tenant,
                Some(govern_governors::GovernorKind::Quota),
                None,
                self.shared.visible(),
            )
            .map_err(|e| e.to_string())
    }

    /// Drops the commercial state of every tenant idle for at least `idle_for` on the
    /// runtime's clock, to be rebuilt at its next use exactly as it was (as after a restart):
    /// its check inputs (the decision cache, limits and input; its views of plans, grants and
    /// quota stay, a few hundred bytes) and its usage counters and deduplicated ids, unless a
    /// usage flush is in flight (rebuilt from its `record_usage` receipts). A rate limiter
    /// stays until its bucket is full again; the check counts stay (their window is receipted
    /// by the next check or at shutdown, as before: the sweep writes nothing). The periodic sweep
    /// does this every half idle time. Returns how many tenants' check inputs and usage
    /// counters were dropped.
    pub(crate) fn evict_idle_tenant_states(&self, idle_for: Duration) -> (usize, usize) {
        let now = self.shared.clock.now();
        let idle_ms = u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX);
        let since = now.as_ms().saturating_sub(idle_ms);
        let commercial = &self.shared.commercial;
        // The check inputs first: they hold the counters they read.
        let evicted = commercial.evict_idle(since, now);
        let usage = commercial.usage.evict_idle(since);
        if evicted.derived + usage > 0 {
            tracing::debug!(
                check_inputs = evicted.derived,
                entries = evicted.entries,
                usage,
                "idle tenants' commercial state evicted"
            );
        }
        (evicted.derived, usage)
    }

    /// How many tenants' check inputs and usage counters are resident (built and not
    /// evicted by the passivation sweep), in that order.
    #[must_use]
    pub fn resident_tenant_states(&self) -> (usize, usize) {
        let commercial = &self.shared.commercial;
        (commercial.resident_derived(), commercial.usage.resident())
    }

    /// Queues a record at the tenant's audit governor, without waiting (as a quarantine's).
    pub(crate) fn record_audit(
        &self,
        tenant: &govern_governors::TenantId,
        command: audit::Command,
    ) {
        let Some(admission) = self.shared.registry.admit_record(tenant) else { return };
        let reason = match &command {
            audit::Command::RecordCatalog { .. } => "catalog reloaded",
            audit::Command::RecordSla { .. } => "sla monitor",
            _ => "checks",
        };
        let request = crate::governor::runtime_request(command, reason);
        let key =
            Key { resource: crate::registry::tenant_resource(tenant), tenant: tenant.clone() };
        self.domains.get::<audit::Trail>().record(key, request, admission);
    }

    /// Receipts now the counts of every tenant's current checking window (allowed checks per
    /// feature, repeated refusals), as each window's close would, and waits until they are
    /// durable. Shutdown does this; a host may too (before reading a trail in a test, say).
    pub async fn flush_check_counts(&self) {
        let now = self.shared.clock.now();
        let closed = self.shared.commercial.close_windows(now);
        for (tenant, records) in &closed {
            for command in records {
                self.record_audit(tenant, command.clone());
            }
        }
        // The records are queued at the audit governors: a snapshot is answered after them,
        // once their receipts are sent; then wait until those are durable.
        for (tenant, _) in &closed {
            let _ = self.audit(tenant).snapshot().await;
        }
        self.shared.durable().await;
    }

    /// Replaces the plan catalog with `catalog` (validated when it was loaded:
    /// [`govern_plans::load_files`]), after checking it against what is in force: every plan
    /// a live subscription is on must still be in it. Receipted first, in the audit trail of
    /// every tenant with a live subscription (`record_catalog`: the new version and its plan
    /// count); then every tenant's checks decide with it (each tenant's inputs are rebuilt at
    /// its next check). A refused reload changes nothing. Returns how many tenants' trails
    /// recorded it.
    ///
    /// # Errors
    /// [`Refusal::NoCatalog`] for a runtime started without one; [`Refusal::BadCatalog`]
    /// naming each plan in use that the new catalog lacks; [`Refusal::ShuttingDown`].
    pub async fn reload_catalog(&self, catalog: Catalog) -> Result<usize, Refusal> {
        if self.shared.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        if !self.shared.catalog {
            return Err(Refusal::NoCatalog);
        }
        let commercial = &self.shared.commercial;
        let missing: Vec<String> = commercial
            .plans_in_use()
            .into_iter()
            .filter(|p| catalog.plan(p).is_none())
            .map(|p| {
                format!("plan `{p}` is in use by a live subscription but not in the new catalog")
            })
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::BadCatalog { problems: missing.join("\n") });
        }
        let tenants = commercial.tenants_with_plans();
        let command = audit::Command::RecordCatalog {
            version: catalog.version.clone(),
            plans: catalog.plans.len() as u64,
        };
        for tenant in &tenants {
            self.record_audit(tenant, command.clone());
        }
        for tenant in &tenants {
            let _ = self.audit(tenant).snapshot().await;
        }
        self.shared.durable().await;
        commercial.replace_catalog(Arc::new(catalog));
        Ok(tenants.len())
    }

    /// The plan catalog in force (`None` for a runtime started without one).
    #[must_use]
    pub fn catalog_in_force(&self) -> Option<Arc<Catalog>> {
        self.shared.commercial.catalog()
    }

    /// The idempotency keys held, and how many were evicted (the bound), expired (the
    /// window) and replayed.
    #[must_use]
    pub fn idempotency_stats(&self) -> crate::idempotency::IdempotencyStats {
        self.shared.idempotency.stats()
    }

    /// Every tenant ever provisioned and its state, sorted.
    #[must_use]
    pub fn tenants(&self) -> Vec<(govern_governors::TenantId, tenant::State)> {
        self.shared.registry.tenants()
    }

    /// How many governors are resident (not passivated), over all kinds.
    #[must_use]
    pub fn resident_governors(&self) -> usize {
        self.domains.all().map(|d| d.resident()).sum()
    }

    #[cfg(feature = "testing")]
    /// How many governor actors are alive, over all kinds (a passivated governor's actor
    /// stops shortly after it is passivated).
    #[must_use]
    pub fn live_governor_actors(&self) -> usize {
        self.domains.all().map(|d| d.live_actors()).sum()
    }

    #[cfg(feature = "testing")]
    /// Passivates now every governor idle for at least `idle_for`, as the periodic sweep
    /// does with the configured idle time (each domain supervisor passivates its own
    /// children), and evicts the idle tenants' check inputs and usage counters as the check
    /// layer's sweep does ([`Self::resident_tenant_states`] counts what stays). Returns how
    /// many governors were passivated.
    pub async fn passivate_idle(&self, idle_for: Duration) -> usize {
        let mut n = 0;
        for domain in self.domains.all() {
            n += domain.passivate_idle(idle_for).await;
        }
        if self.shared.catalog {
            self.evict_idle_tenant_states(idle_for);
        }
        n
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

    #[cfg(feature = "testing")]
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
        let n = self.domains.deliver_due(&self.shared, None).await;
        // Their receipts (and those of timeouts the delivery task decided meanwhile) are
        // durable, hence shown by `receipts`, when this returns.
        self.shared.durable().await;
        n
    }

    #[cfg(feature = "testing")]
    /// Makes the domain supervisor of `kind` fail (fault injection for tests): the root
    /// restarts it within its intensity, and the restarted supervisor restarts the governors
    /// that were resident (each replays); beyond the intensity the runtime stops. Returns
    /// false when no supervisor of that kind is running.
    #[must_use]
    pub fn inject_domain_crash(&self, kind: GovernorKind) -> bool {
        !self.shared.is_shutting_down() && self.domains.by_kind(kind).crash_supervisor()
    }

    /// Outbound notification counts since start (all zero without
    /// `RuntimeBuilder::notifications`).
    #[must_use]
    pub fn notify_stats(&self) -> crate::notify::NotifyStats {
        self.shared.notify.as_ref().map(|n| n.stats()).unwrap_or_default()
    }

    /// Waits until every event fed so far is delivered, given up or dropped at each of its
    /// endpoints (at once without notifications). An endpoint that keeps failing keeps this
    /// waiting until its last attempt: bound it with a timeout.
    pub async fn notifications_settled(&self) {
        if let Some(n) = &self.shared.notify {
            n.settled().await;
        }
    }

    #[cfg(feature = "testing")]
    /// Makes the notifier actor fail (fault injection for tests): the root restarts it, and
    /// the new one rebuilds its deliveries from the receipts. False without a notifier.
    #[must_use]
    pub fn inject_notifier_crash(&self) -> bool {
        let me = self.shared.notifier.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        me.as_ref().is_some_and(|a| a.cast(crate::notifier::NotifyMsg::Crash).is_ok())
    }

    #[cfg(feature = "testing")]
    /// How many times the domain supervisor of `kind` was restarted by the root.
    #[must_use]
    pub fn domain_restarts(&self, kind: GovernorKind) -> u64 {
        self.domains.by_kind(kind).incarnations().saturating_sub(1)
    }

    #[cfg(feature = "testing")]
    /// How many times a governor of `kind` was quarantined (it crashed more than
    /// `governor_restarts` times in a window), over all its governors.
    #[must_use]
    pub fn quarantines(&self, kind: GovernorKind) -> u64 {
        self.domains.by_kind(kind).quarantines()
    }

    /// Whether the runtime has stopped taking commands (shutdown began, or the root
    /// supervisor gave up).
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.shared.is_shutting_down()
    }
}

//! A domain: all governors of one kind. Its typed routes (tenant, resource) → slot, which the
//! registry actor writes and callers read without a message; its timers; and its supervisor,
//! whose children the governor actors are: it spawns them (on the registry's request),
//! restarts a crashed one with replay, quarantines one that crashes again and again, and
//! passivates idle ones. Its child table is its own state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use govern_governors::{GovernorKind, Request};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::FastMap;
use crate::error::{Outcome, Refusal};
use crate::governor::{
    CrashPoint, Env, Envelope, GovernorActor, PushError, Quarantine, Slot, Snapshot,
    timeout_request,
};
use crate::hosted::Hosted;
use crate::registry::{Admission, Key, RegistryMsg};
use crate::telemetry::KindMetrics;

/// How a domain's governors are looked after.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DomainConfig {
    pub(crate) reply_timeout: Duration,
    pub(crate) idle_after: Duration,
    pub(crate) child_shutdown: Duration,
    /// Crashes of one governor per window before it is quarantined.
    pub(crate) crashes_max: u32,
    pub(crate) crash_window: Duration,
}

/// All governors of kind `G`.
pub(crate) struct Domain<G: Hosted> {
    pub(crate) env: Arc<Env<G>>,
    pub(crate) config: DomainConfig,
    /// The routes: one slot per resident governor. Written by the registry actor only.
    routes: FastMap<Key, Arc<Slot<G>>>,
    /// The registry actor, for misses.
    registry: Arc<Mutex<Option<ActorRef<RegistryMsg>>>>,
    /// The current supervisor incarnation.
    supervisor: Mutex<Option<ActorRef<DomainMsg<G>>>>,
    /// How many supervisor incarnations have started (restarts after escalation are > 1).
    incarnations: AtomicU64,
    /// Live governor actors (the supervisor's child table's size).
    live: AtomicUsize,
    /// Quarantines so far, of all this kind's governors.
    quarantines: AtomicU64,
    /// This kind's metrics (resident, restarts, quarantines, passivations).
    metrics: KindMetrics,
}

impl<G: Hosted> Domain<G> {
    pub(crate) fn new(
        env: Env<G>,
        config: DomainConfig,
        registry: Arc<Mutex<Option<ActorRef<RegistryMsg>>>>,
        metrics: KindMetrics,
    ) -> Self {
        Self {
            env: Arc::new(env),
            config,
            routes: FastMap::default(),
            registry,
            supervisor: Mutex::new(None),
            incarnations: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            quarantines: AtomicU64::new(0),
            metrics,
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.env.clock.now().as_ms()
    }

    /// Resident governors of this kind.
    pub(crate) fn resident(&self) -> usize {
        self.routes.len()
    }

    /// The routes changed: the resident gauge follows (on misses and passivations only,
    /// never on a hit).
    fn resident_changed(&self) {
        self.metrics.resident.set(self.routes.len() as f64);
    }

    /// Supervisor incarnations started so far.
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    pub(crate) fn incarnations(&self) -> u64 {
        self.incarnations.load(Ordering::Acquire)
    }

    /// Live governor actors of this kind.
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    pub(crate) fn live_actors(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    fn supervisor(&self) -> Option<ActorRef<DomainMsg<G>>> {
        self.supervisor.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sends a command and waits for its outcome (within the reply timeout).
    pub(crate) async fn call(
        &self,
        key: Key,
        request: Request<G::Command>,
        admission: Admission,
        started: Option<crate::telemetry::Started>,
    ) -> Outcome {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let envelope = Envelope::Command { request, reply: tx, admission, timeout: false, started };
        self.submit(key, envelope)?;
        self.wait(rx).await?
    }

    /// Queues a command the runtime itself sends (nobody waits for its outcome): like a
    /// state timeout's, it is never refused for a full inbox; a refusal (the governor is
    /// quarantined) drops it.
    /// Called by the registry actor, it routes the envelope itself (an open slot or a new
    /// one), so that the record is queued before any command that reaches the registry actor
    /// after it.
    pub(crate) fn record(&self, key: Key, request: Request<G::Command>, admission: Admission) {
        let (tx, _rx) = tokio::sync::oneshot::channel();
        self.route(
            key,
            Envelope::Command { request, reply: tx, admission, timeout: true, started: None },
        );
    }

    /// Asks for a governor's state, in order with its commands.
    pub(crate) async fn inspect(&self, key: Key) -> Result<Snapshot<G>, Refusal> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(key, Envelope::Inspect { reply: tx })?;
        self.wait(rx).await?
    }

    async fn wait<T>(&self, rx: tokio::sync::oneshot::Receiver<T>) -> Result<T, Refusal> {
        let timeout = self.config.reply_timeout;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Refusal::GovernorUnavailable {
                kind: G::KIND,
                reason: "the governor stopped without answering".into(),
                retry_after_ms: None,
            }),
            Err(_) => {
                tracing::warn!(governor = G::KIND.name(), "reply timeout");
                Err(Refusal::Timeout {
                    after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }

    /// Queues an envelope at the governor: at its open slot directly (a hit: no message), or
    /// through the registry actor (a miss).
    fn submit(&self, key: Key, envelope: Envelope<G>) -> Result<(), Refusal> {
        let slot = self.routes.get(&key).map(|s| Arc::clone(s.value()));
        let envelope = match slot {
            Some(slot) => match slot.push(envelope, self.now_ms()) {
                Ok(()) => return Ok(()),
                Err((back, PushError::Closed)) => back,
                Err((_, why)) => return Err(refused::<G>(why)),
            },
            None => envelope,
        };
        let registry =
            self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some(registry) = registry else { return Err(Refusal::ShuttingDown) };
        let msg = RegistryMsg::Route { kind: G::KIND, key, envelope: Box::new(envelope) };
        registry.cast(msg).map_err(|_| Refusal::ShuttingDown)
    }

    /// The registry actor's half of a miss: open a slot for `key` if it has none open (a
    /// new governor, or one passivated or out of quarantine), queue the envelope, and ask the
    /// supervisor to start its actor.
    pub(crate) fn route(&self, key: Key, envelope: Envelope<G>) {
        let now = self.now_ms();
        let open = self.routes.get(&key).map(|s| Arc::clone(s.value()));
        let quarantine = match &open {
            Some(slot) if !slot.is_closed() => {
                if let Err((back, why)) = slot.push(envelope, now) {
                    back.refuse(match why {
                        // Closed between the look and the push: the caller may retry.
                        PushError::Closed => Refusal::GovernorUnavailable {
                            kind: G::KIND,
                            reason: "the governor was passivated while routing".into(),
                            retry_after_ms: Some(0),
                        },
                        why => refused::<G>(why),
                    });
                }
                return;
            }
            Some(slot) => slot.quarantine(),
            None => Quarantine::default(),
        };
        if quarantine.until_ms > now {
            envelope.refuse(quarantined(G::KIND, quarantine.until_ms - now));
            return;
        }
        let slot = Arc::new(Slot::new(key.clone(), now, quarantine));
        // A fresh slot takes the envelope: it is open, empty, not quarantined.
        let _ = slot.push(envelope, now);
        self.routes.insert(key, Arc::clone(&slot));
        self.resident_changed();
        match self.supervisor() {
            Some(sup) => {
                if sup.cast(DomainMsg::Spawn(Arc::clone(&slot))).is_err() {
                    self.start_failed(&slot, "the domain supervisor is not running".into());
                }
            }
            None => self.start_failed(&slot, "the domain supervisor is not running".into()),
        }
    }

    fn start_failed(&self, slot: &Arc<Slot<G>>, reason: String) {
        tracing::error!(governor = G::KIND.name(), tenant_id = %slot.key.tenant, resource_id = %slot.key.resource, %reason, "governor failed to start");
        self.routes.remove_if(&slot.key, |_, s| Arc::ptr_eq(s, slot));
        self.resident_changed();
        slot.fail_all(&Refusal::GovernorUnavailable {
            kind: G::KIND,
            reason,
            retry_after_ms: None,
        });
    }

    /// The registry actor's half of a passivation: drops the routes of `slots` (if they are
    /// still the routed ones).
    pub(crate) fn forget(&self, slots: &[Arc<Slot<G>>]) {
        for slot in slots {
            self.routes.remove_if(&slot.key, |_, s| Arc::ptr_eq(s, slot));
        }
        // Maps keep their capacity after removals; give it back once mostly empty, so that
        // passivated governors cost only their ledger index entry.
        if !slots.is_empty() && self.routes.len() * 4 < self.routes.capacity() {
            self.routes.shrink_to_fit();
        }
        self.resident_changed();
    }

    /// Makes the governor panic at `point`.
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    pub(crate) async fn inject_crash(&self, key: Key, point: CrashPoint) -> Result<(), Refusal> {
        match point {
            CrashPoint::Now => self.submit(key, Envelope::Crash),
            CrashPoint::AfterNextAppend => loop {
                // Bring the governor up (a query routes it like a command would), then arm
                // the crash in its slot; a slot closed meanwhile is gone: arm its successor.
                self.inspect(key.clone()).await?;
                let slot = self.routes.get(&key).map(|s| Arc::clone(s.value()));
                if slot.is_some_and(|s| s.crash_after_next_append()) {
                    return Ok(());
                }
            },
        }
    }

    /// Delivers the state timeout armed for `key` as `generation` (nothing if it was
    /// re-armed or cancelled since) through the normal path, as a command admitted with
    /// `admission`, and waits until the governor has decided it (within the reply timeout).
    /// Returns whether it was delivered.
    pub(crate) async fn deliver_timeout(
        &self,
        key: Key,
        generation: u64,
        admission: Admission,
    ) -> bool {
        let Some(timer) = self.env.timers.take(&key, generation) else { return false };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let envelope = Envelope::Command {
            request: timeout_request(timer.command),
            reply: tx,
            admission,
            timeout: true,
            started: None,
        };
        if let Err(refusal) = self.submit(key.clone(), envelope) {
            tracing::warn!(governor = G::KIND.name(), tenant_id = %key.tenant, %refusal, "state timeout not delivered");
            return false;
        }
        // Whatever the answer, it was decided (or the governor is gone): the next may go.
        let _ = self.wait(rx).await;
        true
    }

    /// Forgets the state timeout armed for `key` as `generation`: its tenant is
    /// deprovisioned, so it never fires.
    pub(crate) fn drop_timeout(&self, key: &Key, generation: u64) {
        if self.env.timers.take(key, generation).is_some() {
            tracing::debug!(governor = G::KIND.name(), tenant_id = %key.tenant, resource_id = %key.resource, "state timeout dropped: the tenant is deprovisioned");
        }
    }

    /// The supervision tree has stopped: answer everything queued at every resident
    /// governor, and forget them (their state is in the ledger).
    pub(crate) fn fail_resident(&self, reason: &str) {
        let slots: Vec<_> = self.routes.iter().map(|e| Arc::clone(e.value())).collect();
        self.routes.clear();
        self.resident_changed();
        for slot in slots {
            slot.fail_all(&Refusal::GovernorUnavailable {
                kind: G::KIND,
                reason: reason.to_owned(),
                retry_after_ms: None,
            });
        }
        self.env.timers.clear();
    }

    /// Makes the domain supervisor fail (fault injection). False if none is running.
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    pub(crate) fn crash_supervisor(&self) -> bool {
        self.supervisor().is_some_and(|sup| sup.cast(DomainMsg::Crash).is_ok())
    }

    /// Passivates every governor idle for at least `idle_for`, through the supervisor (whose
    /// children they are). Returns how many.
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    pub(crate) async fn passivate_idle(&self, idle_for: Duration) -> usize {
        let Some(sup) = self.supervisor() else { return 0 };
        ractor::call!(sup, |reply| DomainMsg::Sweep(Some((idle_for, reply)))).unwrap_or(0)
    }

    /// Quarantines so far, of all this kind's governors.
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    pub(crate) fn quarantines(&self) -> u64 {
        self.quarantines.load(Ordering::Acquire)
    }
}

/// The refusal of a command a slot did not take (not `Closed`: that is routed again).
fn refused<G: Hosted>(why: PushError) -> Refusal {
    match why {
        PushError::Full => {
            Refusal::Busy { what: "governor inbox", max: crate::limits::GOVERNOR_INBOX_MAX }
        }
        PushError::Quarantined { retry_after_ms } => quarantined(G::KIND, retry_after_ms),
        PushError::Closed => Refusal::GovernorUnavailable {
            kind: G::KIND,
            reason: "the governor's slot is closed".into(),
            retry_after_ms: Some(0),
        },
    }
}

/// The refusal of a command to a quarantined governor.
fn quarantined(kind: govern_governors::GovernorKind, retry_after_ms: u64) -> Refusal {
    Refusal::GovernorUnavailable {
        kind,
        reason: "quarantined after crashing repeatedly".into(),
        retry_after_ms: Some(retry_after_ms),
    }
}

/// The domain supervisor's messages.
pub(crate) enum DomainMsg<G: Hosted> {
    /// Start the actor of a slot the registry opened.
    Spawn(Arc<Slot<G>>),
    /// Passivate idle governors (periodic: `None`; on request: idle for at least the given
    /// time, answering how many).
    Sweep(Option<(Duration, RpcReplyPort<usize>)>),
    /// Fail (fault injection: the root restarts the supervisor, OTP-style).
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    Crash,
}

/// Supervises the governor actors of one domain: starts them, restarts a crashed one with
/// replay, quarantines one that crashes more than its limit (exponential backoff), passivates
/// idle ones. A crashing governor never takes its domain down: other tenants' governors live
/// on. The domain supervisor itself is supervised by the root, OTP-style.
pub(crate) struct DomainSupervisor<G: Hosted> {
    pub(crate) domain: Arc<Domain<G>>,
}

/// The supervisor's child table and sweep timer.
pub(crate) struct DomainState<G: Hosted> {
    children: BTreeMap<ActorId, Arc<Slot<G>>>,
    sweep: Option<tokio::task::JoinHandle<()>>,
}

impl<G: Hosted> DomainSupervisor<G> {
    /// Receipts a quarantine once, as it begins, in the tenant's audit trail (through the
    /// registry actor, which routes it to the tenant's audit governor). The audit governor's
    /// own quarantine is not recorded there: it would be refused, being quarantined.
    fn receipt_quarantine(&self, key: &Key, level: u32, length_ms: u64) {
        if G::KIND == GovernorKind::Audit {
            return;
        }
        let command = govern_governors::audit::Command::RecordQuarantine {
            governor: G::KIND,
            resource: key.resource.as_str().to_owned(),
            level: u64::from(level),
            length_ms,
        };
        let registry =
            self.domain.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let msg = RegistryMsg::Audit { tenant: key.tenant.clone(), command };
        if registry.is_none_or(|r| r.cast(msg).is_err()) {
            tracing::warn!(governor = G::KIND.name(), tenant_id = %key.tenant, resource_id = %key.resource, "quarantine not receipted: the registry actor is not running");
        }
    }

    async fn spawn(
        &self,
        myself: &ActorRef<DomainMsg<G>>,
        state: &mut DomainState<G>,
        slot: Arc<Slot<G>>,
    ) {
        if slot.is_closed() {
            return;
        }
        let actor = GovernorActor { env: Arc::clone(&self.domain.env) };
        match GovernorActor::spawn_linked(None, actor, Arc::clone(&slot), myself.get_cell()).await {
            Ok((actor, _)) => {
                state.children.insert(actor.get_id(), slot);
                self.domain.live.store(state.children.len(), Ordering::Release);
            }
            Err(e) => self.domain.start_failed(&slot, e.to_string()),
        }
    }

    /// Closes the idle slots, stops their actors and has the registry drop their routes.
    async fn sweep(&self, state: &mut DomainState<G>, idle_for: Duration) -> usize {
        let idle_ms = u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX);
        let since = self.domain.now_ms().saturating_sub(idle_ms);
        let mut idle = Vec::new();
        for slot in state.children.values() {
            if let Some(actor) = slot.close_if_idle(since) {
                if let Some(actor) = actor {
                    actor.stop(Some("passivated".into()));
                }
                idle.push(Arc::clone(slot));
            }
        }
        let n = idle.len();
        if n > 0 {
            self.domain.metrics.passivated.increment(n as u64);
            let registry = self
                .domain
                .registry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let forgotten = match registry {
                Some(r) => ractor::call!(r, |reply: RpcReplyPort<()>| RegistryMsg::Forget {
                    kind: G::KIND,
                    slots: Box::new((idle, reply)),
                })
                .is_ok(),
                None => false,
            };
            if !forgotten {
                tracing::debug!(
                    governor = G::KIND.name(),
                    "passivated routes kept: the registry is down"
                );
            }
            tracing::debug!(governor = G::KIND.name(), passivated = n, "idle governors passivated");
        }
        n
    }
}

impl<G: Hosted> Actor for DomainSupervisor<G> {
    type Msg = DomainMsg<G>;
    type State = DomainState<G>;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<DomainMsg<G>>,
        (): (),
    ) -> Result<DomainState<G>, ActorProcessingErr> {
        *self.domain.supervisor.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(myself);
        Ok(DomainState { children: BTreeMap::new(), sweep: None })
    }

    async fn post_start(
        &self,
        myself: ActorRef<DomainMsg<G>>,
        state: &mut DomainState<G>,
    ) -> Result<(), ActorProcessingErr> {
        if self.domain.incarnations.fetch_add(1, Ordering::AcqRel) > 0 {
            // A restart after the supervisor itself failed: the previous incarnation's
            // governors were killed with it. Start a new actor for every resident governor,
            // so that queued commands go on; each replays its receipts.
            let slots: Vec<_> = self.domain.routes.iter().map(|e| Arc::clone(e.value())).collect();
            tracing::warn!(
                governor = G::KIND.name(),
                governors = slots.len(),
                "domain supervisor restarted; restarting its governors"
            );
            for slot in slots {
                self.spawn(&myself, state, slot).await;
            }
        }
        let period = (self.domain.config.idle_after / 2).max(Duration::from_millis(10));
        state.sweep = Some(myself.send_interval(period, || DomainMsg::Sweep(None)));
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<DomainMsg<G>>,
        state: &mut DomainState<G>,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(sweep) = state.sweep.take() {
            sweep.abort();
        }
        self.domain.live.store(0, Ordering::Release);
        // Stop governors gracefully (they finish the command in hand); ractor would kill them.
        myself
            .stop_children_and_wait(
                Some("shutdown".into()),
                Some(self.domain.config.child_shutdown),
            )
            .await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DomainMsg<G>>,
        msg: DomainMsg<G>,
        state: &mut DomainState<G>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DomainMsg::Spawn(slot) => self.spawn(&myself, state, slot).await,
            DomainMsg::Sweep(None) => {
                self.sweep(state, self.domain.config.idle_after).await;
            }
            DomainMsg::Sweep(Some((idle_for, reply))) => {
                let n = self.sweep(state, idle_for).await;
                let _ = reply.send(n);
            }
            DomainMsg::Crash => {
                return Err(format!("injected crash of the {} domain supervisor", G::KIND).into());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<DomainMsg<G>>,
        event: SupervisionEvent,
        state: &mut DomainState<G>,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some(slot) = state.children.remove(&cell.get_id()) else { return Ok(()) };
                self.domain.live.store(state.children.len(), Ordering::Release);
                let config = self.domain.config;
                let window = u64::try_from(config.crash_window.as_millis()).unwrap_or(u64::MAX);
                let record = |ms, level| self.receipt_quarantine(&slot.key, level, ms);
                match slot.crashed(self.domain.now_ms(), config.crashes_max, window, record) {
                    None => {
                        tracing::warn!(governor = G::KIND.name(), tenant_id = %slot.key.tenant, resource_id = %slot.key.resource, %error, "governor crashed; restarting with replay");
                        self.domain.metrics.restarts.increment(1);
                        self.spawn(&myself, state, slot).await;
                    }
                    Some((ms, level)) => {
                        self.domain.quarantines.fetch_add(1, Ordering::AcqRel);
                        self.domain.metrics.quarantines.increment(1);
                        tracing::warn!(governor = G::KIND.name(), tenant_id = %slot.key.tenant, resource_id = %slot.key.resource, %error, quarantine_ms = ms, level, crashes_max = config.crashes_max, "governor crashed repeatedly; quarantined");
                    }
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _)
                if state.children.remove(&cell.get_id()).is_some() =>
            {
                self.domain.live.store(state.children.len(), Ordering::Release);
            }
            _ => {}
        }
        Ok(())
    }
}

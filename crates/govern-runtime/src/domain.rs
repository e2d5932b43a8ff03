//! A domain: all governors of one kind. Its typed routing index (tenant, resource) → slot,
//! its armed state timeouts (their order across kinds is the runtime's [`Schedule`]), and its
//! supervisor: a dynamic one_for_one over governor actors, spawned on demand, restarted with
//! replay, passivated when idle.
//!
//! [`Schedule`]: crate::schedule::Schedule

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use govern_governors::{CommandSpec, StateTimeout, Timestamp};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::FastMap;
use crate::error::{Outcome, Refusal};
use crate::governor::{
    CrashPoint, Envelope, GovernorActor, Key, PushError, Slot, Snapshot, timeout_request,
};
use crate::hosted::Hosted;
use crate::registry::Admission;
use crate::runtime::Shared;
use crate::schedule::Due;
use crate::supervisor::policy::{self, Exit, Intensity, RestartLog, RestartType, Strategy};

/// An armed state timeout; its place in the delivery order is in the runtime's schedule.
struct Timer<C> {
    /// When it is due.
    at: Timestamp,
    /// The command's name, to recognise an identical re-arm.
    name: &'static str,
    /// The command to send.
    command: C,
    /// Distinguishes incarnations: only the current one may be delivered.
    generation: u64,
}

/// All governors of kind `G`.
pub(crate) struct Domain<G: Hosted> {
    pub(crate) shared: Arc<Shared>,
    /// The routing index: one slot per resident governor.
    routes: FastMap<Key, Arc<Slot<G>>>,
    /// Which slot each live actor serves, so that its supervisor can restart it.
    pub(crate) by_actor: FastMap<ActorId, Arc<Slot<G>>>,
    /// Armed state timeouts; they outlive passivation.
    timers: FastMap<Key, Timer<G::Command>>,
    /// The current supervisor incarnation.
    supervisor: Mutex<Option<ActorCell>>,
    /// How many supervisor incarnations have started (restarts after escalation are > 1).
    pub(crate) incarnations: AtomicU64,
}

impl<G: Hosted> Domain<G> {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            routes: FastMap::default(),
            by_actor: FastMap::default(),
            timers: FastMap::default(),
            supervisor: Mutex::new(None),
            incarnations: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.shared.clock.now().as_ms()
    }

    /// Resident governors of this kind.
    pub(crate) fn resident(&self) -> usize {
        self.routes.len()
    }

    /// Supervisor incarnations started so far.
    pub(crate) fn incarnations(&self) -> u64 {
        self.incarnations.load(Ordering::Acquire)
    }

    /// Live governor actors of this kind.
    pub(crate) fn live_actors(&self) -> usize {
        self.by_actor.len()
    }

    /// Passivates every governor idle for at least `idle_for`.
    pub(crate) fn passivate_idle(&self, idle_for: Duration) -> usize {
        let idle_ms = u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX);
        self.sweep(self.now_ms().saturating_sub(idle_ms))
    }

    /// Sends a command and waits for its outcome (within the reply timeout).
    pub(crate) async fn call(
        self: &Arc<Self>,
        key: Key,
        request: govern_governors::Request<G::Command>,
        admission: Admission,
    ) -> Outcome {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(key, Envelope::Command { request, reply: tx, admission, timeout: false })
            .await?;
        self.wait(rx).await?
    }

    /// Asks for a governor's state, in order with its commands.
    pub(crate) async fn inspect(self: &Arc<Self>, key: Key) -> Result<Snapshot<G>, Refusal> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(key, Envelope::Inspect { reply: tx }).await?;
        self.wait(rx).await
    }

    async fn wait<T>(&self, rx: tokio::sync::oneshot::Receiver<T>) -> Result<T, Refusal> {
        let timeout = self.shared.reply_timeout;
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

    /// Makes the governor panic at `point`.
    pub(crate) async fn inject_crash(
        self: &Arc<Self>,
        key: Key,
        point: CrashPoint,
    ) -> Result<(), Refusal> {
        match point {
            CrashPoint::Now => self.submit(key, Envelope::Crash).await,
            CrashPoint::AfterNextAppend => loop {
                let (slot, fresh) = self.slot(&key);
                let armed = slot.crash_after_next_append();
                if fresh {
                    self.spawn(Arc::clone(&slot), None).await;
                }
                // A slot passivated meanwhile is gone: arm its successor.
                if armed {
                    return Ok(());
                }
            },
        }
    }

    /// The slot of `key`, creating it (and reporting so) when the governor is not resident.
    /// The entry lock of the index makes creation happen once: a governor is never spawned
    /// twice.
    fn slot(&self, key: &Key) -> (Arc<Slot<G>>, bool) {
        if let Some(slot) = self.routes.get(key) {
            return (Arc::clone(slot.value()), false);
        }
        let mut fresh = false;
        let slot = self
            .routes
            .entry(key.clone())
            .or_insert_with(|| {
                fresh = true;
                Arc::new(Slot::new(key.clone(), self.now_ms()))
            })
            .value()
            .clone();
        (slot, fresh)
    }

    /// Queues an envelope at the governor, spawning it if it is not resident.
    async fn submit(self: &Arc<Self>, key: Key, mut envelope: Envelope<G>) -> Result<(), Refusal> {
        loop {
            let (slot, fresh) = self.slot(&key);
            let pushed = slot.push(envelope, self.now_ms());
            if fresh {
                self.spawn(Arc::clone(&slot), None).await;
            }
            match pushed {
                Ok(()) => return Ok(()),
                // Passivated between lookup and push: look up again.
                Err(PushError::Closed(back)) => envelope = back,
                Err(PushError::Full) => {
                    return Err(Refusal::Busy {
                        what: "governor inbox",
                        max: crate::limits::GOVERNOR_INBOX_MAX,
                    });
                }
            }
        }
    }

    /// Starts an actor for `slot` under the domain supervisor (`supervisor`, or the current
    /// incarnation). If it cannot start, the slot is dropped and its queue answered.
    pub(crate) async fn spawn(self: &Arc<Self>, slot: Arc<Slot<G>>, supervisor: Option<ActorCell>) {
        let supervisor = supervisor.or_else(|| self.supervisor.lock().ok().and_then(|s| s.clone()));
        let actor = GovernorActor { domain: Arc::clone(self) };
        let result = match supervisor {
            Some(cell) => GovernorActor::spawn_linked(None, actor, Arc::clone(&slot), cell)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("the domain supervisor is not running".to_owned()),
        };
        if let Err(reason) = result {
            tracing::error!(governor = G::KIND.name(), tenant_id = %slot.key.tenant, resource_id = %slot.key.resource, %reason, "governor failed to start");
            self.routes.remove_if(&slot.key, |_, s| Arc::ptr_eq(s, &slot));
            slot.fail_all(&Refusal::GovernorUnavailable {
                kind: G::KIND,
                reason,
                retry_after_ms: None,
            });
        }
    }

    /// Arms the state timeout of a governor that is not resident, from its receipts (at
    /// start, for a ledger that is continued). Returns whether one was armed.
    pub(crate) fn rearm_from(
        self: &Arc<Self>,
        key: &Key,
        receipts: &[govern_receipt::Receipt],
    ) -> Result<bool, govern_receipt::ReplayError> {
        let machine: G = govern_receipt::replay(receipts)?;
        let timeout = machine.state_timeout();
        let armed = timeout.is_some();
        self.arm_timeout(key, timeout);
        Ok(armed)
    }

    /// `key`'s place in the schedule for a deadline `at`.
    fn due(key: &Key, at: Timestamp) -> Due {
        Due { at, tenant: key.tenant.clone(), kind: G::KIND, resource: key.resource.clone() }
    }

    /// Arms (or cancels, with `None`) the state timeout of `key`. An identical armed timeout
    /// is kept; any other is replaced: a state change cancels the old one.
    pub(crate) fn arm_timeout(&self, key: &Key, timeout: Option<StateTimeout<G::Command>>) {
        let schedule = &self.shared.schedule;
        let Some(t) = timeout else {
            if let Some((_, old)) = self.timers.remove(key) {
                schedule.remove(&Self::due(key, old.at), old.generation);
            }
            return;
        };
        if self.timers.get(key).is_some_and(|old| old.at == t.at && old.name == t.command.name()) {
            return;
        }
        let generation = schedule.next_generation();
        let at = t.at;
        let timer = Timer { at, name: t.command.name(), command: t.command, generation };
        if let Some(old) = self.timers.insert(key.clone(), timer) {
            schedule.remove(&Self::due(key, old.at), old.generation);
        }
        schedule.insert(Self::due(key, at), generation);
    }

    /// Delivers the state timeout armed for `key` as `generation` (nothing if it was
    /// re-armed or cancelled since) through the normal path, as a command admitted with
    /// `admission`, and waits until the governor has decided it (within the reply timeout).
    /// Returns whether it was delivered.
    pub(crate) async fn deliver_timeout(
        self: &Arc<Self>,
        key: Key,
        generation: u64,
        admission: Admission,
    ) -> bool {
        let Some((_, timer)) = self.timers.remove_if(&key, |_, t| t.generation == generation)
        else {
            return false;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let envelope = Envelope::Command {
            request: timeout_request(timer.command),
            reply: tx,
            admission,
            timeout: true,
        };
        if let Err(refusal) = self.submit(key.clone(), envelope).await {
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
        if self.timers.remove_if(key, |_, t| t.generation == generation).is_some() {
            tracing::debug!(governor = G::KIND.name(), tenant_id = %key.tenant, resource_id = %key.resource, "state timeout dropped: the tenant is deprovisioned");
        }
    }

    /// The supervision tree has stopped: answer everything queued at every resident
    /// governor, and forget them (their state is in the ledger).
    pub(crate) fn fail_resident(&self, reason: &str) {
        let slots: Vec<_> = self.routes.iter().map(|e| Arc::clone(e.value())).collect();
        self.routes.clear();
        for slot in slots {
            slot.fail_all(&Refusal::GovernorUnavailable {
                kind: G::KIND,
                reason: reason.to_owned(),
                retry_after_ms: None,
            });
        }
        self.timers.clear();
    }

    /// Passivates every governor idle since before `idle_since_ms`: its actor stops, its
    /// state lives on in the ledger, and its next command brings it back.
    pub(crate) fn sweep(&self, idle_since_ms: u64) -> usize {
        let mut idle = Vec::new();
        for entry in &self.routes {
            if let Some(actor) = entry.value().close_if_idle(idle_since_ms) {
                idle.push((entry.key().clone(), Arc::clone(entry.value()), actor));
            }
        }
        for (key, slot, actor) in &idle {
            self.routes.remove_if(key, |_, s| Arc::ptr_eq(s, slot));
            if let Some(actor) = actor {
                actor.stop(Some("passivated".into()));
            }
        }
        // Maps keep their capacity after removals; give it back once mostly empty, so that
        // passivated governors cost only their ledger index entry.
        if !idle.is_empty() && self.routes.len() * 4 < self.routes.capacity() {
            self.routes.shrink_to_fit();
        }
        idle.len()
    }
}

/// The domain supervisor's messages.
#[derive(Debug)]
pub(crate) enum DomainMsg {
    /// Passivate idle governors.
    Sweep,
}

/// Supervises the governor actors of one domain: dynamic one_for_one, transient children
/// (a passivated governor is not restarted), restart intensity escalating to the root.
pub(crate) struct DomainSupervisor<G: Hosted> {
    pub(crate) domain: Arc<Domain<G>>,
    pub(crate) intensity: Intensity,
}

/// The supervisor's restart log and sweep timer.
pub(crate) struct DomainState {
    log: RestartLog,
    sweep: Option<tokio::task::JoinHandle<()>>,
}

impl<G: Hosted> Actor for DomainSupervisor<G> {
    type Msg = DomainMsg;
    type State = DomainState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<DomainMsg>,
        (): (),
    ) -> Result<DomainState, ActorProcessingErr> {
        if let Ok(mut s) = self.domain.supervisor.lock() {
            *s = Some(myself.get_cell());
        }
        Ok(DomainState { log: RestartLog::new(), sweep: None })
    }

    async fn post_start(
        &self,
        myself: ActorRef<DomainMsg>,
        state: &mut DomainState,
    ) -> Result<(), ActorProcessingErr> {
        if self.domain.incarnations.fetch_add(1, Ordering::AcqRel) > 0 {
            // A restart after escalation: the previous incarnation's governors were killed
            // with it. Start a new actor for every resident governor, so that queued commands
            // go on; each replays its receipts.
            self.domain.by_actor.clear();
            let slots: Vec<_> = self.domain.routes.iter().map(|e| Arc::clone(e.value())).collect();
            tracing::warn!(
                governor = G::KIND.name(),
                governors = slots.len(),
                "domain supervisor restarted; restarting its governors"
            );
            for slot in slots {
                slot.detach_actor();
                self.domain.spawn(slot, Some(myself.get_cell())).await;
            }
        }
        let period = (self.domain.shared.idle_after / 2).max(Duration::from_millis(10));
        state.sweep = Some(myself.send_interval(period, || DomainMsg::Sweep));
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<DomainMsg>,
        state: &mut DomainState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(sweep) = state.sweep.take() {
            sweep.abort();
        }
        // Stop governors gracefully (they finish the command in hand); ractor would kill them.
        myself
            .stop_children_and_wait(
                Some("shutdown".into()),
                Some(self.domain.shared.child_shutdown),
            )
            .await;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<DomainMsg>,
        msg: DomainMsg,
        _state: &mut DomainState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DomainMsg::Sweep => {
                let idle_ms =
                    u64::try_from(self.domain.shared.idle_after.as_millis()).unwrap_or(u64::MAX);
                let since = self.domain.now_ms().saturating_sub(idle_ms);
                let n = self.domain.sweep(since);
                if n > 0 {
                    tracing::debug!(
                        governor = G::KIND.name(),
                        passivated = n,
                        "idle governors passivated"
                    );
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<DomainMsg>,
        event: SupervisionEvent,
        state: &mut DomainState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some((_, slot)) = self.domain.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                slot.detach_actor();
                let now = self.domain.shared.clock_elapsed();
                let decision = policy::decide(
                    Strategy::OneForOne,
                    &[RestartType::Transient],
                    0,
                    Exit::Failed,
                    &mut state.log,
                    self.intensity,
                    now,
                );
                match decision {
                    policy::Decision::Restart { .. } => {
                        tracing::warn!(governor = G::KIND.name(), tenant_id = %slot.key.tenant, resource_id = %slot.key.resource, %error, restarts = state.log.len(), "governor crashed; restarting with replay");
                        self.domain.spawn(slot, Some(myself.get_cell())).await;
                    }
                    policy::Decision::Escalate { .. } | policy::Decision::Remove { .. } => {
                        tracing::error!(
                            governor = G::KIND.name(),
                            restarts_max = self.intensity.restarts_max,
                            "restart intensity exceeded; escalating"
                        );
                        return Err(
                            format!("{} domain: restart intensity exceeded", G::KIND).into()
                        );
                    }
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                self.domain.by_actor.remove(&cell.get_id());
                let by_actor = &self.domain.by_actor;
                if by_actor.len() * 4 < by_actor.capacity() && by_actor.capacity() > 1_024 {
                    by_actor.shrink_to_fit();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

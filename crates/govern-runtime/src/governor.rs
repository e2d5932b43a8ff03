//! A governor actor hosts one pure governor: decide → append the receipt → commit → reply.
//!
//! Commands wait in the governor's [`Slot`], a bounded inbox that lives outside the actor, so
//! that a panicking actor loses nothing: its supervisor starts a new one for the same slot,
//! which replays the governor's receipts and carries on with the queue. The ractor mailbox
//! only carries wake-ups. The command being processed stays in the slot until it is answered;
//! once its receipt is sequenced it is marked applied, so a restarted actor answers it from
//! the mark instead of applying it twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use govern_governors::{
    CommandSpec, Ctx, Governor, Metadata, Reason, Request, ResourceId, StateSpec, TenantId,
};
use govern_ledger::{Ack, LedgerError};
use govern_receipt::{ReceiptBody, replay};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tracing::field::Empty;

use crate::commit::Committer;
use crate::domain::Domain;
use crate::error::{Accepted, CommandError, Outcome, Refusal};
use crate::hosted::Hosted;
use crate::limits::GOVERNOR_INBOX_MAX;
use crate::registry::Admission;

/// Which governor of a domain: the tenant and the resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) tenant: TenantId,
    pub(crate) resource: ResourceId,
}

/// Where to make a governor panic, for crash tests and scenario scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashPoint {
    /// As soon as the governor reaches this request in its inbox.
    Now,
    /// On its next accepted command, after the receipt is written and before the new state
    /// is committed or the caller answered.
    AfterNextAppend,
}

/// A governor's state as a query sees it, in inbox order with its commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot<G> {
    /// The machine.
    pub machine: G,
    /// How many receipts the governor has (its next `resource_seq`).
    pub receipts: u64,
}

/// One entry of a governor's inbox.
pub(crate) enum Envelope<G: Governor> {
    /// A command, from a caller or a state timeout.
    Command {
        request: Request<G::Command>,
        /// A caller's reply is sent once the receipt is durable; a state timeout's as soon as
        /// it is decided (its deliverer only keeps the order; the receipt is committed all
        /// the same).
        reply: oneshot::Sender<Outcome>,
        /// The tenant's in-flight budget unit, returned when the envelope is dropped.
        admission: Admission,
        /// Sent by a state timeout: never refused for a full inbox (a governor has at most
        /// one timeout).
        timeout: bool,
    },
    /// A state query, answered in order with the commands around it.
    Inspect { reply: oneshot::Sender<Snapshot<G>> },
    /// An injected crash (the `Now` point).
    Crash,
}

/// A caller's reply held until its receipt is durable (see [`crate::commit`]), with its
/// tenant's in-flight unit, so that the tenant's bound counts commands awaiting durability.
/// A state timeout's deliverer was answered when the timeout was decided (`reply` is then
/// `None`): its receipt is committed all the same.
pub(crate) struct DurableReply {
    reply: Option<oneshot::Sender<Outcome>>,
    accepted: Accepted,
    _admission: Admission,
}

impl Ack for DurableReply {
    fn complete(self, result: Result<(), LedgerError>) {
        let Some(reply) = self.reply else { return };
        let outcome = match result {
            Ok(()) => Ok(self.accepted),
            Err(e) => Err(CommandError::Refused(Refusal::LedgerUnavailable(e.to_string()))),
        };
        // The caller may have timed out: nobody left to tell.
        let _ = reply.send(outcome);
    }
}

/// Answers a command: an acceptance once its receipt is durable, anything else now. A state
/// timeout's deliverer learns the decision at once; the receipt is still committed.
fn answer(
    commit: &Arc<Committer>,
    reply: oneshot::Sender<Outcome>,
    admission: Admission,
    timeout: bool,
    outcome: Outcome,
) {
    match outcome {
        Ok(accepted) => {
            let reply = if timeout {
                let _ = reply.send(Ok(accepted.clone()));
                None
            } else {
                Some(reply)
            };
            commit.ack(accepted.seq, DurableReply { reply, accepted, _admission: admission });
        }
        Err(e) => {
            let _ = reply.send(Err(e));
        }
    }
}

/// The inbox and everything that must outlive one actor incarnation.
struct Inbox<G: Governor> {
    queue: VecDeque<Envelope<G>>,
    /// The envelope being processed, and its outcome once its receipt is written.
    current: Option<(Envelope<G>, Option<Accepted>)>,
    /// A wake-up is pending or the actor is draining: callers need not wake it.
    scheduled: bool,
    /// The slot was passivated: callers must look the governor up again.
    closed: bool,
    /// The live actor, once started.
    actor: Option<ActorRef<GovernorMsg>>,
    /// Crash on the next append ([`CrashPoint::AfterNextAppend`]).
    crash_after_append: bool,
    /// The governor's receipts so far (its next `resource_seq`).
    receipts: u64,
}

/// A governor's place in its domain: the inbox, shared by callers and the actor.
pub(crate) struct Slot<G: Governor> {
    pub(crate) key: Key,
    inbox: Mutex<Inbox<G>>,
    /// Runtime-clock milliseconds of the last command, for passivation.
    last_active_ms: AtomicU64,
}

/// Why a slot did not take an envelope.
pub(crate) enum PushError<G: Governor> {
    /// Passivated meanwhile: look up again.
    Closed(Envelope<G>),
    /// The inbox is full.
    Full,
}

impl<G: Governor> Slot<G> {
    pub(crate) fn new(key: Key, now_ms: u64) -> Self {
        let inbox = Inbox {
            queue: VecDeque::new(),
            current: None,
            scheduled: false,
            closed: false,
            actor: None,
            crash_after_append: false,
            receipts: 0,
        };
        Self { key, inbox: Mutex::new(inbox), last_active_ms: AtomicU64::new(now_ms) }
    }

    fn lock(&self) -> MutexGuard<'_, Inbox<G>> {
        // A governor that panicked mid-command leaves the inbox consistent: the command is
        // still in `current`. Recover rather than propagate the poison.
        self.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues an envelope and wakes the actor if it is idle.
    pub(crate) fn push(&self, envelope: Envelope<G>, now_ms: u64) -> Result<(), PushError<G>> {
        let wake = {
            let mut inbox = self.lock();
            if inbox.closed {
                return Err(PushError::Closed(envelope));
            }
            // State timeouts are never refused: there is at most one per governor.
            let bounded = matches!(&envelope, Envelope::Command { timeout: false, .. });
            if bounded && inbox.queue.len() >= GOVERNOR_INBOX_MAX {
                return Err(PushError::Full);
            }
            inbox.queue.push_back(envelope);
            if inbox.scheduled || inbox.actor.is_none() {
                None
            } else {
                inbox.scheduled = true;
                inbox.actor.clone()
            }
        };
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
        if let Some(actor) = wake {
            // A dead actor's replacement drains the inbox when it starts: nothing is lost.
            let _ = actor.cast(GovernorMsg::Wake);
        }
        Ok(())
    }

    /// Arms [`CrashPoint::AfterNextAppend`]; false if the slot was passivated meanwhile.
    pub(crate) fn crash_after_next_append(&self) -> bool {
        let mut inbox = self.lock();
        inbox.crash_after_append = !inbox.closed;
        !inbox.closed
    }

    /// Closes the slot if it is idle: no queue, nothing in flight. Returns the actor to stop.
    pub(crate) fn close_if_idle(
        &self,
        idle_since_ms: u64,
    ) -> Option<Option<ActorRef<GovernorMsg>>> {
        if self.last_active_ms.load(Ordering::Relaxed) > idle_since_ms {
            return None;
        }
        let mut inbox = self.lock();
        if inbox.closed || inbox.scheduled || inbox.current.is_some() || !inbox.queue.is_empty() {
            return None;
        }
        inbox.closed = true;
        Some(inbox.actor.take())
    }

    /// Answers everything queued with `refusal` (the governor cannot be started).
    pub(crate) fn fail_all(&self, refusal: &Refusal) {
        let mut inbox = self.lock();
        inbox.closed = true;
        let current = inbox.current.take().map(|(e, _)| e);
        for envelope in current.into_iter().chain(inbox.queue.drain(..)) {
            if let Envelope::Command { reply, .. } = envelope {
                let _ = reply.send(Err(CommandError::Refused(refusal.clone())));
            }
        }
    }

    /// Forgets a dead actor incarnation, so that callers stop waking it.
    pub(crate) fn detach_actor(&self) {
        self.lock().actor = None;
    }
}

/// The governor actor's messages: only wake-ups; commands wait in the slot.
#[derive(Debug)]
pub(crate) enum GovernorMsg {
    /// Drain the inbox.
    Wake,
}

/// The actor hosting governor `G`.
pub(crate) struct GovernorActor<G: Hosted> {
    pub(crate) domain: Arc<Domain<G>>,
}

/// The actor's state: the machine, rebuilt from the ledger at every start.
pub(crate) struct GovernorActorState<G: Hosted> {
    slot: Arc<Slot<G>>,
    machine: G,
}

impl<G: Hosted> Actor for GovernorActor<G> {
    type Msg = GovernorMsg;
    type State = GovernorActorState<G>;
    type Arguments = Arc<Slot<G>>;

    async fn pre_start(
        &self,
        myself: ActorRef<GovernorMsg>,
        slot: Arc<Slot<G>>,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Known to the supervisor before anything can fail, so that it can restart us.
        self.domain.by_actor.insert(myself.get_id(), Arc::clone(&slot));
        let key = &slot.key;
        let receipts =
            self.domain.shared.ledger.resource_receipts(&key.tenant, G::KIND, &key.resource)?;
        let machine: G = replay(&receipts)?;
        slot.lock().receipts = receipts.len() as u64;
        if !receipts.is_empty() {
            // A command applied just before a crash was never followed by its after-commit
            // step (the registry's tenant state): run it for the replayed state.
            G::after_commit(&machine, key, &self.domain.shared);
        }
        Ok(GovernorActorState { slot, machine })
    }

    async fn post_start(
        &self,
        myself: ActorRef<GovernorMsg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        {
            let mut inbox = state.slot.lock();
            recover_in_flight(&mut inbox, &self.domain.shared.commit);
            inbox.actor = Some(myself.clone());
            inbox.scheduled = true;
        }
        self.domain.arm_timeout(&state.slot.key, state.machine.state_timeout());
        myself.cast(GovernorMsg::Wake)?;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<GovernorMsg>,
        _msg: GovernorMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        while self.step(state) {}
        Ok(())
    }
}

/// After a crash: an applied command is answered from its mark (once its receipt is
/// durable); an unapplied one goes back to the head of the queue.
fn recover_in_flight<G: Governor>(inbox: &mut Inbox<G>, commit: &Arc<Committer>) {
    match inbox.current.take() {
        None => {}
        Some((Envelope::Command { reply, admission, timeout, .. }, Some(accepted))) => {
            answer(commit, reply, admission, timeout, Ok(accepted));
        }
        Some((envelope, _)) => inbox.queue.push_front(envelope),
    }
}

impl<G: Hosted> GovernorActor<G> {
    /// Processes the head of the inbox. Returns false when the inbox is empty.
    fn step(&self, state: &mut GovernorActorState<G>) -> bool {
        let slot = Arc::clone(&state.slot);
        let mut inbox = slot.lock();
        if inbox.current.is_none() {
            match inbox.queue.pop_front() {
                Some(envelope) => inbox.current = Some((envelope, None)),
                None => {
                    inbox.scheduled = false;
                    return false;
                }
            }
        }
        let inbox = &mut *inbox;
        match inbox.current.as_mut().map(|(e, _)| e) {
            Some(Envelope::Crash) => {
                inbox.current = None;
                panic!(
                    "injected crash in {} governor {}/{}",
                    G::KIND,
                    slot.key.tenant,
                    slot.key.resource
                );
            }
            Some(Envelope::Inspect { .. }) => {
                if let Some((Envelope::Inspect { reply }, _)) = inbox.current.take() {
                    let _ = reply.send(Snapshot {
                        machine: state.machine.clone(),
                        receipts: inbox.receipts,
                    });
                }
            }
            Some(Envelope::Command { .. }) => self.command(state, inbox),
            None => {}
        }
        true
    }

    /// Accept (decide and complete) → append → (crash point) → commit → reply, for the
    /// command in `current`.
    fn command(&self, state: &mut GovernorActorState<G>, inbox: &mut Inbox<G>) {
        let Some((Envelope::Command { request, .. }, _)) = inbox.current.as_mut() else { return };
        let shared = &self.domain.shared;
        let key = &state.slot.key;
        let ctx = Ctx { now: shared.clock.now() };
        let span = tracing::info_span!(
            "command",
            tenant_id = %key.tenant,
            governor = G::KIND.name(),
            resource_id = %key.resource,
            command = request.command.name(),
            from = state.machine.state().name(),
            to = Empty,
            outcome = Empty,
            seq = Empty,
        );
        let _entered = span.enter();
        // Accepted, the command is completed in the slot with what the caller left out and the
        // machine knows (the billing governor's amount and currency), so that its receipt
        // records it and a crash before the append decides the same command again.
        let outcome = match state.machine.accept(&mut request.command, &ctx) {
            Err(rejection) => {
                span.record("outcome", "rejected");
                tracing::info!(code = rejection.kind(), reason = %rejection, "command rejected");
                Err(CommandError::Rejected(rejection))
            }
            Ok(t) => {
                let body = ReceiptBody::for_transition::<G>(
                    key.tenant.clone(),
                    key.resource.clone(),
                    0,
                    request,
                    t,
                    ctx.now,
                );
                match shared.ledger.append(body) {
                    // Shutdown closed the ledger after its drain: this command raced it.
                    Err(LedgerError::Closed) => {
                        span.record("outcome", "refused");
                        tracing::debug!("receipt not written: the runtime has shut down");
                        Err(CommandError::Refused(Refusal::ShuttingDown))
                    }
                    Err(e) => {
                        span.record("outcome", "refused");
                        tracing::error!(error = %e, "receipt not written; command refused");
                        Err(CommandError::Refused(Refusal::LedgerUnavailable(e.to_string())))
                    }
                    Ok(app) => {
                        let accepted = Accepted {
                            seq: app.seq,
                            hash: app.hash,
                            resource_seq: app.resource_seq,
                            from: t.from.name(),
                            to: t.to.name(),
                        };
                        if let Some((_, applied)) = inbox.current.as_mut() {
                            *applied = Some(accepted.clone());
                        }
                        inbox.receipts = app.resource_seq + 1;
                        if std::mem::take(&mut inbox.crash_after_append) {
                            panic!("injected crash after appending receipt {}", app.seq);
                        }
                        // The receipt is written: only now does the state change.
                        if let Some((Envelope::Command { request, .. }, _)) = inbox.current.as_ref()
                        {
                            state.machine.evolve(&request.command, t.to, ctx.now);
                        }
                        span.record("to", t.to.name())
                            .record("outcome", "accepted")
                            .record("seq", app.seq);
                        tracing::info!("transition accepted");
                        G::after_commit(&state.machine, key, shared);
                        self.domain.arm_timeout(key, state.machine.state_timeout());
                        Ok(accepted)
                    }
                }
            }
        };
        if let Some((Envelope::Command { reply, admission, timeout, .. }, _)) = inbox.current.take()
        {
            answer(&shared.commit, reply, admission, timeout, outcome);
        }
    }
}

/// A request sent by a state timeout: the reason says so, and so does the metadata.
pub(crate) fn timeout_request<C>(command: C) -> Request<C> {
    let reason = Reason::new("state timeout").expect("a non-empty literal is a valid reason");
    let mut metadata = Metadata::new();
    metadata.insert("source", "state_timeout").expect("a valid key and a short value");
    Request { command, reason, metadata }
}
